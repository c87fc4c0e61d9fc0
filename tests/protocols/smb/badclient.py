"""A minimal SMB2/3 client over a plain socket for tests that send what real clients never do (bad
signatures, replays, broken compounds, garbage); unlike ``rawclient`` every step is separate.

Frames are built with the server's own codecs (``header``, ``crypto``) and impacket's NTLM client
side; nothing here hides a protocol error: :meth:`BadClient.call` returns the response header and
body whatever the status, and :meth:`BadClient.recv` returns ``None`` when the server closed the
connection. Dialect 3.1.1 with preauth integrity, AES-CMAC signing, no encryption::

    c = BadClient(port)
    c.negotiate()
    c.login("alice", "alice-pw")
    tid = c.tree_connect("data")
    fid = c.create(tid, "f.txt")
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from impacket import ntlm  # type: ignore[import-untyped]
from impacket.spnego import SPNEGO_NegTokenInit, SPNEGO_NegTokenResp, TypesMech  # type: ignore[import-untyped]

from protocols.smb import crypto
from protocols.smb.crypto import Dialect, SigningAlgorithm
from protocols.smb.header import HEADER_SIZE, RELATED_FILE_ID, Command, Header, compound_response
from protocols.smb.status import NtStatus

NTLM_OID = TypesMech["NTLMSSP - Microsoft NTLM Security Support Provider"]
GENERIC_ALL = 0x10000000
FILE_SHARE_ALL = 0x7
FILE_OPEN, FILE_CREATE, FILE_OPEN_IF, FILE_OVERWRITE_IF = 1, 2, 3, 5
NON_DIRECTORY_FILE, DIRECTORY_FILE = 0x40, 0x1

_CREATE = struct.Struct("<HBBIQQIIIIIHHII")       # 56 bytes
_WRITE = struct.Struct("<HHIQ16sIIHHI")           # 48 bytes
_READ = struct.Struct("<HBBIQ16sIIIHH")           # 48 bytes (+1 buffer byte)
_CLOSE = struct.Struct("<HHI16s")


@dataclass
class Response:
    header: Header
    body: bytes

    @property
    def status(self) -> int:
        return self.header.status


def negotiate_body(dialects: Sequence[int] = (0x0311,), guid: bytes = b"rawclient-guid!!",
                   ciphers: Sequence[int] = ()) -> bytes:
    """A NEGOTIATE request body offering ``dialects`` (for 3.1.1 with a SHA-512 preauth context and,
    given ``ciphers``, an encryption context)."""
    count = len(dialects)
    fixed = 36 + 2 * count
    pad = -(HEADER_SIZE + fixed) % 8
    contexts: list[bytes] = []
    if 0x0311 in dialects:
        contexts.append(_context(1, struct.pack("<HHH", 1, 32, 1) + os.urandom(32)))
        if ciphers:
            contexts.append(_context(2, struct.pack(f"<H{len(ciphers)}H", len(ciphers), *ciphers)))
    offset = HEADER_SIZE + fixed + pad if contexts else 0
    body = struct.pack("<HHHHI16sIHH", 36, count, 1, 0, 0x7F, guid, offset, len(contexts), 0)
    return body + struct.pack(f"<{count}H", *dialects) + bytes(pad if contexts else 0) + b"".join(contexts)


def _context(kind: int, data: bytes) -> bytes:
    """One NEGOTIATE_CONTEXT, padded to 8 bytes (the padding of the last one is harmless)."""
    raw = struct.pack("<HHI", kind, len(data), 0) + data
    return raw + bytes(-len(raw) % 8)


class BadClient:
    """One TCP connection; see the module docstring."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.next_id = 0
        self.session_id = 0
        self.signing_key: bytes | None = None
        self.keys: crypto.SessionKeys | None = None
        self.cipher: crypto.Cipher | None = None
        self.algorithm = SigningAlgorithm.AES_CMAC
        self.dialect = Dialect.SMB311
        self.preauth = crypto.PREAUTH_ZERO

    def close(self) -> None:
        self.sock.close()

    # -- frames ---------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def recv(self) -> bytes | None:
        """The next frame's contents; None once the server has closed the connection."""
        head = self._exact(4)
        if head is None:
            return None
        n = struct.unpack(">I", head)[0] & 0xFFFFFF
        return self._exact(n)

    def closed(self, timeout: float = 10.0) -> bool:
        """Whether the server closes the connection (reading and dropping any frames before that)."""
        self.sock.settimeout(timeout)
        try:
            while self.recv() is not None:
                pass
        except TimeoutError:
            return False
        return True

    def _exact(self, n: int) -> bytes | None:
        out = bytearray()
        while len(out) < n:
            try:
                chunk = self.sock.recv(n - len(out))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            out += chunk
        return bytes(out)

    # -- messages -------------------------------------------------------------------------
    def header(self, command: Command, tree_id: int = 0, **kw: object) -> Header:
        """A request header with the next MessageId (taken now) asking for 64 credits."""
        h = Header(command, message_id=self.next_id, credit_charge=1, credits=64, session_id=self.session_id,
                   tree_id=tree_id)
        self.next_id += 1
        return replace(h, **kw)  # type: ignore[arg-type]

    def message(self, h: Header, body: bytes, sign: bool | None = None) -> bytes:
        raw = h.encode() + body
        if (self.signing_key is not None if sign is None else sign) and self.signing_key is not None:
            raw = crypto.sign(raw, self.signing_key, self.algorithm)
        return raw

    def compound(self, parts: Sequence[tuple[Header, bytes]], sign: bool = True) -> bytes:
        msgs = compound_response(list(parts))
        if sign and self.signing_key is not None:
            msgs = [crypto.sign(m, self.signing_key, self.algorithm) for m in msgs]
        return b"".join(msgs)

    def read_responses(self) -> list[Response]:
        """Every message of the next frame (interim STATUS_PENDING answers are skipped)."""
        while True:
            frame = self.recv()
            if frame is None:
                raise ConnectionError("the server closed the connection")
            out: list[Response] = []
            off = 0
            while True:
                h = Header.decode(frame, off)
                end = off + h.next_command if h.next_command else len(frame)
                out.append(Response(h, frame[off + HEADER_SIZE:end]))
                if not h.next_command:
                    break
                off = end
            if not (len(out) == 1 and out[0].status == NtStatus.PENDING):
                return out

    def call(self, command: Command, body: bytes, tree_id: int = 0, sign: bool | None = None,
             **kw: object) -> Response:
        self.send(self.message(self.header(command, tree_id, **kw), body, sign))
        return self.read_responses()[0]

    # -- the conversation -------------------------------------------------------------------
    def negotiate(self, dialects: Sequence[int] = (0x0311,), ciphers: Sequence[int] = ()) -> Response:
        req = self.message(self.header(Command.NEGOTIATE), negotiate_body(dialects, ciphers=ciphers), sign=False)
        self.send(req)
        frame = self.recv()
        if frame is None:
            raise ConnectionError("no NEGOTIATE answer")
        self.preauth = crypto.preauth_hash(crypto.preauth_hash(crypto.PREAUTH_ZERO, req), frame)
        r = Response(Header.decode(frame), frame[HEADER_SIZE:])
        self.dialect = Dialect(struct.unpack_from("<H", r.body, 4)[0])
        self.algorithm = crypto.signing_algorithm(self.dialect)
        if self.dialect == Dialect.SMB311 and ciphers:
            self.cipher = _negotiated_cipher(r.body)
        elif self.dialect in (Dialect.SMB30, Dialect.SMB302):
            self.cipher = crypto.Cipher.AES_128_CCM
        return r

    def login(self, user: str, password: str, mutate: Callable[[int, bytes], bytes] | None = None) -> Response:
        """NTLMv2 in SPNEGO; on success the session's signing key is set and messages are signed.

        ``mutate(leg, message)`` may change each SESSION_SETUP message (leg 1, 2) before it is sent."""
        change = mutate or (lambda _leg, m: m)
        type1 = ntlm.getNTLMSSPType1("RAW", "", True, use_ntlmv2=True)
        init = SPNEGO_NegTokenInit()
        init["MechTypes"] = [NTLM_OID]
        init["MechToken"] = type1.getData()
        h = self.preauth
        req1 = change(1, self.message(self.header(Command.SESSION_SETUP), _setup_body(bytes(init.getData())),
                                      sign=False))
        self.send(req1)
        frame = self.recv()
        if frame is None:
            raise ConnectionError("no SESSION_SETUP answer")
        h = crypto.preauth_hash(crypto.preauth_hash(h, req1), frame)
        r = Response(Header.decode(frame), frame[HEADER_SIZE:])
        if r.status != NtStatus.MORE_PROCESSING_REQUIRED:
            return r
        self.session_id = r.header.session_id
        off, n = struct.unpack_from("<HH", r.body, 4)
        challenge = SPNEGO_NegTokenResp(r.body[off - HEADER_SIZE: off - HEADER_SIZE + n])["ResponseToken"]
        type3, key = ntlm.getNTLMSSPType3(type1, bytes(challenge), user, password, "", use_ntlmv2=True)
        resp = SPNEGO_NegTokenResp()
        resp["ResponseToken"] = type3.getData()
        req2 = change(2, self.message(self.header(Command.SESSION_SETUP), _setup_body(bytes(resp.getData())),
                                      sign=False))
        self.send(req2)
        h = crypto.preauth_hash(h, req2)
        r = self.read_responses()[0]
        if r.status == NtStatus.SUCCESS:
            keys = crypto.derive_keys(key, self.dialect, h if self.dialect == Dialect.SMB311 else None,
                                      self.cipher or crypto.Cipher.AES_128_CCM)
            self.signing_key, self.keys = keys.signing, keys
        return r

    def tree_connect(self, share: str) -> int:
        path = f"\\\\127.0.0.1\\{share}".encode("utf-16-le")
        r = self.call(Command.TREE_CONNECT, struct.pack("<HHHH", 9, 0, HEADER_SIZE + 8, len(path)) + path)
        if r.status != NtStatus.SUCCESS:
            raise AssertionError(f"TREE_CONNECT {share}: {r.status:#x}")
        return r.header.tree_id

    def create(self, tree_id: int, path: str, disposition: int = FILE_OPEN_IF, options: int = NON_DIRECTORY_FILE,
               access: int = GENERIC_ALL) -> bytes:
        """CREATE; the FileId, or StatusError naming the status."""
        r = self.call(Command.CREATE, create_body(path, disposition, options, access), tree_id)
        if r.status != NtStatus.SUCCESS:
            raise StatusError(r.status)
        return r.body[64:80]

    def create_status(self, tree_id: int, path: str, **kw: int) -> int:
        try:
            fid = self.create(tree_id, path, **kw)
        except StatusError as e:
            return e.status
        self.close_file(tree_id, fid)
        return NtStatus.SUCCESS

    def write(self, tree_id: int, fid: bytes, data: bytes, offset: int = 0) -> Response:
        return self.call(Command.WRITE, write_body(fid, data, offset), tree_id)

    def read(self, tree_id: int, fid: bytes, length: int, offset: int = 0) -> bytes:
        r = self.call(Command.READ, read_body(fid, length, offset), tree_id)
        if r.status != NtStatus.SUCCESS:
            raise StatusError(r.status)
        data_off, n = r.body[2], struct.unpack_from("<I", r.body, 4)[0]
        return r.body[data_off - HEADER_SIZE: data_off - HEADER_SIZE + n]

    def close_file(self, tree_id: int, fid: bytes) -> Response:
        return self.call(Command.CLOSE, close_body(fid), tree_id)

    def seal(self, message: bytes) -> bytes:
        """``message`` (unsigned) in a TRANSFORM_HEADER under this session's client-to-server key."""
        assert self.keys is not None and self.keys.client_to_server is not None and self.cipher is not None
        return crypto.encrypt(message, self.keys.client_to_server, self.cipher, self.session_id)

    def unseal(self, frame: bytes) -> bytes:
        assert self.keys is not None and self.keys.server_to_client is not None and self.cipher is not None
        return crypto.decrypt(frame, self.keys.server_to_client, self.cipher)

    def echo(self, sign: bool | None = None) -> Response:
        return self.call(Command.ECHO, struct.pack("<HH", 4, 0), sign=sign)


