import os

from core.meta import proc


def test_current_is_alive() -> None:
    assert proc.alive(proc.current())


def test_dead_and_recycled_pids() -> None:
    host = proc.current().split(":")[0]
    assert not proc.alive(f"{host}:999999999:1")
    me = proc.current().rsplit(":", 1)[0]
    assert not proc.alive(f"{me}:not-my-start-time")
    assert proc.alive(f"other-host:{os.getpid()}:1")  # other hosts are assumed alive
    assert not proc.alive("garbage")
