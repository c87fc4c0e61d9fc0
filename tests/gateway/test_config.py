from pathlib import Path

import pytest

from core.errors import ConfigError
from gateway.config import DEFAULT_YAML, load, parse_listen, write_default


def test_default_config_is_valid(tmp_path: Path) -> None:
    p = write_default(str(tmp_path))
    cfg = load(p)
    assert cfg.admin.listen == "127.0.0.1:9100" and cfg.data_dir(p) == str(tmp_path)
    assert Path(p).read_text() == DEFAULT_YAML


@pytest.mark.parametrize(("text", "needle"), [
    ("admin:\n  listen: nonsense\n", "admin.listen"),
    ("admin:\n  listen: 1.2.3.4:99999\n", "admin.listen"),
    ("bogus: 1\n", "bogus"),
    ("log:\n  level: loud\n", "log.level"),
    ("store:\n  io_threads: 0\n", "store.io_threads"),
    ("- a\n- b\n", "mapping"),
    ("admin: [\n", "YAML"),
])
def test_bad_configs_are_named(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "tessera.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load(str(p))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(str(tmp_path / "none.yaml"))


def test_parse_listen() -> None:
    assert parse_listen("[::1]:80") == ("::1", 80)
    with pytest.raises(ValueError):
        parse_listen(":80")


def test_default_config_serves_nfs_to_this_host_only(tmp_path: Path) -> None:
    from protocols.nfs.exports import Export
    nfs = load(write_default(str(tmp_path))).nfs
    assert nfs.enabled and nfs.listen == "0.0.0.0:2049" and nfs.user_listen == "127.0.0.1:12049"
    assert nfs.udp and nfs.rpcbind and nfs.workers == 8 and nfs.grace_s == 90
    assert nfs.built_exports() == [Export.build("/", ["127.0.0.1", "::1"], "rw", "root", 65534, 65534)]


def test_nfs_section_absent_means_no_nfs_present_means_enabled(tmp_path: Path) -> None:
    p = tmp_path / "tessera.yaml"
    p.write_text("s3:\n  enabled: true\n")  # a store made before NFS, or a test's config: nothing new opens
    assert not load(str(p)).nfs.enabled
    p.write_text("nfs:\n  listen: 127.0.0.1:3049\n  exports:\n    - path: /data/\n      clients: 10.1.2.3/8\n"
                 "      access: ro\n      squash: all\n      anonuid: 7\n      anongid: 8\n")
    nfs = load(str(p)).nfs
    assert nfs.enabled and nfs.listen == "127.0.0.1:3049"
    [e] = nfs.built_exports()
    assert (e.path, e.clients, e.access, e.squash, e.anonuid, e.anongid) == ("/data", ("10.0.0.0/8",), "ro",
                                                                             "all", 7, 8)
    assert e.allows("10.200.0.1") and not e.allows("11.0.0.1")


EXPORT = "nfs:\n  exports:\n    - path: /\n      clients: ['*']\n"


@pytest.mark.parametrize(("text", "message"), [
    (EXPORT + "      squash: some\n", "nfs.exports[0].squash: must be one of none, root, all, got 'some'"),
    (EXPORT + "      access: rx\n", "nfs.exports[0].access: must be one of rw, ro, got 'rx'"),
    (EXPORT + "      anonuid: -1\n", "nfs.exports[0].anonuid: Input should be greater than or equal to 0"),
    (EXPORT + "      anongid: x\n", "nfs.exports[0].anongid: Input should be a valid integer"),
    (EXPORT + "      root: yes\n", "nfs.exports[0].root: Extra inputs are not permitted"),
    (EXPORT + "    - path: data\n      clients: ['*']\n", "nfs.exports[1].path: export path 'data' must be absolute"),
    (EXPORT + "    - path: /a/../b\n      clients: ['*']\n", "nfs.exports[1].path: export path '/a/../b' may not"),
    (EXPORT + "    - path: /a\n      clients: [host.example]\n", "nfs.exports[1].clients: export client "
                                                                  "'host.example' is not an IP address"),
    (EXPORT + "    - path: /a\n      clients: []\n", "nfs.exports[1].clients: List should have at least 1 item"),
    (EXPORT + "    - path: /a\n", "nfs.exports[1].clients: Field required"),
    (EXPORT + "    - path: //\n      clients: ['*']\n", "nfs.exports: export / is listed twice"),
    ("nfs:\n  listen: nowhere\n", "nfs.listen: expected HOST:PORT, got 'nowhere'"),
    ("nfs:\n  user_listen: localhost\n", "nfs.user_listen: expected HOST:PORT"),
    ("nfs:\n  workers: 0\n", "nfs.workers: Input should be greater than or equal to 1"),
    ("nfs:\n  udp: sometimes\n", "nfs.udp: Input should be a valid boolean"),
    ("nfs:\n  exports: /data\n", "nfs.exports: Input should be a valid list"),
])
def test_bad_nfs_settings_name_their_key(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "tessera.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load(str(p))
    assert str(e.value).startswith("tessera.yaml: ") and message in str(e.value), str(e.value)


def test_default_config_shares_the_store_over_smb(tmp_path: Path) -> None:
    """`tessera init` / `make run`: SMB on 445 (as root) or smb.user_listen, sharing what NFS exports (/)."""
    from protocols.smb.crypto import Dialect
    from protocols.smb.shares import Share
    smb = load(write_default(str(tmp_path))).smb
    assert smb.enabled and smb.listen == "0.0.0.0:445" and smb.user_listen == "127.0.0.1:4445"
    assert smb.signing_required and smb.dialect == Dialect.SMB202 and smb.server_name == "TESSERA"
    assert smb.shares == [Share("tessera", "/")]
    assert smb.shares[0].path == load(write_default(str(tmp_path))).nfs.built_exports()[0].path


def test_smb_section_absent_means_no_smb_present_means_enabled(tmp_path: Path) -> None:
    from protocols.smb.crypto import Dialect
    from protocols.smb.shares import Share
    p = tmp_path / "tessera.yaml"
    p.write_text("nfs:\n  enabled: true\n")  # a store made before SMB, or a test's config: nothing new opens
    assert not load(str(p)).smb.enabled
    p.write_text("smb:\n  listen: 127.0.0.1:4450\n  min_dialect: 3.0\n  signing_required: false\n  shares:\n"
                 "    - name: data\n      path: /data\n      users: [alice]\n      groups: [studio]\n"
                 "      read_only: true\n      browseable: false\n      encrypt: true\n      case_insensitive: false\n"
                 "    - {name: Media, path: /media}\n")
    smb = load(str(p)).smb
    assert smb.enabled and smb.listen == "127.0.0.1:4450" and not smb.signing_required
    assert smb.dialect == Dialect.SMB30  # YAML's 3.0 is a number; it means the dialect
    assert smb.shares == [Share("data", "/data", users=("alice",), groups=("studio",), read_only=True,
                                browseable=False, encrypt=True, case_insensitive=False), Share("Media", "/media")]
    p.write_text("smb:\n  min_dialect: 2.1\n  shares: []\n")
    assert load(str(p)).smb.dialect == Dialect.SMB21 and load(str(p)).smb.shares == []


SHARE = "smb:\n  shares:\n    - name: data\n      path: /data\n"


@pytest.mark.parametrize(("text", "message"), [
    (SHARE + "    - {name: 'a/b', path: /x}\n", "smb.shares[1].name: 'a/b' may not contain any of"),
    (SHARE + "    - {name: ipc$, path: /x}\n", "smb.shares[1].name: IPC$ is the server's own share"),
    (SHARE + "    - {name: DATA, path: /other}\n", "smb.shares[1].name: 'DATA' is already the name of share 'data' "
                                                    "(share names are compared without case)"),
    (SHARE + "    - {name: x, path: data}\n", "smb.shares[1].path: a share path is an absolute store path"),
    (SHARE + "    - {name: x, path: /a/../b}\n", "smb.shares[1].path: '/a/../b' is not a normalised path"),
    (SHARE + "    - {name: x}\n", "smb.shares[1].path: a share path is an absolute store path"),
    (SHARE + "      writable: yes\n", "smb.shares[0]: unknown key 'writable'"),
    (SHARE + "      read_only: maybe\n", "smb.shares[0].read_only: true or false"),
    (SHARE + "      users: alice\n", "smb.shares[0].users: a list of names"),
    ("smb:\n  shares: /data\n", "smb.shares: a list of shares"),
    ("smb:\n  listen: 445\n", "smb.listen: expected HOST:PORT, got 445"),
    ("smb:\n  listen: 0.0.0.0:99999\n", "smb.listen: expected HOST:PORT"),
    ("smb:\n  user_listen: localhost\n", "smb.user_listen: expected HOST:PORT"),
    ("smb:\n  min_dialect: 1.0\n", "smb.min_dialect: must be one of 2.0.2, 2.1, 3.0, 3.0.2, 3.1.1, got '1.0'"),
    ("smb:\n  server_name: a very long server name\n", "smb.server_name: 'a very long server name' is not a NetBIOS"),
    ("smb:\n  signing_required: often\n", "smb.signing_required: Input should be a valid boolean"),
    ("smb:\n  workers: 0\n", "smb.workers: Input should be greater than or equal to 1"),
    ("smb:\n  guest: true\n", "smb.guest: Extra inputs are not permitted"),
])
def test_bad_smb_settings_name_their_key(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "tessera.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load(str(p))
    assert str(e.value).startswith("tessera.yaml: ") and message in str(e.value), str(e.value)
    assert "smb.shares: smb.shares" not in str(e.value)  # the SMB layer's message names its key once
