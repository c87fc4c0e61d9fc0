"""NEGOTIATE, SESSION_SETUP, LOGOFF, TREE_CONNECT, TREE_DISCONNECT and ECHO (MS-SMB2 3.3.5.3-3.3.5.8).

Rules kept here:

- A second NEGOTIATE on a connection closes it; a signed NEGOTIATE is INVALID_PARAMETER. For 3.1.1
  the connection's preauth integrity hash covers the NEGOTIATE request and response; every session
  setup continues it with its own requests and responses up to (not including) the final response,
  and the 3.1.1 keys derive from that hash.
- SESSION_SETUP runs NTLMv2 in SPNEGO (``auth.NtlmServer``); MORE_PROCESSING_REQUIRED keeps the
  session in progress; a failure removes the session at once (its id then answers
  USER_SESSION_DELETED: nothing works on it), a success makes it valid with the user's core.fs
  credential from core.identity. Anonymous logons succeed only when a share allows guests, and
  such a session reaches only those shares. Multichannel binding is REQUEST_NOT_ACCEPTED (the
  server does not advertise multichannel).
- TREE_CONNECT: ``\\\\server\\share``; IPC$ for named pipes (srvsvc); a share the user may not use
  is ACCESS_DENIED, an unknown or unservable one BAD_NETWORK_NAME, an encrypting share on a
  session that cannot encrypt ACCESS_DENIED. MaximalAccess is what core.fs grants on the share
  root (write bits removed on a read-only share).
"""

from __future__ import annotations

import os
import struct

from core.errors import CoreError
from core.fs import ANONYMOUS
from core.fs import acl as A

from . import crypto, negotiate
from .auth import NtlmServer, identity_lookup
from .conn import Connection, Disconnect, Reply, Request, buffer_at, unpack
from .crypto import Dialect
from .errors import SmbError
from .header import Command
from .shares import IPC_SHARE, by_name
from .spnego import NEG_TOKEN_INIT2
from .state import Session, Tree, filetime_now
from .status import NtStatus

_SESSION_SETUP = struct.Struct("<HBBIIHHQ")     # 24 bytes
_SESSION_RESP = struct.Struct("<HHHH")
_TREE_CONNECT = struct.Struct("<HHHH")
_TREE_RESP = struct.Struct("<HBBIII")
_SIMPLE = struct.Struct("<HH")
SESSION_FLAG_BINDING = 0x01
SESSION_IS_GUEST = 0x1
SESSION_IS_NULL = 0x2
SESSION_ENCRYPT_DATA = 0x4
SHARE_TYPE_DISK = 1
SHARE_TYPE_PIPE = 2
SHAREFLAG_ENCRYPT_DATA = 0x8000
SHAREFLAG_NO_CACHING = 0x30
SECURITY_SIGNING_REQUIRED = 0x2
FULL_ACCESS = 0x001F01FF
READ_ONLY_MASK = 0x00120089 | 0x00020000  # READ_DATA, READ_EA, EXECUTE, READ_ATTRIBUTES, READ_CONTROL, SYNC


def negotiate_(conn: Connection, req: Request) -> Reply:
    if conn.negotiated is not None:
        raise Disconnect("a second NEGOTIATE")
    if req.header.is_signed:
        raise SmbError(NtStatus.INVALID_PARAMETER, "a signed NEGOTIATE")
    try:
        parsed = negotiate.parse_request(req.body)
        chosen = negotiate.choose(parsed, conn.ctx.negotiate)
    except negotiate.NegotiateError as e:
        raise SmbError(e.status, str(e)) from None
    body = negotiate.encode_response(chosen, conn.ctx.server_guid, NEG_TOKEN_INIT2, filetime_now(),
                                     conn.ctx.start_filetime)
    conn.negotiated = chosen
    after = None
    if chosen.dialect == Dialect.SMB311:
        conn.preauth = crypto.preauth_hash(crypto.PREAUTH_ZERO, bytes(req.raw))

        def after(raw: bytes) -> None:
            conn.preauth = crypto.preauth_hash(conn.preauth, raw)
    return Reply(body, after=after)


def _guest_allowed(conn: Connection) -> bool:
    return any(s.guest for s in conn.ctx.shares())


def session_setup(conn: Connection, req: Request) -> Reply:
    n = conn.negotiated
    assert n is not None
    _, flags, security_mode, _caps, _channel, off, length, _prev = unpack(_SESSION_SETUP, req.body, "SESSION_SETUP")
    token = buffer_at(req, off, length, "security buffer")
    if flags & SESSION_FLAG_BINDING:
        raise SmbError(NtStatus.REQUEST_NOT_ACCEPTED, "multichannel binding is not supported")
    session = req.session
    if session is None:
        sid = int.from_bytes(os.urandom(8), "little") | 1
        session = Session(sid, NtlmServer(identity_lookup(conn.ctx.identity), conn.ctx.server_name, conn.ctx.domain,
                                          allow_guest=_guest_allowed(conn)))
        session.preauth = conn.preauth
        conn.sessions[sid] = session
    elif session.valid:
        # re-authentication: a fresh exchange for the same session id and user
        session.ntlm = NtlmServer(identity_lookup(conn.ctx.identity), conn.ctx.server_name, conn.ctx.domain,
                                  allow_guest=False)
        session.preauth = conn.preauth
    is_311 = n.dialect == Dialect.SMB311
    if is_311:
        session.preauth = crypto.preauth_hash(session.preauth, bytes(req.raw))
    reply_token, status = session.ntlm.step(token)
    if status == NtStatus.MORE_PROCESSING_REQUIRED:
        def after(raw: bytes) -> None:
            if is_311:
                session.preauth = crypto.preauth_hash(session.preauth, raw)
        return Reply(_session_body(0, reply_token), status, session_id=session.id, after=after)
    if status != NtStatus.SUCCESS:
        was_valid = session.valid
        conn.sessions.pop(session.id, None)
        if was_valid:
            for t in list(session.trees.values()):
                _drop_tree(conn, session, t)
        raise SmbError(NtStatus(status), "logon failed")
    return _established(conn, session, reply_token, security_mode)


