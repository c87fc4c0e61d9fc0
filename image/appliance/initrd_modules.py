"""Kernel modules for the initramfs: the named modules and everything they depend on, dependencies first.

Usage: python3 initrd_modules.py MODULES_DIR NAME... -> one path per line, relative to MODULES_DIR,
in a safe insmod order. Names may use '-' or '_'; a name that is built into the kernel is skipped,
an unknown one is an error.
"""

from __future__ import annotations

import os
import sys


def load_dep(moddir: str) -> dict[str, tuple[str, list[str]]]:
    """modules.dep -> {normalised name: (relative path, [dependency paths])}."""
    table: dict[str, tuple[str, list[str]]] = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            path, _, deps = line.partition(":")
            table[_name(path)] = (path.strip(), deps.split())
    return table


def builtin(moddir: str) -> set[str]:
    try:
        with open(os.path.join(moddir, "modules.builtin")) as f:
            return {_name(line) for line in f if line.strip()}
    except FileNotFoundError:
        return set()


def _name(path: str) -> str:
    base = os.path.basename(path.strip())
    for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    return base.replace("-", "_")


def resolve(names: list[str], table: dict[str, tuple[str, list[str]]], built: set[str]) -> list[str]:
    by_path = {p: deps for p, deps in table.values()}
    order: list[str] = []
    seen: set[str] = set()

    def visit(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        for d in by_path.get(path, []):
            visit(d)
        order.append(path)

    for n in names:
        key = n.replace("-", "_")
        if key in table:
            visit(table[key][0])
        elif key not in built:
            raise SystemExit(f"initrd_modules: no module {n!r} in this kernel")
    return order


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    moddir, names = argv[0], argv[1:]
    for p in resolve(names, load_dep(moddir), builtin(moddir)):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
