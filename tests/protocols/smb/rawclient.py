"""A small SMB2/3 client over a raw socket for tests that need what client libraries do not offer
(oplock/lease breaks, hand-made compounds): NEGOTIATE, NTLM SESSION_SETUP (pyspnego), signing,
TREE_CONNECT, CREATE with create contexts, READ, WRITE, CLOSE, OPLOCK_BREAK acknowledgments, and
reading unsolicited messages. Messages are built with the server's own codecs where they are
symmetric (header, credits, crypto), and checked by the independent clients in the other suites.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

import spnego

from protocols.smb import crypto
from protocols.smb.createctx import encode_contexts, parse_contexts
from protocols.smb.crypto import Dialect
from protocols.smb.header import Command, Header

UNSOLICITED = 0xFFFFFFFFFFFFFFFF


@dataclass
class Response:
    header: Header
    body: bytes


class RawClient:
    """One connection, one session, one tree (enough for the tests)."""

    def __init__(self, port: int, user: str, password: str, share: str, dialect: Dialect = Dialect.SMB311,
                 client_guid: bytes | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.mid = 0
        self.session_id = 0
        self.tree_id = 0
        self.signing_key = b""
        self.signing = crypto.SigningAlgorithm.AES_CMAC
        self.dialect = dialect
        self.client_guid = client_guid or os.urandom(16)
        self.preauth = crypto.PREAUTH_ZERO
        self.queue: list[Response] = []
        self._negotiate()
        self._login(user, password)
        self.tree_connect(share)

    # -- transport --------------------------------------------------------------------------
    def _send(self, h: Header, body: bytes) -> bytes:
        h.message_id = self.mid
        h.credit_charge = max(1, -(-len(body) // 65536)) if self.dialect >= Dialect.SMB21 else 0
        h.credits = 64
        self.mid += max(1, h.credit_charge)
        h.session_id, h.tree_id = self.session_id, self.tree_id if not h.tree_id else h.tree_id
        raw = h.encode() + body
        if self.signing_key:
            raw = crypto.sign(raw, self.signing_key, self.signing)
        self.sock.sendall(len(raw).to_bytes(4, "big") + raw)
        return raw

    def _recv_frame(self) -> bytes:
        head = self._exact(4)
        return self._exact(int.from_bytes(head[1:], "big"))

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def recv(self, message_id: int) -> Response:
        for i, r in enumerate(self.queue):
            if r.header.message_id == message_id:
                return self.queue.pop(i)
        while True:
            raw = self._recv_frame()
            h = Header.decode(raw)
            r = Response(h, raw[64:])
            if h.message_id == message_id and h.status != 0x103:
                self._last_raw = raw
                return r
            if h.status != 0x103:
                self.queue.append(r)

    def unsolicited(self, timeout: float = 5.0) -> Response | None:
        """The next oplock/lease break notification, or None within ``timeout``."""
        for i, r in enumerate(self.queue):
            if r.header.message_id == UNSOLICITED:
                return self.queue.pop(i)
        self.sock.settimeout(timeout)
        try:
            while True:
                raw = self._recv_frame()
                h = Header.decode(raw)
                r = Response(h, raw[64:])
                if h.message_id == UNSOLICITED:
                    return r
                if h.status != 0x103:
                    self.queue.append(r)
        except TimeoutError:
            return None
        finally:
            self.sock.settimeout(10)

    def call(self, command: Command, body: bytes, tree_id: int = 0) -> Response:
        raw = self._send(Header(command, tree_id=tree_id), body)
        return self.recv(Header.decode(raw).message_id)

    # -- setup ------------------------------------------------------------------------------
    def _negotiate(self) -> None:
        dialects = [int(self.dialect)]
        ctx = b""
        if self.dialect == Dialect.SMB311:
            pre = struct.pack("<HHH", 1, 32, 1) + os.urandom(32)
            enc = struct.pack("<HHH", 2, 0x0002, 0x0001)
            c1 = struct.pack("<HHI", 1, len(pre), 0) + pre
            c1 += bytes(-len(c1) % 8)
            c2 = struct.pack("<HHI", 2, len(enc), 0) + enc
            ctx = c1 + c2
        fixed = 36 + 2 * len(dialects)
        pad = -(64 + fixed) % 8 if ctx else 0
        off = 64 + fixed + pad if ctx else 0
        body = struct.pack("<HHHHI16sIHH", 36, len(dialects), 1, 0, 0x7F, self.client_guid, off,
                           2 if ctx else 0, 0) + struct.pack(f"<{len(dialects)}H", *dialects) + bytes(pad) + ctx
        raw = self._send(Header(Command.NEGOTIATE), body)
        r = self.recv(0)
        assert r.header.status == 0, hex(r.header.status)
        if self.dialect == Dialect.SMB311:
            self.preauth = crypto.preauth_hash(crypto.preauth_hash(crypto.PREAUTH_ZERO, raw), self._last_raw)
            self.signing = crypto.SigningAlgorithm.AES_CMAC
        elif self.dialect < Dialect.SMB30:
            self.signing = crypto.SigningAlgorithm.HMAC_SHA256

    def _login(self, user: str, password: str) -> None:
        ctx = spnego.client(user, password, protocol="ntlm")
        token = ctx.step()
        preauth = self.preauth
        while True:
            body = struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, 88, len(token or b""), 0) + (token or b"")
            raw = self._send(Header(Command.SESSION_SETUP), body)
            if self.dialect == Dialect.SMB311:
                preauth = crypto.preauth_hash(preauth, raw)
            r = self.recv(Header.decode(raw).message_id)
            self.session_id = r.header.session_id
            if r.header.status == 0xC0000016:
                if self.dialect == Dialect.SMB311:
                    preauth = crypto.preauth_hash(preauth, self._last_raw)
                off, n = struct.unpack_from("<HH", r.body, 4)
                token = ctx.step(r.body[off - 64: off - 64 + n])
                continue
            if r.header.status != 0:
                raise PermissionError(hex(r.header.status))
            keys = crypto.derive_keys(ctx.session_key, self.dialect, preauth if self.dialect == Dialect.SMB311
                                      else None)
            self.signing_key = keys.signing
            return

    def tree_connect(self, share: str) -> None:
        path = f"\\\\127.0.0.1\\{share}".encode("utf-16-le")
        r = self.call(Command.TREE_CONNECT, struct.pack("<HHHH", 9, 0, 72, len(path)) + path)
        assert r.header.status == 0, hex(r.header.status)
        self.tree_id = r.header.tree_id

    # -- files ------------------------------------------------------------------------------
    def create(self, name: str, *, access: int = 0x0012019F, share: int = 7, disposition: int = 3,
               options: int = 0x40, oplock: int = 0, contexts: list[tuple[bytes, bytes]] | None = None
               ) -> tuple[int, bytes, int, dict[bytes, bytes], Response]:
        """(status, file id, oplock level, response contexts, the response)."""
        raw_name = name.encode("utf-16-le")
        ctx = encode_contexts(contexts or [])
        name_off = 64 + 56
        ctx_off = (name_off + len(raw_name) + 7) // 8 * 8 if ctx else 0
        body = struct.pack("<HBBIQQIIIIIHHII", 57, 0, oplock, 2, 0, 0, access, 0x80, share, disposition, options,
                           name_off, len(raw_name), ctx_off, len(ctx)) + raw_name
        if ctx:
            body += bytes(ctx_off - 64 - len(body)) + ctx
        r = self.call(Command.CREATE, body, self.tree_id)
        if r.header.status != 0:
            return r.header.status, b"", 0, {}, r
        level = r.body[2]
        fid = r.body[64:80]
        c_off, c_len = struct.unpack_from("<II", r.body, 80)
        got = dict(parse_contexts(r.body[c_off - 64: c_off - 64 + c_len])) if c_len else {}
        return 0, fid, level, got, r

    def write(self, fid: bytes, offset: int, data: bytes) -> int:
        body = struct.pack("<HHIQ16sIIHHI", 49, 112, len(data), offset, fid, 0, 0, 0, 0, 0) + data
        return self.call(Command.WRITE, body, self.tree_id).header.status

    def read(self, fid: bytes, offset: int, length: int) -> tuple[int, bytes]:
        body = struct.pack("<HBBIQ16sIIIHH", 49, 0, 0, length, offset, fid, 0, 0, 0, 0, 0) + b"\0"
        r = self.call(Command.READ, body, self.tree_id)
        if r.header.status != 0:
            return r.header.status, b""
        off, n = r.body[2], struct.unpack_from("<I", r.body, 4)[0]
        return 0, r.body[off - 64: off - 64 + n]

    def close(self, fid: bytes) -> int:
        return self.call(Command.CLOSE, struct.pack("<HHI16s", 24, 0, 0, fid), self.tree_id).header.status

    def ack_lease(self, key: bytes, state: int) -> Response:
        return self.call(Command.OPLOCK_BREAK, struct.pack("<HHI16sIQ", 36, 0, 0, key, state, 0), self.tree_id)

    def ack_oplock(self, fid: bytes, level: int) -> Response:
        return self.call(Command.OPLOCK_BREAK, struct.pack("<HBBI16s", 24, level, 0, 0, fid), self.tree_id)

    def shutdown(self) -> None:
        self.sock.close()
