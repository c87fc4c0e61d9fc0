"""Registration with the local portmapper (PMAP v2, RFC 1833 section 3) and a GETPORT client.

Clients find MOUNT and NLM through the portmapper on port 111 (``mount -o nolock`` and
a fixed ``port=``/``mountport=`` aside). When the appliance runs rpcbind, the server
registers each (program, version, protocol, port) there; when nothing listens on 111 it
logs one line and carries on, since the server itself does not need rpcbind.

A PMAP v2 mapping is four XDR unsigned ints: ``prog, vers, prot (6 tcp, 17 udp), port``.

>>> pack_mapping(Mapping(100003, 3, IPPROTO_TCP, 2049)).hex()
'000186a3000000030000000600000801'
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from .rpcclient import RpcClient, RpcError
from .xdr import Packer, Unpacker, XdrError

log = logging.getLogger("tessera.nfs.rpc")

PMAP_PROG: Final = 100000
PMAP_VERS: Final = 2
PMAPPROC_NULL: Final = 0
PMAPPROC_SET: Final = 1
PMAPPROC_UNSET: Final = 2
PMAPPROC_GETPORT: Final = 3
PMAP_PORT: Final = 111
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17


@dataclass(frozen=True, slots=True)
class Mapping:
    prog: int
    vers: int
    prot: int        # IPPROTO_TCP or IPPROTO_UDP
    port: int


def pack_mapping(m: Mapping) -> bytes:
    p = Packer()
    for v in (m.prog, m.vers, m.prot, m.port):
        p.pack_uint(v)
    return p.data()


def mappings(progs: Iterable[tuple[int, Iterable[int]]], port: int, udp: bool = True) -> list[Mapping]:
    """Every (prog, vers) on TCP (and UDP) at ``port``.

    >>> [(m.vers, m.prot) for m in mappings([(100005, (1, 3))], 2049)]
    [(1, 6), (1, 17), (3, 6), (3, 17)]
    """
    protos = (IPPROTO_TCP, IPPROTO_UDP) if udp else (IPPROTO_TCP,)
    return [Mapping(prog, vers, prot, port) for prog, versions in progs for vers in versions for prot in protos]


def _bool_result(body: bytes) -> bool:
    u = Unpacker(body)
    ok = u.unpack_bool()
    u.done()
    return ok


def _change(client: RpcClient, maps: Iterable[Mapping], set_: bool) -> bool:
    ok = True
    if set_:
        for prog, vers in dict.fromkeys((m.prog, m.vers) for m in maps):   # drop a previous run's entries
            client.call_ok(PMAP_PROG, PMAP_VERS, PMAPPROC_UNSET, pack_mapping(Mapping(prog, vers, 0, 0)))
        for m in maps:
            if not _bool_result(client.call_ok(PMAP_PROG, PMAP_VERS, PMAPPROC_SET, pack_mapping(m))):
                log.warning("rpcbind refused to register %s", m)
                ok = False
        return ok
    for prog, vers in dict.fromkeys((m.prog, m.vers) for m in maps):
        ok = _bool_result(client.call_ok(PMAP_PROG, PMAP_VERS, PMAPPROC_UNSET,
                                         pack_mapping(Mapping(prog, vers, 0, 0)))) and ok
    return ok


def _talk(maps: list[Mapping], set_: bool, host: str, port: int, timeout: float) -> bool:
    verb = "register with" if set_ else "unregister from"
    try:
        with RpcClient(host, port, timeout=timeout) as client:
            return _change(client, maps, set_)
    except (OSError, RpcError, XdrError) as e:
        log.info("could not %s rpcbind at %s:%d (%s); serving without it", verb, host, port, e)
        return False


def register(maps: Iterable[Mapping], *, host: str = "127.0.0.1", port: int = PMAP_PORT,
             timeout: float = 2.0) -> bool:
    """Register every mapping (replacing older ones of the same prog/vers); False if rpcbind is absent or refuses."""
    return _talk(list(maps), True, host, port, timeout)


def unregister(maps: Iterable[Mapping], *, host: str = "127.0.0.1", port: int = PMAP_PORT,
               timeout: float = 2.0) -> bool:
    """Remove every (prog, vers) of ``maps`` from rpcbind; False if it is absent or refused."""
    return _talk(list(maps), False, host, port, timeout)


def getport(host: str, prog: int, vers: int, proto: Literal["tcp", "udp"] = "tcp", *, port: int = PMAP_PORT,
            timeout: float = 5.0) -> int:
    """Ask ``host``'s portmapper where ``prog``/``vers`` listens (0: not registered).

    Raises OSError or RpcError when the portmapper cannot be reached or answers nonsense.
    """
    prot = IPPROTO_TCP if proto == "tcp" else IPPROTO_UDP
    with RpcClient(host, port, transport=proto, timeout=timeout) as client:
        body = client.call_ok(PMAP_PROG, PMAP_VERS, PMAPPROC_GETPORT, pack_mapping(Mapping(prog, vers, prot, 0)))
    u = Unpacker(body)
    try:
        found = u.unpack_uint()
        u.done()
    except XdrError as e:
        raise RpcError(f"bad GETPORT reply from {host}: {e}") from e
    return found
