"""Helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from core.store import Store, open_store

DEFAULT_DATA = "./tessera-data"


class CliError(Exception):
    """A user error the CLI reports in one line."""


def data_dir(args: argparse.Namespace) -> str:
    return str(getattr(args, "data", None) or os.environ.get("TESSERA_DATA") or DEFAULT_DATA)


def _dead_after(d: str) -> float:
    """The cluster's cluster.dead_after_s from the data directory's config (the default without one)."""
    from gateway import config as cfgmod
    path = os.path.join(d, cfgmod.CONFIG_NAME)
    if not os.path.exists(path):
        return cfgmod.ClusterConfig().dead_after_s
    return cfgmod.load(path).cluster.dead_after_s


@contextmanager
def store(args: argparse.Namespace) -> Iterator[Store]:
    d = data_dir(args)
    s = open_store(d, dead_after=_dead_after(d))
    try:
        yield s
    finally:
        s.close()


def progress(transfer: bool = False) -> Progress:
    """A rich progress bar on stderr (quiet when stderr is not a terminal)."""
    cols = [TextColumn("{task.description}"), BarColumn()]
    cols += [DownloadColumn(), TransferSpeedColumn()] if transfer else [
        TextColumn("{task.completed}/{task.total}")]
    cols.append(TimeRemainingColumn())
    from rich.console import Console
    return Progress(*cols, console=Console(stderr=True), disable=not sys.stderr.isatty(), transient=False)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