class StatusError(AssertionError):
    def __init__(self, status: int) -> None:
        super().__init__(f"status {status:#010x}")
        self.status = status


def _negotiated_cipher(body: bytes) -> crypto.Cipher | None:
    """The cipher a 3.1.1 NEGOTIATE response's encryption context names (None: none in common)."""
    count, offset = struct.unpack_from("<H", body, 6)[0], struct.unpack_from("<I", body, 60)[0] - HEADER_SIZE
    for _ in range(count):
        kind, n = struct.unpack_from("<HH", body, offset)
        if kind == 2:
            cipher = struct.unpack_from("<H", body, offset + 10)[0]
            return crypto.Cipher(cipher) if cipher else None
        offset += 8 + n + (-(8 + n) % 8)
    return None


def _setup_body(token: bytes) -> bytes:
    return struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, HEADER_SIZE + 24, len(token), 0) + token


def create_body(path: str, disposition: int = FILE_OPEN_IF, options: int = NON_DIRECTORY_FILE,
                access: int = GENERIC_ALL) -> bytes:
    name = path.encode("utf-16-le")
    return _CREATE.pack(57, 0, 0, 2, 0, 0, access, 0x80, FILE_SHARE_ALL, disposition, options,
                        HEADER_SIZE + 56, len(name), 0, 0) + (name or b"\0")


