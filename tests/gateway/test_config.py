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
