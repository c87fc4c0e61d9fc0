"""The assembled NFS service over real sockets: MOUNT through the raw RPC client (TCP and UDP),
subdirectory mounts, denied clients (a second loopback address), exports changed while running."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.store import Store, init_store, open_store
from protocols.nfs import mount as M
from protocols.nfs import rpc
from protocols.nfs.dispatch import AuthSys
from protocols.nfs.exports import Export
from protocols.nfs.rpcclient import RpcClient
from protocols.nfs.service import NfsSettings, run, start

from .conftest import ROOT, ServerFactory, free_port

ALICE = AuthSys(0, "client", 1000, 1000, (1000,))


def mnt(c: RpcClient, path: str) -> tuple[int, bytes, list[int]]:
    return M.unpack_mountres(c.call_ok(M.PROG, 3, M.MNT, M.pack_dirpath(path)))


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_mount_through_the_real_server(nfs_store: Store, nfs_server: ServerFactory, transport: str) -> None:
    fs = nfs_store.fs
    data = fs.resolve("/data")
    sub = fs.mkdir(data.ino, "sub")
    srv = nfs_server([Export.build("/data", ["127.0.0.1"]), Export.build("/", ["10.0.0.0/8"], access="ro")])
    with RpcClient("127.0.0.1", srv.port, transport=transport, auth=ALICE) as c:  # type: ignore[arg-type]
        assert c.call(M.PROG, 3, M.NULL).ok
        status, fh, flavors = mnt(c, "/data")
        assert (status, flavors) == (M.MNT3_OK, [rpc.AUTH_SYS])
        assert fs.parse_handle(fh) == (Export.build("/data").id, data.ino, data.gen)
        status, fh, _ = mnt(c, "/data/sub")
        assert status == M.MNT3_OK and fs.parse_handle(fh)[1:] == (sub.ino, sub.gen)
        assert mnt(c, "/")[0] == M.MNT3ERR_ACCES
        assert mnt(c, "/data/nope")[0] == M.MNT3ERR_NOENT
        assert M.unpack_exports(c.call_ok(M.PROG, 3, M.EXPORT)) == [("/data", ["127.0.0.1"]),
                                                                    ("/", ["10.0.0.0/8"])]
        assert M.unpack_mountlist(c.call_ok(M.PROG, 3, M.DUMP)) == [("127.0.0.1", "/data"),
                                                                    ("127.0.0.1", "/data/sub")]
        c.call_ok(M.PROG, 3, M.UMNTALL)
        assert M.unpack_mountlist(c.call_ok(M.PROG, 1, M.DUMP)) == []
        assert c.call(M.PROG, 4, M.NULL).mismatch == (1, 3)
        assert c.call(424242, 1, 0).stat == rpc.PROG_UNAVAIL
        for prog, vers in ((100003, 3), (100021, 4), (100021, 1), (100024, 1)):  # NFS, NLM, NSM on the same port
            assert c.call(prog, vers, 0).ok, (prog, vers)
        assert c.call(100003, 2, 0).mismatch == (3, 3)


def test_a_client_not_in_the_export_is_refused(nfs_server: ServerFactory) -> None:
    srv = nfs_server([Export.build("/data", ["127.0.0.1"])])
    try:
        other = RpcClient("127.0.0.1", srv.port, auth=ALICE, bind=("127.0.0.2", 0))
    except OSError as e:  # pragma: no cover - a host without the whole 127/8 on lo
        pytest.skip(f"cannot bind 127.0.0.2: {e}")
    with other:
        assert mnt(other, "/data")[0] == M.MNT3ERR_ACCES
        assert mnt(other, "/data/x")[0] == M.MNT3ERR_ACCES
        assert M.unpack_mountlist(other.call_ok(M.PROG, 3, M.DUMP)) == []


def test_exports_change_without_a_restart(nfs_server: ServerFactory) -> None:
    exports = [Export.build("/data", ["127.0.0.1"])]
    srv = nfs_server(exports)
    with RpcClient("127.0.0.1", srv.port, auth=ALICE) as c:
        assert mnt(c, "/data")[0] == M.MNT3_OK
        exports[0] = Export.build("/data", ["10.0.0.1"])  # the source is re-read within a second
        deadline = time.monotonic() + 5
        while mnt(c, "/data")[0] == M.MNT3_OK:
            assert time.monotonic() < deadline, "the changed exports were not picked up"
            time.sleep(0.1)
        assert mnt(c, "/data")[0] == M.MNT3ERR_ACCES


def test_run_serves_until_stop_and_rpcbind_is_optional(nfs_store: Store, caplog: pytest.LogCaptureFixture) -> None:
    # rpcbind on: registered if a portmapper listens on 127.0.0.1:111, one log line if not; either way it serves
    probe = start(nfs_store, NfsSettings(host="127.0.0.1", port=0, udp=False), lambda: [])
    port = probe.port
    probe.close()
    stop = threading.Event()
    settings = NfsSettings(host="127.0.0.1", port=port, udp=False, rpcbind=True)
    exports = [Export.build("/data")]
    with caplog.at_level(logging.INFO, logger="tessera.nfs"):
        t = threading.Thread(target=run, args=(nfs_store, settings, lambda: exports, stop))
        t.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                with RpcClient("127.0.0.1", port, auth=ALICE) as c:
                    assert mnt(c, "/data")[0] == M.MNT3_OK
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert f"NFS server listening on 127.0.0.1:{port}" in caplog.text
    assert "/data (* rw squash=root)" in caplog.text
    with pytest.raises(ConnectionRefusedError):
        RpcClient("127.0.0.1", port).close()


def test_missing_export_directory_is_flagged_at_start(nfs_store: Store, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tessera.nfs"), \
            start(nfs_store, NfsSettings(host="127.0.0.1", port=0, rpcbind=False), lambda: [Export.build("/gone")]):
        pass
    assert "/gone (* rw squash=root) [not servable:" in caplog.text


def test_port_in_use_is_an_oserror(nfs_store: Store, nfs_server: ServerFactory) -> None:
    srv = nfs_server([])
    with pytest.raises(OSError):
        start(nfs_store, NfsSettings(host="127.0.0.1", port=srv.port, rpcbind=False), lambda: [])


def test_standalone_module(tmp_path: Path) -> None:
    d = str(tmp_path / "store")
    init_store(d, cell=64 * 1024, shard_bytes=64 * 64 * 1024)
    with open_store(d) as s:
        s.fs.mkdir(s.fs.root, "pub")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "protocols.nfs", "--data", d, "--listen", f"127.0.0.1:{port}",
                             "--export", "/pub:ro:all", "--clients", "127.0.0.0/8", "--no-rpcbind"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                c = RpcClient("127.0.0.1", port, auth=ALICE)
                break
            except ConnectionRefusedError:
                assert proc.poll() is None and time.monotonic() < deadline, "python -m protocols.nfs did not start"
                time.sleep(0.1)
        with c:
            assert mnt(c, "/pub")[0] == M.MNT3_OK
            assert M.unpack_exports(c.call_ok(M.PROG, 3, M.EXPORT)) == [("/pub", ["127.0.0.0/8"])]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    bad = subprocess.run([sys.executable, "-m", "protocols.nfs", "--data", d, "--export", "/pub:rx"], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "access must be one of rw, ro" in bad.stderr
