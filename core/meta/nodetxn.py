"""Cluster membership in the metadata: the ``nodes`` table (schema 6).

A node is one machine of a cluster: it serves its own targets to the others
(``addr`` = its target server's ``host:port``), runs the protocol servers
(``endpoints``: JSON, e.g. ``{"s3": "http://10.0.0.2:9000", "admin": ...}``),
and writes ``heartbeat`` (nanoseconds since the epoch) every few seconds.
``state`` is ``up``, ``draining`` (no new data; rebuild moves its data off)
or ``removed``.  Mixed into :class:`core.meta.txn.Txn`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Row = tuple[Any, ...]

NODE_STATES = ("up", "draining", "removed")


@dataclass(slots=True)
class NodeRow:
    name: str
    addr: str
    endpoints: dict[str, str] = field(default_factory=dict)
    state: str = "up"
    heartbeat: int = 0
    joined: int = 0


_N = "name, addr, endpoints, state, heartbeat, joined"


def _node(r: Row) -> NodeRow:
    try:
        eps = {str(k): str(v) for k, v in dict(json.loads(str(r[2]))).items()}
    except (ValueError, TypeError):
        eps = {}
    return NodeRow(str(r[0]), str(r[1]), eps, str(r[3]), int(r[4]), int(r[5]))


class NodeTxn:
    if False:  # the primitives come from Txn  # pragma: no cover
        def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None: ...
        def all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]: ...
        def exec(self, sql: str, args: Sequence[Any] = ()) -> Any: ...

    def node(self, name: str) -> NodeRow | None:
        r = self.one(f"SELECT {_N} FROM nodes WHERE name = ?", (name,))
        return None if r is None else _node(r)

    def nodes(self) -> list[NodeRow]:
        return [_node(r) for r in self.all(f"SELECT {_N} FROM nodes ORDER BY name")]

    def put_node(self, n: NodeRow) -> None:
        """Add the node or update its address, endpoints, state and heartbeat (joined is kept)."""
        self.exec(f"INSERT INTO nodes ({_N}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                  "addr = excluded.addr, endpoints = excluded.endpoints, state = excluded.state, "
                  "heartbeat = excluded.heartbeat",
                  (n.name, n.addr, json.dumps(n.endpoints, sort_keys=True), n.state, n.heartbeat, n.joined))

    def heartbeat(self, name: str, now: int) -> bool:
        """Record that ``name`` is alive; False if it is not a member (removed from the metadata)."""
        return int(self.exec("UPDATE nodes SET heartbeat = ? WHERE name = ?", (now, name)).rowcount) > 0

    def set_node_state(self, name: str, state: str) -> None:
        if state not in NODE_STATES:
            raise ValueError(f"bad node state {state!r}")
        self.exec("UPDATE nodes SET state = ? WHERE name = ?", (state, name))

    def remove_node(self, name: str) -> None:
        self.exec("DELETE FROM nodes WHERE name = ?", (name,))
