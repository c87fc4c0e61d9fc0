"""A standalone NFS server for quick manual runs (the appliance uses ``tessera serve --role nfs``)::

    python -m protocols.nfs --data DIR --listen 127.0.0.1:2049 --export /data --export /pub:ro:all \\
        --clients 127.0.0.1 --clients 10.0.0.0/8

Each ``--export`` is ``PATH[:ACCESS[:SQUASH]]``; ``--clients`` (repeatable, default ``*``)
applies to every export.  Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from core.fs import open_volume

from .exports import Export, check_unique
from .service import NfsSettings, run


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6).

    >>> parse_listen("127.0.0.1:2049"), parse_listen("[::1]:0")
    (('127.0.0.1', 2049), ('::1', 0))
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen {text!r}: want HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def parse_export(spec: str, clients: list[str]) -> Export:
    """``PATH[:ACCESS[:SQUASH]]``.

    >>> e = parse_export("/pub:ro:all", ["*"]); (e.path, e.access, e.squash)
    ('/pub', 'ro', 'all')
    """
    path, *rest = spec.split(":")
    if len(rest) > 2:
        raise ValueError(f"--export {spec!r}: want PATH[:ACCESS[:SQUASH]]")
    access = rest[0] if rest else "rw"
    squash = rest[1] if len(rest) > 1 else "root"
    return Export.build(path, clients or ["*"], access=access, squash=squash)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m protocols.nfs", description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the store's directory")
    ap.add_argument("--listen", default="0.0.0.0:2049", help="HOST:PORT (default 0.0.0.0:2049)")
    ap.add_argument("--export", action="append", default=[], help="PATH[:rw|ro[:none|root|all]] (repeatable)")
    ap.add_argument("--clients", action="append", default=[], help="allowed client address/network (repeatable)")
    ap.add_argument("--no-udp", action="store_true")
    ap.add_argument("--no-rpcbind", action="store_true")
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        host, port = parse_listen(args.listen)
        exports = [parse_export(s, args.clients) for s in args.export or ["/"]]
        check_unique(exports)
    except ValueError as e:
        ap.error(str(e))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    volume = open_volume(args.data)
    try:
        run(volume, NfsSettings(host=host, port=port, udp=not args.no_udp, rpcbind=not args.no_rpcbind,
                                workers=args.workers), lambda: exports, stop)
    finally:
        volume.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
