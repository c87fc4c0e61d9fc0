"""One SMB connection as a state machine: frames in, frames out (MS-SMB2 3.3.5). No sockets.

:meth:`Connection.handle` takes one Direct-TCP frame's contents and returns the frames to send
back (each without its 4-byte transport header). It runs, for every frame:

1. An encrypted frame (``\\xfdSMB``) is decrypted with its session's client-to-server key; one
   that does not authenticate closes the connection (3.3.5.2.1.1). Answers to encrypted
   requests are encrypted.
2. An SMB1 NEGOTIATE is answered only as the first frame; any other SMB1 message, compression
   transforms and garbage close the connection.
3. The compound is split; each message: the credit window (a MessageId outside it closes the
   connection), the session (USER_SESSION_DELETED), the signature (a bad or missing one when
   signing is required: ACCESS_DENIED, nothing runs), encryption required by the session or the
   share (ACCESS_DENIED), then the command's handler (``handlers``). Related messages inherit
   the session, tree and FileId (``header.ChainState``).
4. Responses grant credits (the client's request, keeping at most :data:`MAX_CREDITS`
   outstanding), are signed when the request was or the session requires it, compounded and,
   if the request came encrypted, encrypted.

Handlers return a :class:`Reply` or raise SmbError / a core.fs error (mapped by
``errors.status_of``). Operations that wait (a blocking LOCK, CHANGE_NOTIFY) get an interim
STATUS_PENDING answer with an AsyncId and complete later through :meth:`Connection.complete`,
which hands the finished frame to ``send`` (the server's socket writer).
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import crypto, framing
from .credits import SequenceWindow, credit_charge
from .crypto import Dialect, TransformHeader
from .errors import SmbError, expected, status_of
from .header import (
    HEADER_SIZE,
    ChainState,
    Command,
    Flags,
    Header,
    HeaderError,
    Message,
    encode_error,
    split_compound,
)
from .negotiate import Negotiated, smb1_response
from .spnego import NEG_TOKEN_INIT2
from .state import Open, ServerContext, Session, Tree, filetime_now
from .status import NtStatus, is_error

log = logging.getLogger("tessera.smb")

MAX_CREDITS = 512
_NO_SESSION = frozenset({Command.NEGOTIATE, Command.SESSION_SETUP, Command.ECHO})
_NO_TREE = _NO_SESSION | {Command.LOGOFF, Command.TREE_CONNECT, Command.CANCEL, Command.OPLOCK_BREAK}


class Disconnect(Exception):
    """Close the connection without an answer."""


@dataclass
class Request:
    """One message being handled."""

    header: Header
    body: memoryview
    raw: memoryview
    session: Session | None
    tree: Tree | None
    chain: ChainState
    encrypted: bool


@dataclass
class Reply:
    """A handler's answer: the body (success or a warning status with data)."""

    body: bytes | bytearray | memoryview
    status: int = NtStatus.SUCCESS
    file_id: bytes | None = None       # the FileId this message used or made (for related messages)
    session_id: int | None = None      # SESSION_SETUP: the new session's id in the header
    sign_with: Session | None = None   # SESSION_SETUP success: sign with the new keys
    pending: Any = None                # go async: the handler's Pending object
    after: Callable[[bytes], None] | None = None  # sees the response message (preauth hash)
    defer: Callable[[], None] | None = None  # slow work to finish before the answer, off the connection's lock


@dataclass
class Deferred:
    """An answer that waits for ``work`` (a WRITE's commit), run by the server off the connection's lock
    so the connection's next requests are handled meanwhile; ``finish(error)`` then gives the frames."""

    work: Callable[[], None]
    finish: Callable[[BaseException | None], list[bytes]]


@dataclass
class Pending:
    """An operation answered STATUS_PENDING, completed later by :meth:`Connection.complete`."""

    async_id: int
    header: Header
    session: Session | None
    encrypted: bool
    retry: Callable[[], Reply | None] | None = None   # poll: None = still waiting
    rest: list[Message] = field(default_factory=list)  # the compound's messages after this one
    chain: ChainState | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Handler = Callable[["Connection", Request], Reply]


