"""Programs, handlers and the one dispatch from an RPC record to its reply. Sans-IO.

A program (NFS, MOUNT, NLM, NSM) is a :class:`Program`: its number and, per version,
a map from procedure number to a :data:`Handler`. A handler takes the :class:`Request`
and an :class:`~protocols.nfs.xdr.Unpacker` over the arguments and returns a
:class:`~protocols.nfs.xdr.Packer` holding the results. It signals RPC-level
outcomes by raising:

* :class:`~protocols.nfs.xdr.XdrError` -- the arguments do not decode: GARBAGE_ARGS;
* :class:`SystemErr` -- the server cannot run it: SYSTEM_ERR;
* :class:`AuthError` -- MSG_DENIED AUTH_ERROR with its auth_stat (AUTH_TOOWEAK for AUTH_NONE);
* :class:`DropReply` -- send nothing (the client retries later; knfsd's "drop");

any other exception is logged and answered SYSTEM_ERR. :func:`handle_record` is the whole
path from a received record to the reply's parts, so tests and the fuzzer need no socket.

>>> def echo(req: Request, args: Unpacker) -> Packer:
...     p = Packer(); p.pack_uint(args.unpack_uint() + 1); return p
>>> progs = index([Program(400000, {1: {1: echo}})])
>>> def call(proc: int, args: bytes = b"", vers: int = 1) -> rpc.Reply:
...     out = handle_record(progs, rpc.encode_call(7, 400000, vers, proc, args), ("127.0.0.1", 9), "tcp")
...     assert out is not None
...     return rpc.decode_reply(b"".join(out))
>>> call(1, bytes([0, 0, 0, 41])).body
b'\\x00\\x00\\x00*'
>>> call(0).ok, call(2).stat == rpc.PROC_UNAVAIL, call(1).stat == rpc.GARBAGE_ARGS
(True, True, True)
>>> call(0, vers=4).mismatch
(1, 1)
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from . import rpc
from .drc import Drc, Pending, make_key
from .rpc import AuthSys, Buf
from .xdr import Packer, Unpacker, XdrError

__all__ = ["AuthError", "AuthSys", "DropReply", "Handler", "Program", "Request", "SystemErr",
           "handle_record", "index"]

log = logging.getLogger("tessera.nfs.rpc")


@dataclass(slots=True)
class Request:
    xid: int
    prog: int
    vers: int
    proc: int
    auth: AuthSys | None          # None = AUTH_NONE
    client: tuple[str, int]       # peer (ip, port)
    transport: str                # "tcp" | "udp"


Handler = Callable[[Request, Unpacker], Packer]


class SystemErr(Exception):
    """The server cannot carry out the call: SYSTEM_ERR."""


class AuthError(Exception):
    """Refuse the caller's credential: MSG_DENIED AUTH_ERROR with ``stat`` (an rpc.AUTH_* value)."""

    def __init__(self, stat: int, message: str = "") -> None:
        super().__init__(message or f"auth_stat {stat}")
        self.stat = stat


class DropReply(Exception):
    """Send no reply at all (the client will retransmit)."""


@dataclass
class Program:
    prog: int
    versions: dict[int, dict[int, Handler]]       # vers -> proc -> handler
    non_idempotent: frozenset[tuple[int, int]] = field(default_factory=frozenset)  # (vers, proc) via the DRC
    # (vers, proc) cheap enough to run on the event loop itself (a metadata read): the thread hand-off
    # costs more than the call (measured: GETATTR 42 us in-process, ~130 us through the pool)
    inline: frozenset[tuple[int, int]] = field(default_factory=frozenset)

    @property
    def low(self) -> int:
        return min(self.versions)

    @property
    def high(self) -> int:
        return max(self.versions)


_HEAD = struct.Struct(">IIIIII")  # xid, msg_type, rpcvers, prog, vers, proc


