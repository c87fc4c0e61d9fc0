"""File commands: put, get, ls, rm, mkdir, mv, stat."""

from __future__ import annotations

import argparse
import json
import os
import stat as st
import sys
import time
from collections.abc import Iterator

from core.errors import IsADirectory, Locked, NotFound
from core.fs import FileType
from core.fs.fs import FileSystem
from core.fs.types import Attr
from core.store import Store
from gateway.common import CliError, progress, store

IO_CHUNK = 8 * 1024 * 1024


def _target(fs: FileSystem, remote: str, local_name: str) -> tuple[int, str]:
    """Where ``put`` writes: into REMOTE if it is a directory or ends in '/'."""
    if remote.endswith("/") or remote == "/":
        return fs.resolve(remote).ino, local_name
    try:
        a = fs.resolve(remote)
        if a.is_dir:
            return a.ino, local_name
    except NotFound:
        pass
    return fs.resolve_parent(remote)


def put(args: argparse.Namespace) -> int:
    with store(args) as s:
        fs = s.fs
        if args.local == "-":
            parent, name = fs.resolve_parent(args.remote)
            fs.write_file(parent, name, iter(lambda: sys.stdin.buffer.read(IO_CHUNK), b""))
            return 0
        if os.path.isdir(args.local):
            raise CliError(f"{args.local} is a directory")
        parent, name = _target(fs, args.remote, os.path.basename(args.local))
        size = os.path.getsize(args.local)
        with open(args.local, "rb") as f, progress(transfer=True) as bar:
            task = bar.add_task(f"put {name}", total=size)

            def chunks() -> Iterator[bytes]:
                while block := f.read(IO_CHUNK):
                    bar.advance(task, len(block))
                    yield block
            fs.write_file(parent, name, chunks(), mode=st.S_IMODE(os.stat(args.local).st_mode))
    return 0


def get(args: argparse.Namespace) -> int:
    with store(args) as s:
        a = s.fs.resolve(args.remote)
        if a.is_dir:
            raise IsADirectory(f"{args.remote} is a directory", path=None)
        if args.local == "-":
            out = sys.stdout.buffer
            _copy_out(s, a, out.write)
            out.flush()
            return 0
        dest = args.local
        if os.path.isdir(dest):
            dest = os.path.join(dest, os.path.basename(args.remote.rstrip("/")))
        tmp = dest + ".tessera-part"
        try:
            with open(tmp, "wb") as f, progress(transfer=True) as bar:
                task = bar.add_task(f"get {os.path.basename(dest)}", total=a.size)

                def write(b: bytes) -> None:
                    f.write(b)
                    bar.advance(task, len(b))
                _copy_out(s, a, write)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return 0


def _copy_out(s: Store, a: Attr, write: object) -> None:
    off = 0
    assert callable(write)
    while off < a.size:
        block = s.fs.read(a.ino, off, min(IO_CHUNK, a.size - off))
        if not block:
            break
        write(block)
        off += len(block)


def _fmt_long(name: str, a: Attr) -> str:
    mt = time.strftime("%Y-%m-%d %H:%M", time.localtime(a.mtime_ns / 1e9))
    return f"{st.filemode(a.mode)} {a.nlink:3d} {a.uid:5d} {a.gid:5d} {a.size:12d} {mt} {name}"


def ls(args: argparse.Namespace) -> int:
    with store(args) as s:
        fs = s.fs
        a = fs.resolve(args.remote)
        if not a.is_dir:
            name = os.path.basename(args.remote.rstrip("/"))
            print(_fmt_long(name, a) if args.long else name)
            return 0
        for e in fs.listdir(a.ino):
            if args.long:
                print(_fmt_long(e.name + ("/" if e.type == FileType.DIR else ""), fs.getattr(e.ino)))
            else:
                print(e.name + ("/" if e.type == FileType.DIR else ""))
    return 0


