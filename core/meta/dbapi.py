"""The slice of DB-API 2 that Txn and the migrations use, so one Txn runs on SQLite and PostgreSQL.

``sqlite3.Connection`` fits :class:`Conn` as it is; the PostgreSQL store wraps its psycopg
connection in :class:`core.meta.pgsql.PgConn`, which rewrites the ``?`` placeholders.
A Txn's ``dialect`` (``"sqlite"`` or ``"pg"``) picks the few statements that cannot be portable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

SQLITE = "sqlite"
PG = "pg"


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Conn(Protocol):
    def execute(self, sql: str, args: Sequence[Any] = ..., /) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any: ...
