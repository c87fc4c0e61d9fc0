"""Oplocks and leases on the wire: delivering breaks, OPLOCK_BREAK acknowledgments, and noticing
changes other protocols make (MS-SMB2 3.3.4.6/3.3.4.7, 3.3.5.22; the decisions are ``leases``).

- Breaks go to the connection of one of the holder's opens as an unsolicited OPLOCK_BREAK message
  (MessageId 0xFFFFFFFFFFFFFFFF, unsigned; encrypted when the open was made over an encrypted
  session, under that session's id).
- An acknowledgment is answered, the settled holders wake the CREATEs waiting on them (the
  server's poller is kicked at once, not after its half-second sleep).
- :func:`watch` runs from the poller: for every file some client caches, it compares core.fs's
  (ctime, size) with what it saw last; a change while no open of this server may write the file
  came from elsewhere (NFS, S3, core.fs, another SMB process) and breaks every holder to NONE
  (``Change.DATA``); a file gone breaks H (``Change.REMOVED``). Breaks not acknowledged within
  35 s are forced (``LeaseTable.expire``).
"""

from __future__ import annotations

import logging

from core.errors import CoreError
from core.fs import acl as A

from .conn import Connection, Reply, Request
from .errors import SmbError
from .header import Command, Flags, Header
from .leases import Break, Change, LeaseId, Outcome
from .oplockwire import (
    BreakWireError,
    LeaseBreakAck,
    break_notification,
    encode_lease_break_response,
    encode_oplock_break,
    parse_break_ack,
)
from .state import ServerContext
from .status import NtStatus

log = logging.getLogger("tessera.smb")
UNSOLICITED = 0xFFFFFFFFFFFFFFFF


def deliver(ctx: ServerContext, breaks: tuple[Break, ...] | list[Break]) -> None:
    """Send each break through a live open of its holder."""
    for brk in breaks:
        for oid in brk.opens:
            o = ctx.opens.get(oid)
            conn = getattr(o, "conn", None) if o is not None else None
            if o is None or conn is None or conn.closed:
                continue
            body = break_notification(brk, o.file_id)
            h = Header(Command.OPLOCK_BREAK, message_id=UNSOLICITED, flags=Flags.SERVER_TO_REDIR)
            msg = h.encode() + body
            session = o.session if o.encrypted else None
            conn.send_unsolicited(msg, session)
            break


def settle(ctx: ServerContext, out: Outcome) -> None:
    """Send an outcome's breaks and wake what waits on its settled holders."""
    if out.breaks:
        deliver(ctx, out.breaks)
    if out.settled:
        ctx.kick()


def oplock_break(conn: Connection, req: Request) -> Reply:
    n = conn.negotiated
    assert n is not None
    try:
        ack = parse_break_ack(req.body, leases=n.dialect >= 0x0210)
    except BreakWireError as e:
        raise SmbError(e.status, str(e)) from None
    ctx = conn.ctx
    if isinstance(ack, LeaseBreakAck):
        with ctx.lease_lock:
            res = ctx.leases.ack_lease(LeaseId(n.client_guid, ack.key), ack.state)
        _after(ctx, res.breaks, res.settled)
        if res.status != NtStatus.SUCCESS:
            raise SmbError(res.status, "lease break acknowledgment")
        return Reply(encode_lease_break_response(ack.key, res.value))
    o = conn.opens.get(int.from_bytes(ack.file_id[8:], "little"))
    if o is None or o.file_id != ack.file_id or o.session is not req.session:
        raise SmbError(NtStatus.FILE_CLOSED, "no such open")
    with ctx.lease_lock:
        res = ctx.leases.ack_oplock(o.volatile, ack.level)
    _after(ctx, res.breaks, res.settled)
    if res.status != NtStatus.SUCCESS:
        raise SmbError(res.status, "oplock break acknowledgment")
    return Reply(encode_oplock_break(res.value, o.file_id), file_id=o.file_id)


def _after(ctx: ServerContext, breaks: tuple[Break, ...], settled: tuple[object, ...]) -> None:
    if breaks:
        deliver(ctx, breaks)
    if settled:
        ctx.kick()


def watch(ctx: ServerContext) -> None:
    """Poll the files clients cache for changes made elsewhere; force late breaks (module doc)."""
    with ctx.lease_lock:
        late = ctx.leases.expire()
        files = ctx.leases.cached_files()
        # only a write-caching holder keeps its locks local: the lock table is checked for those files alone
        caching_writes = {ino for ino in files if any(h.state & 4 for h in ctx.leases.holders(ino))}
    if late.settled:
        ctx.kick()
    seen: dict[int, tuple[int, int] | None] = {}
    locked: list[int] = []
    for ino in files:
        try:
            a = ctx.fs.getattr(ino)
            seen[ino] = (a.ctime_ns, a.size)
            if ino in caching_writes and ctx.foreign_locks(ino):
                locked.append(ino)
        except CoreError:
            seen[ino] = None
    for ino in locked:  # a lock from elsewhere: write caching (which keeps locks local) must go
        with ctx.lease_lock:
            out = ctx.leases.on_external_change(ino, Change.OPENED)
        settle(ctx, out)
    for ino, stamp in seen.items():
        old = ctx.stamps.get(ino)
        ctx.stamps[ino] = stamp
        if old is None and stamp is not None:
            continue  # first sight
        if stamp == old:
            continue
        writers = [o for o in ctx.opens_of(ino) if o.access & (A.WRITE_DATA | A.APPEND_DATA)]
        if stamp is not None and writers:
            continue  # our own clients changed it: WRITE already broke the others
        kind = Change.REMOVED if stamp is None else Change.DATA
        with ctx.lease_lock:
            out = ctx.leases.on_external_change(ino, kind)
        log.debug("file %d changed outside this server (%s): %d breaks", ino, kind.name, len(out.breaks))
        settle(ctx, out)
    for ino in [i for i in ctx.stamps if i not in seen]:
        del ctx.stamps[ino]


def _register() -> dict[object, object]:
    return {Command.OPLOCK_BREAK: oplock_break}


HANDLERS = _register()
