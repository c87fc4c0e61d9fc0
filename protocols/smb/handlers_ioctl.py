"""IOCTL (MS-SMB2 3.3.5.15): the FSCTLs clients send to a file server (codecs in ``ioctl``).

Served: FSCTL_PIPE_TRANSCEIVE (DCE/RPC on ``srvsvc``), FSCTL_VALIDATE_NEGOTIATE_INFO (3.0/3.0.2
clients check that nobody tampered with the NEGOTIATE: a mismatch closes the connection, 3.3.5.15.12),
FSCTL_SRV_ENUMERATE_SNAPSHOTS (Previous Versions: the @GMT tokens of a file's or a directory's kept versions,
see ``snapshots``), FSCTL_SRV_REQUEST_RESUME_KEY + FSCTL_SRV_COPYCHUNK(_WRITE) (server-side copy: the data never crosses
the network; Windows' limits), FSCTL_SET_SPARSE (accepted: every Tessera file is sparse),
FSCTL_SET_ZERO_DATA (zeros written over the range) and FSCTL_QUERY_ALLOCATED_RANGES (the whole file is
reported allocated), FSCTL_QUERY_NETWORK_INTERFACE_INFO (the address the connection reached, no RSS:
multichannel is not advertised). FSCTL_GET_REPARSE_POINT is NOT_A_REPARSE_POINT; any other FSCTL
INVALID_DEVICE_REQUEST, as Windows answers; IOCTLs that are not FSCTLs NOT_SUPPORTED.
"""

from __future__ import annotations

from core.fs import acl as A

from . import ioctl as io
from .conn import Connection, Disconnect, Reply, Request
from .errors import SmbError
from .handlers_file import check_locks, find_open
from .ioctl import Fsctl, IoctlError
from .state import Open
from .status import NtStatus

ZERO_CHUNK = 1 << 20


def _answer(ctl: int, file_id: bytes, output: bytes, status: int = NtStatus.SUCCESS) -> Reply:
    return Reply(io.encode_ioctl_response(ctl, file_id, output), status)


def ioctl(conn: Connection, req: Request) -> Reply:
    n = conn.negotiated
    assert n is not None
    try:
        r = io.parse_ioctl(req.body, n.max_transact_size)
    except IoctlError as e:
        raise SmbError(e.status, str(e)) from None
    try:
        return _dispatch(conn, req, r)
    except IoctlError as e:
        if e.disconnect:
            raise Disconnect(str(e)) from None
        if e.output is not None:
            return _answer(r.ctl_code, r.file_id, e.output, e.status)
        raise SmbError(e.status, str(e)) from None