def runs_inline(programs: Mapping[int, Program], record: Buf) -> bool:
    """Whether ``record`` is a call of an inline procedure (NULL of any program, or one a program lists);
    a peek at the fixed call header, no decoding (a malformed record goes to the pool and is refused there).

    >>> runs_inline({}, struct.pack(">IIIIII", 1, 0, 2, 100003, 3, 0))
    True
    """
    if len(record) < _HEAD.size:
        return False
    _, mtype, rpcvers, prog, vers, proc = _HEAD.unpack_from(record)
    if mtype != 0 or rpcvers != 2:
        return False
    if proc == 0:
        return True
    p = programs.get(prog)
    return p is not None and (vers, proc) in p.inline


def index(programs: Iterable[Program]) -> dict[int, Program]:
    """Programs by number; ValueError on a duplicate or a program without versions."""
    out: dict[int, Program] = {}
    for p in programs:
        if p.prog in out:
            raise ValueError(f"program {p.prog} given twice")
        if not p.versions:
            raise ValueError(f"program {p.prog} has no versions")
        out[p.prog] = p
    return out


def _null(req: Request, args: Unpacker) -> Packer:
    """Procedure 0 of every program: do nothing, answer an empty SUCCESS."""
    return Packer()


def route(programs: Mapping[int, Program], call: rpc.Call) -> Handler | bytes:
    """The handler for ``call``, or the PROG_UNAVAIL / PROG_MISMATCH / PROC_UNAVAIL reply."""
    program = programs.get(call.prog)
    if program is None:
        return rpc.encode_prog_unavail(call.xid)
    procs = program.versions.get(call.vers)
    if procs is None:
        return rpc.encode_prog_mismatch(call.xid, program.low, program.high)
    handler = procs.get(call.proc)
    if handler is None:
        return _null if call.proc == 0 else rpc.encode_proc_unavail(call.xid)
    return handler


def run_handler(handler: Handler, req: Request, args: Buf) -> list[Buf] | None:
    """Run one handler and turn its outcome into reply parts (None: no reply)."""
    try:
        results = handler(req, Unpacker(args))
    except XdrError as e:
        log.debug("garbage arguments from %s for %d/%d/%d: %s", req.client, req.prog, req.vers, req.proc, e)
        return [rpc.encode_garbage_args(req.xid)]
    except AuthError as e:
        return [rpc.encode_auth_error(req.xid, e.stat)]
    except DropReply:
        return None
    except SystemErr as e:
        log.warning("program %d/%d procedure %d: %s", req.prog, req.vers, req.proc, e)
        return [rpc.encode_system_err(req.xid)]
    except Exception:
        log.exception("program %d/%d procedure %d failed", req.prog, req.vers, req.proc)
        return [rpc.encode_system_err(req.xid)]
    return rpc.encode_success(req.xid, results.parts())


def handle_record(programs: Mapping[int, Program], record: Buf, client: tuple[str, int], transport: str,
                  drc: Drc | None = None) -> list[Buf] | None:
    """One received call record to its reply (unframed parts), or None when nothing is to be sent."""
    try:
        call = rpc.decode_call(record)
    except rpc.BadCall as e:
        log.debug("bad call from %s: %s", client, e)
        return None if e.reply is None else [e.reply]
    target = route(programs, call)
    if isinstance(target, bytes):
        return [target]
    req = Request(call.xid, call.prog, call.vers, call.proc, call.auth, client, transport)
    if drc is None or (call.vers, call.proc) not in programs[call.prog].non_idempotent:
        return run_handler(target, req, call.args)
    key = make_key(client[0], call, record)
    cached = drc.begin(key)
    if cached is Pending.IN_PROGRESS:
        log.debug("dropping a retry of xid %#x from %s: still in progress", call.xid, client)
        return None
    if isinstance(cached, bytes):
        return [cached]
    reply: list[Buf] | None = None
    try:
        reply = run_handler(target, req, call.args)
    finally:
        drc.finish(key, _cacheable(reply))
    return reply


def _cacheable(reply: list[Buf] | None) -> bytes | None:
    """The bytes to remember for a reply; None (forget the call) for no reply or SYSTEM_ERR."""
    if reply is None:
        return None
    data = b"".join(reply)
    if data[4:24] == rpc.encode_system_err(0)[4:24]:
        return None
    return data