def write_body(fid: bytes, data: bytes, offset: int = 0) -> bytes:
    return _WRITE.pack(49, HEADER_SIZE + 48, len(data), offset, fid, 0, 0, 0, 0, 0) + data


def read_body(fid: bytes, length: int, offset: int = 0) -> bytes:
    return _READ.pack(49, 0x50, 0, length, offset, fid, 0, 0, 0, 0, 0) + b"\0"


def close_body(fid: bytes = RELATED_FILE_ID) -> bytes:
    return _CLOSE.pack(24, 0, 0, fid)


GENERIC_READ = 0x80000000


def still_serves(port: int) -> None:
    """A new connection logs in as alice and reads data/known.txt (the raw suites' ``port`` fixture makes it):
    the server survived."""
    from .conftest import PASSWORDS
    c = BadClient(port)
    try:
        c.negotiate()
        assert c.login("alice", PASSWORDS["alice"]).status == NtStatus.SUCCESS
        tid = c.tree_connect("data")
        fid = c.create(tid, "known.txt", FILE_OPEN, access=GENERIC_READ)
        assert c.read(tid, fid, 100) == b"known contents"
        assert c.close_file(tid, fid).status == NtStatus.SUCCESS
    finally:
        c.close()

__all__ = ["BadClient", "Response", "StatusError", "create_body", "write_body", "read_body", "close_body",
           "negotiate_body", "FILE_OPEN", "FILE_CREATE", "FILE_OPEN_IF",
           "FILE_OVERWRITE_IF", "NON_DIRECTORY_FILE", "DIRECTORY_FILE", "GENERIC_READ", "still_serves"]
