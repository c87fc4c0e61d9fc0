"""The ``tessera`` command line (a contract others script against).

User errors print one line, ``tessera: error: …``, and exit non-zero; no
tracebacks.  Every command takes ``--data DIR`` (default ``$TESSERA_DATA`` or
``./tessera-data``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from core.errors import CoreError
from gateway import admin_cmds, file_cmds, identity_cmds
from gateway.common import CliError
from gateway.protocols import BY_ROLE, REGISTRY


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--data", metavar="DIR", default=argparse.SUPPRESS,
                   help="store data directory (default $TESSERA_DATA or ./tessera-data)")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="tessera", parents=[common],
                                     description="Tessera: erasure-coded storage with S3, NFS, SMB and PyTorch")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, fn: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(fn=fn)
        return p

    p = cmd("init", admin_cmds.init, "create a store")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--targets", type=int, metavar="N", help="N target directories under DIR/targets (default 6)")
    g.add_argument("--target", action="append", metavar="PATH", help="a target directory (repeat per disk)")
    p.add_argument("--target-domain", action="append", metavar="NAME",
                   help="fault domain of each --target, in order (e.g. the disk); default: each its own")
    p.add_argument("--ec", metavar="K+M", help="erasure-coding geometry (default from the target count)")
    p.add_argument("--cell-size", type=int, default=256 * 1024, help=argparse.SUPPRESS)
    p.add_argument("--meta", metavar="URL",
                   help="keep the metadata in this PostgreSQL database (libpq URL) instead of SQLite")

    p = cmd("put", file_cmds.put, "copy a local file (or - for stdin) into the store")
    p.add_argument("local")
    p.add_argument("remote")
    p = cmd("get", file_cmds.get, "copy a file out of the store (LOCAL - for stdout)")
    p.add_argument("remote")
    p.add_argument("local")
    p = cmd("ls", file_cmds.ls, "list a directory")
    p.add_argument("-l", dest="long", action="store_true", help="long listing")
    p.add_argument("remote", nargs="?", default="/")
    p = cmd("rm", file_cmds.rm, "remove files (and directories with -r)")
    p.add_argument("-r", dest="recursive", action="store_true")
    p.add_argument("remote", nargs="+")
    p = cmd("mkdir", file_cmds.mkdir, "make directories")
    p.add_argument("-p", dest="parents", action="store_true", help="make parents, no error if present")
    p.add_argument("remote", nargs="+")
    p = cmd("mv", file_cmds.mv, "rename or move")
    p.add_argument("src")
    p.add_argument("dst")
    p = cmd("stat", file_cmds.stat, "attributes and layout (slices, segments, targets)")
    p.add_argument("--json", action="store_true")
    p.add_argument("remote")

    p = cmd("status", admin_cmds.status, "targets, geometry and health")
    p.add_argument("--json", action="store_true")
    p = cmd("scrub", admin_cmds.scrub, "verify every block (and repair with --repair)")
    p.add_argument("--repair", action="store_true")
    p = cmd("rebuild", admin_cmds.rebuild, "restore full redundancy after target failures")
    p = cmd("gc", admin_cmds.gc, "reclaim unreferenced segment space")

    t = cmd("target", admin_cmds.no_sub, "manage targets")
    tsub = t.add_subparsers(dest="target_cmd", required=True, metavar="ACTION")
    p = tsub.add_parser("add", parents=[common], help="add a target directory")
    p.add_argument("path")
    p.add_argument("--weight", type=float, default=1.0)
    p.add_argument("--domain", default="", help="fault domain label (e.g. the disk or host)")
    p.set_defaults(fn=admin_cmds.target_add)
    p = tsub.add_parser("fail", parents=[common], help="mark a target failed")
    p.add_argument("id", type=int)
    p.set_defaults(fn=admin_cmds.target_fail)

    identity_cmds.add_parsers(sub, common, admin_cmds.no_sub)
    from gateway import lifecycle_cmds
    lifecycle_cmds.add_parsers(sub, common, admin_cmds.no_sub)
    from gateway.cluster import cmds as cluster_cmds
    cluster_cmds.add_parsers(sub, common, admin_cmds.no_sub)
    from gateway import version_cmds
    version_cmds.add_parsers(sub, common, admin_cmds.no_sub)

    p = cmd("serve", _serve, "run the enabled servers until SIGTERM/SIGINT")
    p.add_argument("--config", metavar="FILE", help="config file (default DIR/tessera.yaml)")
    for e in REGISTRY:
        p.add_argument(e.listen_flag, metavar="HOST:PORT",
                       help=f"{e.name.upper()} listen address (overrides {e.listen_key})")
    roles = ", ".join(f"{e.role}: only the {e.name.upper()} server, in this process" for e in REGISTRY)
    p.add_argument("--role", choices=("all", "core", *BY_ROLE), default="all",
                   help="all: everything enabled in the config (default); core: admin endpoint and maintenance "
                        f"only; {roles} (one role per container in the appliance)")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from gateway.serve import serve_cmd  # the server's imports only for serve
    return serve_cmd(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "data"):
        args.data = None
    try:
        return int(args.fn(args))
    except (CoreError, CliError, OSError) as e:
        msg = str(e) if not isinstance(e, OSError) or not e.filename else f"{e.filename}: {e.strerror}"
        print(f"tessera: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tessera: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
