"""What the permission decision costs: the same core.fs calls as the admin (no checks), as a user
decided by mode bits, and as a user decided by an ACL, measured in one run; os.stat/os.open on the
local file system alongside.

    .venv/bin/python bench/perm.py [--dir DIR] [--n 20000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.fs import Cred, acl
from core.fs.fs import FileSystem
from core.store import init_store, open_store

USER = Cred(1001, 1001, frozenset({500}), name="bench")


def rate(n: int, fn: Callable[[int], object]) -> float:
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t)


def row(name: str, admin: float, mode: float, with_acl: float, local: float | None = None) -> None:
    loc = f"{local:>10,.0f}" if local else f"{'':>10}"
    print(f"{name:<34} {admin:>10,.0f} {mode:>10,.0f} {with_acl:>10,.0f} {loc}   "
          f"{mode / admin:5.2f}x {with_acl / admin:5.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None, help="scratch directory")
    ap.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args()
    base = tempfile.mkdtemp(dir=args.dir)
    try:
        d = os.path.join(base, "store")
        init_store(d)
        s = open_store(d)
        root = s.fs
        n = args.n
        files = 1000
        plain, withacl = root.mkdir(root.root, "plain", 0o755, 1001, 1001), root.mkdir(root.root, "acl", 0o755)
        root.setacl(withacl.ino, [acl.Ace(acl.DENY, acl.Who.user(4242), acl.FULL_MASK),
                                  acl.Ace(acl.ALLOW, acl.Who.user(1001), acl.FULL_MASK,
                                          acl.FILE_INHERIT | acl.DIRECTORY_INHERIT),
                                  acl.Ace(acl.ALLOW, acl.EVERYONE, acl.R_MASK | acl.X_MASK | acl.ALWAYS)])
        user = root.as_user(USER)
        for i in range(files):
            user.write_file(plain.ino, f"f{i}", b"x" * 4096)
            user.write_file(withacl.ino, f"f{i}", b"x" * 4096)
        local = os.path.join(base, "local")
        os.makedirs(local)
        for i in range(files):
            Path(local, f"f{i}").write_bytes(b"x" * 4096)
        print(f"{'per second':<34} {'admin':>10} {'mode bits':>10} {'ACL':>10} {'local fs':>10}   "
              f"{'mode/admin':>6} {'ACL/admin':>6}")

        cases = ((root, "plain"), (user, "plain"), (user, "acl"))  # admin, mode bits, ACL
        dirs = {dn: root.resolve("/" + dn).ino for dn in ("plain", "acl")}
        inos = {dn: [e.ino for e in root.listdir(dirs[dn])] for dn in dirs}

        def lookup(fs: FileSystem, dn: str) -> Callable[[int], object]:
            return lambda i: fs.lookup(dirs[dn], f"f{i % files}")

        def by_path(fs: FileSystem, dn: str) -> Callable[[int], object]:
            return lambda i: fs.resolve(f"/{dn}/f{i % files}")

        def read(fs: FileSystem, dn: str) -> Callable[[int], object]:
            return lambda i: fs.read(inos[dn][i % files], 0, 4096)

        def create(fs: FileSystem, dn: str) -> Callable[[int], object]:
            tag = f"{'a' if fs.cred.admin else 'u'}{dn}"
            return lambda i: fs.write_file(dirs[dn], f"{tag}{i}", b"y" * 4096)

        def three(make: Callable[[FileSystem, str], Callable[[int], object]], k: int) -> tuple[float, float, float]:
            a, b, c = (rate(k, make(fs, dn)) for fs, dn in cases)
            return a, b, c

        row("lookup (one name)", *three(lookup, n), rate(n, lambda i: os.stat(os.path.join(local, f"f{i % files}"))))
        row("stat by path (/dir/fN)", *three(by_path, n))
        row("read 4 KiB (inline, by inode)", *three(read, n),
            rate(n, lambda i: Path(local, f"f{i % files}").read_bytes()))
        row("4 KiB durable create (write_file)", *three(create, n // 10))
        s.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
