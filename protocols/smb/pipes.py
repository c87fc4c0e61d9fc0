"""Named pipes in IPC$: only ``srvsvc`` (share listing for ``smbclient -L`` and Explorer).

An open of ``srvsvc`` gets a :class:`~protocols.smb.srvsvc.SrvsvcPipe` listing the browseable shares
the session's user may connect to; WRITE feeds it DCE/RPC PDUs, READ returns its answers
(BUFFER_OVERFLOW while a message goes on), IOCTL FSCTL_PIPE_TRANSCEIVE does both. Other pipe
names (lsarpc, samr, wkssvc...) are OBJECT_NAME_NOT_FOUND: Tessera is not a domain member.
"""

from __future__ import annotations

import struct

from .conn import Connection, Reply, Request
from .errors import SmbError
from .srvsvc import STYPE_DISKTREE, STYPE_IPC, PipeError, ShareInfo, SrvsvcPipe
from .state import Open
from .status import NtStatus

_RESPONSE = struct.Struct("<HBBIQQQQQQII16sII")
FILE_ATTRIBUTE_NORMAL = 0x80


def visible_shares(conn: Connection, o_session: object) -> list[ShareInfo]:
    from .state import Session
    assert isinstance(o_session, Session)
    out = [ShareInfo(s.name, STYPE_DISKTREE, s.comment, "C:\\" + s.path.strip("/").replace("/", "\\"),
                     0x8000 if s.encrypt else 0)
           for s in conn.ctx.shares() if s.browseable and s.allows(o_session.user, o_session.groups)]
    out.append(ShareInfo("IPC$", STYPE_IPC, "IPC Service"))
    return out


def open_pipe(conn: Connection, req: Request, name: str, desired: int) -> Reply:
    key = name.lower().removeprefix("\\").removeprefix("pipe\\")
    if key != "srvsvc":
        raise SmbError(NtStatus.OBJECT_NAME_NOT_FOUND, f"no pipe {name!r}")
    assert req.session is not None and req.tree is not None
    vid = conn.ctx.next_id()
    o = Open(vid, vid, req.session, req.tree, key, 0, 0, False, desired | 0x1 | 0x2)
    o.pipe = SrvsvcPipe(visible_shares(conn, req.session), conn.ctx.server_name)
    conn.opens[vid] = o
    body = _RESPONSE.pack(89, 0, 0, 1, 0, 0, 0, 0, 4096, 0, FILE_ATTRIBUTE_NORMAL, 0, o.file_id, 0, 0)
    return Reply(body, file_id=o.file_id)


def pipe_write(conn: Connection, o: Open, data: bytes) -> Reply:
    try:
        o.pipe.write(data)
    except PipeError as e:
        raise SmbError(e.status, str(e)) from None
    return Reply(struct.pack("<HHIIHH", 17, 0, len(data), 0, 0, 0), file_id=o.file_id)


def pipe_read(conn: Connection, o: Open, length: int) -> Reply:
    got = o.pipe.read(length)
    if not got.data:
        raise SmbError(NtStatus.END_OF_FILE, "nothing to read on the pipe")
    status = NtStatus.BUFFER_OVERFLOW if got.more else NtStatus.SUCCESS
    return Reply(struct.pack("<HBBIII", 17, 80, 0, len(got.data), 0, 0) + got.data, status, file_id=o.file_id)


def transceive(o: Open, data: bytes, max_out: int) -> tuple[bytes, NtStatus]:
    """FSCTL_PIPE_TRANSCEIVE: write ``data``, read the answer (BUFFER_OVERFLOW if cut at ``max_out``)."""
    try:
        o.pipe.write(data)
    except PipeError as e:
        raise SmbError(e.status, str(e)) from None
    got = o.pipe.read(max_out)
    return got.data, NtStatus.BUFFER_OVERFLOW if got.more else NtStatus.SUCCESS