class Connection:
    """The server side of one TCP connection (see the module docstring)."""

    def __init__(self, ctx: ServerContext, peer: tuple[str, int], send: Callable[[bytes], None],
                 handlers: dict[Command, Handler], local: tuple[str, int] = ("127.0.0.1", 445)) -> None:
        self.ctx = ctx
        self.peer = peer
        self.local = local
        self.send = send
        self.handlers = handlers
        self.negotiated: Negotiated | None = None
        self.preauth = crypto.PREAUTH_ZERO
        self.window = SequenceWindow()
        self.sessions: dict[int, Session] = {}
        self.opens: dict[int, Open] = {}
        self.pending: dict[int, Pending] = {}
        self.lock = threading.RLock()
        self.frames = 0
        self.closed = False
        self._defer: Callable[[], None] | None = None

    # -- the frame loop ---------------------------------------------------------------
    def handle(self, frame: bytes) -> Sequence[bytes | Deferred]:
        """Answer one frame (frames to send now, or a :class:`Deferred`); Disconnect when the connection
        must close."""
        with self.lock:
            self.frames += 1
            k = framing.kind(frame)
            if k == framing.FrameKind.TRANSFORM:
                return self._encrypted(frame)
            if k == framing.FrameKind.SMB1:
                return self._smb1(frame)
            if k != framing.FrameKind.SMB2:
                raise Disconnect(f"frame of kind {k.name}")
            return self._compound(frame, encrypted=None)

    def _smb1(self, frame: bytes) -> list[bytes]:
        if self.frames != 1 or self.negotiated is not None:
            raise Disconnect("SMB1 after the first frame")
        try:
            dialects = framing.smb1_dialects(frame)
        except framing.FramingError as e:
            raise Disconnect(f"malformed SMB1 NEGOTIATE: {e}") from None
        got = smb1_response(dialects, self.ctx.negotiate, self.ctx.server_guid, NEG_TOKEN_INIT2, filetime_now(), 0)
        if got is None:
            raise Disconnect("SMB1 NEGOTIATE without an SMB2 dialect")
        negotiated, out = got
        self.window.consume(0)  # the SMB2 answer is MessageId 0; the client goes on with 1
        self.window.grant(1)
        if not negotiated.wildcard:
            self.negotiated = negotiated
        return [out]

    def _encrypted(self, frame: bytes) -> Sequence[bytes | Deferred]:
        if len(frame) < crypto.TRANSFORM_HEADER_SIZE + HEADER_SIZE:
            raise Disconnect("short transform")
        th = TransformHeader.unpack(frame[:crypto.TRANSFORM_HEADER_SIZE])
        session = self.sessions.get(th.session_id)
        n = self.negotiated
        if (session is None or session.keys is None or session.keys.client_to_server is None or n is None
                or session.cipher is None):
            raise Disconnect(f"encrypted message for unknown session {th.session_id:#x}")
        try:
            plain = crypto.decrypt(frame, session.keys.client_to_server, session.cipher)
        except crypto.SmbCryptoError as e:
            raise Disconnect(f"decryption failed: {e}") from None
        return self._compound(plain, encrypted=session)

    def _compound(self, frame: bytes, encrypted: Session | None) -> Sequence[bytes | Deferred]:
        try:
            messages = split_compound(frame)
        except HeaderError as e:
            if e.disconnect or e.header is None:
                raise Disconnect(str(e)) from None
            messages = []
            bad = e.header
            return self._finish([(bad.response(e.status), encode_error(), None, None)], encrypted)
        chain = ChainState()
        out: list[tuple[Header, bytes | bytearray | memoryview, Session | None, Callable[[bytes], None] | None]] = []
        for i, m in enumerate(messages):
            if m.header.is_response:
                raise Disconnect("a response sent to the server")
            result = self._one(m, chain, encrypted)
            if result is None:
                continue
            out.append(result)
            if result[0].status == NtStatus.PENDING and result[0].is_async and i < len(messages) - 1:
                # the rest of the compound runs when this one completes, compounded with its final answer
                # (MS-SMB2 3.3.4.2, as Samba does): now only the answers so far and the interim one
                p = self.pending[result[0].async_id]
                p.rest = [Message(x.header, memoryview(bytes(x.raw)), x.offset) for x in messages[i + 1:]]
                p.chain = chain
                break
        if self._defer is not None:
            work, self._defer = self._defer, None
            if len(messages) == 1 and len(out) == 1:
                return [self._deferred(work, out[0], encrypted)]
            work()  # inside a compound: finish it now
        return self._finish(out, encrypted) if out else []

    def _deferred(self, work: Callable[[], None], answer: tuple[Header, bytes | bytearray | memoryview,
                  Session | None, Callable[[bytes], None] | None], encrypted: Session | None) -> Deferred:
        def finish(err: BaseException | None) -> list[bytes]:
            with self.lock:
                if self.closed:
                    return []
                h, body, session, after = answer
                if err is not None:
                    if not expected(err):
                        log.error("SMB %s from %s failed", h.command.name, self.peer[0], exc_info=err)
                    h.status, body = status_of(err), encode_error()
                return self._finish([(h, body, session, after)], encrypted)
        return Deferred(work, finish)

    def _one(self, m: Message, chain: ChainState, encrypted: Session | None
             ) -> tuple[Header, bytes | bytearray | memoryview, Session | None, Callable[[bytes], None] | None] | None:
        h = m.header
        if h.command == Command.CANCEL:
            self._cancel(h)
            return None
        self._credits(h, m)
        try:
            session_id, tree_id = chain.enter(h)
        except HeaderError as e:
            return self._error(h, e.status, None, chain)
        credits = self._grant(h)
        session: Session | None = None
        try:
            self._check_charge(h, m)
            if h.command not in _NO_SESSION or (h.command == Command.SESSION_SETUP and session_id):
                session = self.sessions.get(session_id)
                if session is None:
                    raise SmbError(NtStatus.USER_SESSION_DELETED, f"no session {session_id:#x}")
            if h.command == Command.NEGOTIATE or (h.command == Command.ECHO and session_id == 0):
                pass
            elif session is not None:
                self._check_signature(h, m, session, encrypted)
                if h.command != Command.SESSION_SETUP and not session.valid:
                    raise SmbError(NtStatus.USER_SESSION_DELETED, "session setup not finished")
                if session.encrypt_data and encrypted is None and h.command != Command.SESSION_SETUP:
                    raise SmbError(NtStatus.ACCESS_DENIED, "the session must encrypt")
            tree = None
            if h.command not in _NO_TREE:
                assert session is not None
                tree = session.trees.get(tree_id)
                if tree is None:
                    raise SmbError(NtStatus.NETWORK_NAME_DELETED, f"no tree {tree_id}")
                if tree.encrypt and encrypted is None:
                    raise SmbError(NtStatus.ACCESS_DENIED, f"share {tree.share and tree.share.name} must encrypt")
            handler = self.handlers.get(h.command)
            if handler is None:
                raise SmbError(NtStatus.NOT_SUPPORTED, f"{h.command.name} is not served")
            if self.negotiated is None and h.command != Command.NEGOTIATE:
                raise Disconnect(f"{h.command.name} before NEGOTIATE")
            req = Request(h, m.body, m.raw, session, tree, chain, encrypted is not None)
            reply = handler(self, req)
        except Disconnect:
            raise
        except HeaderError as e:
            return self._error(h, e.status, session, chain, credits)
        except Exception as e:
            if not expected(e):
                log.exception("SMB %s from %s failed", h.command.name, self.peer[0])
            return self._error(h, status_of(e), session, chain, credits, getattr(e, "data", b""))
        if reply.defer is not None:
            self._defer = reply.defer
        if reply.session_id is not None:
            chain.set_ids(session_id=reply.session_id)
        if h.command == Command.TREE_CONNECT and not is_error(reply.status) and session is not None:
            chain.set_ids(tree_id=max(session.trees))
        chain.leave(reply.status, reply.file_id)
        resp = h.response(reply.status, credits)
        if reply.session_id is not None:
            resp.session_id = reply.session_id
        if h.command == Command.TREE_CONNECT and not is_error(reply.status) and session is not None:
            resp.tree_id = max(session.trees)
        if reply.pending is not None:
            p: Pending = reply.pending
            resp.flags |= Flags.ASYNC_COMMAND
            resp.async_id = p.async_id
            resp.status = NtStatus.PENDING
            self.pending[p.async_id] = p
            return resp, encode_error(), session, None
        signer = reply.sign_with or session
        return resp, reply.body, signer, reply.after

    def _error(self, h: Header, status: int, session: Session | None, chain: ChainState,
               credits: int | None = None, data: bytes = b"") -> tuple[Header, bytes, Session | None, None]:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %s", self.peer[0], h.command.name, _name(status))
        chain.leave(status, None if h.command == Command.CREATE else chain.last_file_id)
        resp = h.response(status, self._grant(h) if credits is None else credits)
        return resp, encode_error(data), session, None

    # -- credits, signing, encryption ----------------------------------------------------
    def _credits(self, h: Header, m: Message) -> None:
        n = self.negotiated
        multi = n is not None and n.dialect >= Dialect.SMB21
        charge = max(h.credit_charge, 1) if multi else 1
        if not self.window.consume(h.message_id, charge):
            raise Disconnect(f"MessageId {h.message_id} (charge {charge}) outside the credit window")

    def _check_charge(self, h: Header, m: Message) -> None:
        n = self.negotiated
        if n is None or n.dialect < Dialect.SMB21:
            return
        send, back = _payload(h.command, m.body)
        if max(h.credit_charge, 1) < credit_charge(send, back):
            raise SmbError(NtStatus.INVALID_PARAMETER,
                           f"CreditCharge {h.credit_charge} does not pay for {max(send, back)} bytes")

    def _grant(self, h: Header) -> int:
        outstanding = self.window.available
        want = max(h.credits, 1)
        grant = max(0, min(want, MAX_CREDITS - outstanding))
        if outstanding + grant == 0:
            grant = 1
        self.window.grant(grant)
        return grant

    def _check_signature(self, h: Header, m: Message, session: Session, encrypted: Session | None) -> None:
        if encrypted is not None:
            return
        keys = session.keys
        if h.is_signed:
            if keys is None:
                if h.command == Command.SESSION_SETUP:
                    return
                raise SmbError(NtStatus.ACCESS_DENIED, "signed message for a session without a key")
            if not crypto.verify(m.raw, keys.signing, session.signing):
                log.warning("bad signature from %s on %s", self.peer[0], h.command.name)
                raise SmbError(NtStatus.ACCESS_DENIED, "bad signature")
            session.client_signs = True
            return
        if session.valid and session.signing_required and h.command != Command.SESSION_SETUP and not session.anonymous:
            raise SmbError(NtStatus.ACCESS_DENIED, "unsigned message on a session that requires signing")

    def _finish(self, out: list[tuple[Header, bytes | bytearray | memoryview, Session | None,
                                      Callable[[bytes], None] | None]], encrypted: Session | None) -> list[bytes]:
        msgs: list[bytearray] = []
        last = len(out) - 1
        for i, (h, body, session, after) in enumerate(out):
            size = HEADER_SIZE + len(body)
            pad = 0 if i == last else -size % 8
            h.next_command = 0 if i == last else size + pad
            raw = bytearray(h.encode())
            raw += body
            if pad:
                raw += bytes(pad)
            if after is not None:
                after(bytes(raw))
            if session is not None and session.keys is not None and encrypted is None and self._should_sign(h, session):
                crypto.sign_into(raw, session.keys.signing, session.signing)
            msgs.append(raw)
        frame = msgs[0] if len(msgs) == 1 else bytearray(b"".join(msgs))
        keys = encrypted.keys if encrypted is not None else None
        if encrypted is not None and keys is not None and keys.server_to_client and encrypted.cipher:
            return [crypto.encrypt(bytes(frame), keys.server_to_client, encrypted.cipher, encrypted.id)]
        return [frame]  # type: ignore[list-item]

    def _should_sign(self, h: Header, session: Session) -> bool:
        if h.status == NtStatus.PENDING and h.is_async:
            return False
        if session.anonymous:
            return False
        return session.signing_required or session.client_signs or h.command == Command.SESSION_SETUP

    # -- async operations -----------------------------------------------------------------
    def send_unsolicited(self, message: bytes, session: Session | None) -> None:
        """Send a server-initiated message (an oplock/lease break), encrypted under ``session``."""
        keys = session.keys if session is not None else None
        if session is not None and keys is not None and keys.server_to_client and session.cipher:
            message = crypto.encrypt(message, keys.server_to_client, session.cipher, session.id)
        self.send(message)

    def new_pending(self, req: Request, **kw: Any) -> Pending:
        return Pending(self.ctx.next_id(), req.header, req.session, req.encrypted, **kw)

    def complete(self, p: Pending, reply: Reply) -> None:
        """Send the final answer of a pending operation (from any thread)."""
        with self.lock:
            if self.pending.pop(p.async_id, None) is None or self.closed:
                return
            h = p.header.response(reply.status, 0)
            h.flags |= Flags.ASYNC_COMMAND
            h.async_id = p.async_id
            body = reply.body if reply.body and not is_error(reply.status) else encode_error()
            enc = p.session if p.encrypted else None
            out: list[tuple[Header, bytes | bytearray | memoryview, Session | None, Callable[[bytes], None] | None]]
            out = [(h, body, p.session, None)]
            if p.rest and p.chain is not None:
                p.chain.leave(reply.status, reply.file_id)
                for m in p.rest:
                    result = self._one(m, p.chain, enc)
                    if result is not None:
                        out.append(result)
            frames = self._finish(out, enc)
        for f in frames:
            self.send(f)

    def poll(self) -> None:
        """Retry waiting operations (blocked locks, change notifications, CREATEs waiting on breaks)."""
        with self.lock:
            self._poll()

    def _poll(self) -> None:
        for p in list(self.pending.values()):
            if p.retry is None:
                continue
            try:
                r = p.retry()
            except Exception as e:
                r = Reply(b"", status_of(e))
            if r is not None:
                self.complete(p, r)

    def _cancel(self, h: Header) -> None:
        target = None
        for p in self.pending.values():
            if (h.is_async and p.async_id == h.async_id) or (not h.is_async and p.header.message_id == h.message_id):
                target = p
                break
        if target is None:
            return
        self.complete(target, Reply(b"", NtStatus.CANCELLED))

    # -- teardown ----------------------------------------------------------------------
    def close(self) -> None:
        """Release everything the connection holds (opens, locks, share modes)."""
        from .handlers_file import close_open
        with self.lock:
            self.closed = True
            for o in list(self.opens.values()):
                try:
                    close_open(self, o)
                except Exception:
                    log.exception("closing open %s on disconnect", o.path)
            self.opens.clear()
            self.pending.clear()
            self.sessions.clear()