def _rm_tree(fs: FileSystem, parent: int, name: str, path: str) -> None:
    a = fs.lookup(parent, name)
    if a.is_dir:
        for e in fs.listdir(a.ino):
            _rm_tree(fs, a.ino, e.name, f"{path.rstrip('/')}/{e.name}")
        fs.rmdir(parent, name)
        return
    try:
        fs.unlink(parent, name)
    except Locked as e:  # retention or a legal hold: say which file
        raise Locked(f"{path}: {e}") from None


def rm(args: argparse.Namespace) -> int:
    with store(args) as s:
        for remote in args.remote:
            parent, name = s.fs.resolve_parent(remote)
            a = s.fs.lookup(parent, name)
            if a.is_dir and not args.recursive:
                raise CliError(f"{remote} is a directory (use -r)")
            _rm_tree(s.fs, parent, name, remote)
    return 0


def mkdir(args: argparse.Namespace) -> int:
    with store(args) as s:
        for remote in args.remote:
            if args.parents:
                s.fs.makedirs(remote)
            else:
                parent, name = s.fs.resolve_parent(remote)
                s.fs.mkdir(parent, name)
    return 0


def mv(args: argparse.Namespace) -> int:
    with store(args) as s:
        fs = s.fs
        sp, sn = fs.resolve_parent(args.src)
        fs.lookup(sp, sn)
        try:
            d = fs.resolve(args.dst)
            if d.is_dir:
                dp, dn = d.ino, sn
            else:
                dp, dn = fs.resolve_parent(args.dst)
        except NotFound:
            dp, dn = fs.resolve_parent(args.dst)
        fs.rename(sp, sn, dp, dn)
    return 0


def layout(s: Store, a: Attr) -> dict[str, object]:
    """Attributes plus where the bytes are: slices, segments, targets."""
    out: dict[str, object] = {
        "ino": a.ino, "gen": a.gen, "type": {1: "file", 2: "directory", 3: "symlink"}.get(a.type, "special"),
        "mode": oct(a.perm), "nlink": a.nlink, "uid": a.uid, "gid": a.gid, "size": a.size,
        "atime_ns": a.atime_ns, "mtime_ns": a.mtime_ns, "ctime_ns": a.ctime_ns, "btime_ns": a.btime_ns,
    }
    if a.is_symlink:
        out["target"] = s.fs.readlink(a.ino)
    if not a.is_file:
        return out
    inline, pieces, infos = s.layout(a.ino, a.size)
    out["storage"] = "inline" if inline else "segments"
    node_of = {t.id: t.node for t in s.targets()}
    segs = {sid: {"id": info.id, "geometry": f"{info.k}+{info.m}", "cell": info.cell, "state": info.state,
                  "targets": list(info.targets), "nodes": [node_of.get(t, "") for t in info.targets]}
            for sid, info in infos.items()}
    out["slices"] = [{"offset": p.off, "length": p.len, "segment": p.segment or None,
                      "segment_offset": p.seg_off if p.segment else None} for p in pieces]
    out["segments"] = list(segs.values())
    return out


def stat(args: argparse.Namespace) -> int:
    with store(args) as s:
        info = layout(s, s.fs.resolve(args.remote))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for k, v in info.items():
        if k in ("slices", "segments"):
            continue
        print(f"{k:>10}: {v}")
    for sl in info.get("slices", []):  # type: ignore[attr-defined]
        where = f"segment {sl['segment']} @ {sl['segment_offset']}" if sl["segment"] else "hole"
        print(f"     slice: [{sl['offset']}, {sl['offset'] + sl['length']}) -> {where}")
    for sg in info.get("segments", []):  # type: ignore[attr-defined]
        print(f"   segment: {sg['id']} {sg['geometry']} cell {sg['cell']} {sg['state']} "
              f"targets {sg['targets']}")
    return 0


__all__ = ["get", "ls", "mkdir", "mv", "put", "rm", "stat"]