def _dispatch(conn: Connection, req: Request, r: io.IoctlRequest) -> Reply:
    n = conn.negotiated
    assert n is not None
    ctl = r.ctl_code
    if ctl == Fsctl.VALIDATE_NEGOTIATE_INFO:
        v = io.parse_validate_negotiate(r.input, r.max_output_response)
        client = io.ValidateNegotiate(n.client_capabilities, n.client_guid, n.client_security_mode,
                                      tuple(n.client_dialects))
        supported = tuple(int(d) for d in conn.ctx.negotiate.dialects)
        out = io.answer_validate_negotiate(v, client=client, dialect=int(n.dialect), supported=supported,
                                           server_capabilities=int(n.capabilities), server_guid=conn.ctx.server_guid,
                                           server_security_mode=int(n.security_mode))
        return _answer(ctl, r.file_id, out)
    if ctl == Fsctl.QUERY_NETWORK_INTERFACE_INFO:
        # the address this connection reached: the truthful answer without multichannel (no RSS claimed)
        nic = io.NetworkInterface(1, conn.local[0], capability=0)
        status, out = io.fit_output(ctl, io.encode_network_interfaces([nic]), r.max_output_response)
        if status != NtStatus.SUCCESS:
            raise SmbError(status, "MaxOutputResponse too small")
        return _answer(ctl, r.file_id, out)
    o = find_open(conn, req, r.file_id)
    if ctl == Fsctl.PIPE_TRANSCEIVE:
        if o.pipe is None:
            raise SmbError(NtStatus.INVALID_DEVICE_REQUEST, "not a pipe")
        from .pipes import transceive
        out, status = transceive(o, r.input, r.max_output_response)
        return _answer(ctl, o.file_id, out, status)
    if o.pipe is not None:
        raise SmbError(NtStatus.INVALID_DEVICE_REQUEST, f"FSCTL {ctl:#x} on a pipe")
    if ctl == Fsctl.SET_SPARSE:
        io.parse_set_sparse(r.input)
        _need(o, A.WRITE_DATA | A.WRITE_ATTRIBUTES, "set sparse")
        return _answer(ctl, o.file_id, b"")
    if ctl == Fsctl.SET_ZERO_DATA:
        return _zero_data(conn, o, io.parse_zero_data(r.input), ctl)
    if ctl == Fsctl.QUERY_ALLOCATED_RANGES:
        _need(o, A.READ_DATA, "read")
        off, length = io.parse_allocated_ranges(r.input)
        size = o.handle.size() if o.handle is not None else 0
        end = min(off + length, size)
        status, out = io.encode_allocated_ranges([(off, end - off)] if end > off else [], r.max_output_response)
        if status == NtStatus.BUFFER_TOO_SMALL:
            raise SmbError(status, "MaxOutputResponse too small")
        return _answer(ctl, o.file_id, out, status)
    if ctl == Fsctl.SRV_ENUMERATE_SNAPSHOTS:  # Previous Versions: core.fs's kept versions (``snapshots``)
        from .snapshots import enumerate_snapshots
        return _answer(ctl, o.file_id, enumerate_snapshots(o, r.max_output_response))
    if ctl == Fsctl.SRV_REQUEST_RESUME_KEY:
        return _answer(ctl, o.file_id, io.encode_resume_key(o.file_id + bytes(8), r.max_output_response))
    if ctl in (Fsctl.SRV_COPYCHUNK, Fsctl.SRV_COPYCHUNK_WRITE):
        return _copychunk(conn, o, ctl, io.parse_copychunk(r.input, r.max_output_response))
    raise SmbError(io.unsupported_status(ctl), f"FSCTL {ctl:#010x} is not served")


def _need(o: Open, mask: int, what: str) -> None:
    if not o.access & mask:
        raise SmbError(NtStatus.ACCESS_DENIED, f"the open may not {what}")


def _zero_data(conn: Connection, o: Open, rng: tuple[int, int], ctl: int) -> Reply:
    _need(o, A.WRITE_DATA, "write")
    if o.handle is None:
        raise SmbError(NtStatus.ACCESS_DENIED, "no data access")
    start, end = rng[0], min(rng[1], o.handle.size())
    check_locks(conn, o, start, max(0, end - start), True)
    pos = start
    while pos < end:
        n = min(ZERO_CHUNK, end - pos)
        o.handle.write(pos, bytes(n))
        pos += n
    return _answer(ctl, o.file_id, b"")


def _copychunk(conn: Connection, target: Open, ctl: int, req: io.CopyChunkRequest) -> Reply:
    """Server-side copy: the source open is named by the resume key this server gave (same session);
    it must read, the target write (and read, for COPYCHUNK); locks apply as to READ/WRITE."""
    source = conn.ctx.opens.get(int.from_bytes(req.source_key[8:16], "little"))
    if source is None or source.file_id != req.source_key[:16] or source.session is not target.session:
        raise SmbError(NtStatus.OBJECT_NAME_NOT_FOUND, "the resume key names no open of this session")
    if source.handle is None or not source.access & A.READ_DATA:
        raise SmbError(NtStatus.ACCESS_DENIED, "the source open may not read")
    need = A.WRITE_DATA | (A.READ_DATA if ctl == Fsctl.SRV_COPYCHUNK else 0)
    if target.handle is None or target.access & need != need:
        raise SmbError(NtStatus.ACCESS_DENIED, "the target open may not write")
    written = total = 0
    for c in req.chunks:
        check_locks(conn, source, c.source_offset, c.length, False)
        check_locks(conn, target, c.target_offset, c.length, True)
        buf = source.handle.read(c.source_offset, c.length)
        if len(buf) < c.length:
            if written == 0:
                raise SmbError(NtStatus.INVALID_VIEW_SIZE, "a chunk runs past the source's end")
            break
        target.handle.write(c.target_offset, buf)
        written += 1
        total += c.length
    return _answer(ctl, target.file_id, io.encode_copychunk_response(written, 0, total))


def _register() -> dict[object, object]:
    from .header import Command
    return {Command.IOCTL: ioctl}


HANDLERS = _register()