_SIZES = {  # command -> (offset of the bytes sent, offset of the bytes asked back) in the request body
    Command.WRITE: (4, None), Command.READ: (None, 4), Command.QUERY_DIRECTORY: (None, 28),
    Command.IOCTL: (28, 44), Command.QUERY_INFO: (None, 4), Command.CHANGE_NOTIFY: (None, 4),
}


def _payload(command: Command, body: memoryview) -> tuple[int, int]:
    """What a request sends and may get back, for its credit charge (MS-SMB2 3.3.5.2.5)."""
    where = _SIZES.get(command)
    if where is None:
        return 0, 0
    out = []
    for off in where:
        out.append(int.from_bytes(body[off:off + 4], "little") if off is not None and len(body) >= off + 4 else 0)
    return out[0], out[1]


def _name(status: int) -> str:
    try:
        return NtStatus(status).name
    except ValueError:
        return f"{status:#010x}"


def unpack(fmt: struct.Struct, body: memoryview, what: str) -> tuple[Any, ...]:
    """Fixed fields of a request body; INVALID_PARAMETER when too short."""
    if len(body) < fmt.size:
        raise SmbError(NtStatus.INVALID_PARAMETER, f"{what}: {len(body)} bytes is too short")
    return fmt.unpack_from(body)


def buffer_at(req: Request, offset: int, length: int, what: str) -> bytes:
    """A request's variable part at header-relative ``offset``; INVALID_PARAMETER when out of bounds."""
    if length == 0:
        return b""
    start = offset - HEADER_SIZE
    if offset < HEADER_SIZE or start + length > len(req.body):
        raise SmbError(NtStatus.INVALID_PARAMETER, f"{what} runs outside the message")
    return bytes(req.body[start:start + length])
