"""Which MetaStore a data directory uses.

``DIR/meta/url`` (mode 0600, one line: a libpq URL, e.g.
``postgresql://tessera@db1,db2/tessera?target_session_attrs=read-write``) means the metadata lives in
PostgreSQL (:class:`core.meta.pg.PgMeta`); otherwise it is SQLite in ``DIR/meta/meta.db``
(:class:`core.meta.sqlite.SqliteMeta`), as every store made before the cluster.  psycopg is imported
only for a PostgreSQL store.
"""

from __future__ import annotations

import os

from core.errors import StoreError
from core.meta.sqlite import SqliteMeta
from core.meta.store import MetaStore


def sqlite_path(data_dir: str) -> str:
    return os.path.join(data_dir, "meta", "meta.db")


def url_path(data_dir: str) -> str:
    return os.path.join(data_dir, "meta", "url")


def meta_url(data_dir: str) -> str | None:
    """The PostgreSQL URL of the store in ``data_dir``, or None for a SQLite store."""
    try:
        with open(url_path(data_dir)) as f:
            url = f.read().strip()
    except FileNotFoundError:
        return None
    if not url:
        raise StoreError(f"{url_path(data_dir)} is empty")
    return url


def write_url(data_dir: str, url: str) -> None:
    """Record that the store's metadata lives at ``url`` (a 0600 file: the URL may hold a password)."""
    url = url.strip()
    if not url or "\n" in url:
        raise StoreError("a metadata URL is one non-empty line")
    path = url_path(data_dir)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(url + "\n")


def open_meta(data_dir: str, *, create: bool = False) -> MetaStore:
    url = meta_url(data_dir)
    if url is None:
        return SqliteMeta(sqlite_path(data_dir), create=create)
    from core.meta.pg import PgMeta
    return PgMeta(url, create=create)