def _established(conn: Connection, session: Session, reply_token: bytes, security_mode: int) -> Reply:
    n = conn.negotiated
    assert n is not None
    ntlm = session.ntlm
    if session.valid and session.user != ntlm.user:
        conn.sessions.pop(session.id, None)
        raise SmbError(NtStatus.ACCESS_DENIED, "re-authentication as another user")
    session.user = ntlm.user
    session_flags = 0
    if ntlm.anonymous or ntlm.user is None:
        session.cred = None
        session.fs = None
        session.keys = None
        session_flags = SESSION_IS_NULL
    else:
        user = conn.ctx.identity.user(ntlm.user)
        if user is None:
            conn.sessions.pop(session.id, None)
            raise SmbError(NtStatus.LOGON_FAILURE, f"user {ntlm.user} vanished")
        session.cred = user.cred
        session.groups = user.groups
        session.fs = conn.ctx.view(user.cred)
        key = ntlm.session_key or bytes(16)
        cipher = n.cipher or crypto.Cipher.AES_128_CCM
        session.keys = crypto.derive_keys(key, n.dialect, session.preauth if n.dialect == Dialect.SMB311 else None,
                                          cipher)
        session.signing = n.signing
        session.cipher = n.cipher
        session.signing_required = n.signing_required or bool(security_mode & SECURITY_SIGNING_REQUIRED)
    session.valid = True
    return Reply(_session_body(session_flags, reply_token), session_id=session.id,
                 sign_with=session if session.keys is not None else None)


def _session_body(flags: int, token: bytes) -> bytes:
    return _SESSION_RESP.pack(9, flags, 64 + 8, len(token)) + token


def logoff(conn: Connection, req: Request) -> Reply:
    session = req.session
    assert session is not None
    for t in list(session.trees.values()):
        _drop_tree(conn, session, t)
    conn.sessions.pop(session.id, None)
    return Reply(_SIMPLE.pack(4, 0))


def echo(conn: Connection, req: Request) -> Reply:
    return Reply(_SIMPLE.pack(4, 0))


def tree_connect(conn: Connection, req: Request) -> Reply:
    session = req.session
    assert session is not None
    _, _flags, off, length = unpack(_TREE_CONNECT, req.body, "TREE_CONNECT")
    try:
        path = buffer_at(req, off, length, "path").decode("utf-16-le")
    except UnicodeDecodeError:
        raise SmbError(NtStatus.BAD_NETWORK_NAME, "path is not UTF-16") from None
    name = path.rsplit("\\", 1)[-1]
    if not path.startswith("\\\\") or not name:
        raise SmbError(NtStatus.BAD_NETWORK_NAME, f"tree path {path!r}")
    tid = next(session.tree_ids)
    if name.casefold() == IPC_SHARE.casefold():
        session.trees[tid] = Tree(tid, None, None, None, READ_ONLY_MASK | 0x2 | 0x4)
        return Reply(_TREE_RESP.pack(16, SHARE_TYPE_PIPE, 0, 0, 0, FULL_ACCESS))
    share = by_name(conn.ctx.shares(), name)
    if share is None:
        raise SmbError(NtStatus.BAD_NETWORK_NAME, f"no share {name!r}")
    if not share.allows(session.user, session.groups):
        raise SmbError(NtStatus.ACCESS_DENIED, f"{session.user or 'guest'} may not use share {share.name}")
    if share.encrypt and (session.cipher is None or session.keys is None):
        raise SmbError(NtStatus.ACCESS_DENIED, f"share {share.name} needs encryption this session cannot do")
    fs = session.fs if session.fs is not None else conn.ctx.view(ANONYMOUS)
    try:
        root = conn.ctx.fs.resolve(share.path)
    except CoreError as e:
        raise SmbError(NtStatus.BAD_NETWORK_NAME, f"share {share.name}: {e}") from None
    if not root.is_dir:
        raise SmbError(NtStatus.BAD_NETWORK_NAME, f"share {share.name}: {share.path} is not a directory")
    try:
        maximal = fs.access(root.ino, A.FULL_MASK)
    except CoreError:
        maximal = 0
    if share.read_only:
        maximal &= READ_ONLY_MASK
    session.trees[tid] = Tree(tid, share, root, fs, maximal, encrypt=share.encrypt)
    flags = SHAREFLAG_ENCRYPT_DATA if share.encrypt else 0
    return Reply(_TREE_RESP.pack(16, SHARE_TYPE_DISK, 0, flags, 0, maximal))


def tree_disconnect(conn: Connection, req: Request) -> Reply:
    session, tree = req.session, req.tree
    assert session is not None and tree is not None
    _drop_tree(conn, session, tree)
    return Reply(_SIMPLE.pack(4, 0))


def _drop_tree(conn: Connection, session: Session, tree: Tree) -> None:
    from .handlers_file import close_open
    for o in [o for o in conn.opens.values() if o.tree.connected is tree]:
        close_open(conn, o)
    session.trees.pop(tree.id, None)


HANDLERS = {
    Command.NEGOTIATE: negotiate_,
    Command.SESSION_SETUP: session_setup,
    Command.LOGOFF: logoff,
    Command.ECHO: echo,
    Command.TREE_CONNECT: tree_connect,
    Command.TREE_DISCONNECT: tree_disconnect,
}
