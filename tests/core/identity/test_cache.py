"""Revocation bound: a change in one process reaches every other within REFRESH_S (1 s)."""

from __future__ import annotations

import multiprocessing as mp
import time

from core.identity import REFRESH_S, Identity, StoreKey
from core.meta.sqlite import SqliteMeta
from core.store import Store, key_path, meta_path


def _other_process_view(store: Store) -> tuple[SqliteMeta, Identity]:
    """What another worker has: its own connection and its own cache."""
    meta = SqliteMeta(meta_path(store.data_dir))
    return meta, Identity(meta, StoreKey.load(key_path(store.data_dir)))


def test_refresh_bound_is_one_second() -> None:
    assert REFRESH_S == 1.0


def test_disabled_key_reaches_another_cache_within_the_bound(mem_store: Store) -> None:
    _, pair = mem_store.identity.add_user("alice")
    assert pair is not None
    meta, other = _other_process_view(mem_store)
    try:
        assert other.lookup_key(pair.access_key) is not None
        mem_store.identity.disable_key("alice", pair.access_key)
        t0 = time.monotonic()
        assert mem_store.identity.lookup_key(pair.access_key) is None  # the changing process: at once
        assert other.lookup_key(pair.access_key) is not None  # the other one: served from its cache...
        while other.lookup_key(pair.access_key) is not None:  # ...until it re-reads the epoch
            assert time.monotonic() - t0 < REFRESH_S + 0.5
            time.sleep(0.01)
        mem_store.identity.remove_user("alice")
        mem_store.identity.add_user("alice", "pw")  # a new user of the same name: new cred, new RID
        deadline = time.monotonic() + REFRESH_S + 0.5
        while not other.check_password("alice", "pw"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        meta.close()


def _watch(data_dir: str, access_key: str, ready: mp.Event, q: mp.Queue) -> None:  # type: ignore[type-arg]
    meta = SqliteMeta(meta_path(data_dir))
    ident = Identity(meta, StoreKey.load(key_path(data_dir)))
    if ident.lookup_key(access_key) is None:
        q.put(None)
        return
    ready.set()
    deadline = time.time() + 10
    while ident.lookup_key(access_key) is not None and time.time() < deadline:
        time.sleep(0.005)
    q.put(time.time())
    meta.close()


def test_removed_key_stops_working_in_a_worker_process(mem_store: Store) -> None:
    _, pair = mem_store.identity.add_user("alice")
    assert pair is not None
    ctx = mp.get_context("spawn")
    ready, q = ctx.Event(), ctx.Queue()
    p = ctx.Process(target=_watch, args=(mem_store.data_dir, pair.access_key, ready, q))
    p.start()
    try:
        assert ready.wait(30)
        time.sleep(0.2)  # the worker has it cached now
        t0 = time.time()
        mem_store.identity.remove_key("alice", pair.access_key)
        seen = q.get(timeout=15)
        assert seen is not None and seen - t0 <= REFRESH_S + 0.3
    finally:
        p.join(15)
