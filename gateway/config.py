"""The one YAML configuration file of a store (``DIR/tessera.yaml``).

Validated with pydantic; unknown keys and bad values are reported with their
location, e.g. ``tessera.yaml: admin.listen: expected HOST:PORT, got 'x'``.
"""

from __future__ import annotations

import os
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import ConfigError

CONFIG_NAME = "tessera.yaml"


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


class AdminConfig(_Strict):
    enabled: bool = True
    listen: str = "127.0.0.1:9100"

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v


class MaintenanceConfig(_Strict):
    gc_interval_s: float = Field(300.0, ge=0)
    repair_interval_s: float = Field(60.0, ge=0)


class StoreConfig(_Strict):
    data: str = "."  # relative to the config file's directory
    io_threads: int = Field(4, ge=1, le=64)


class Config(_Strict):
    store: StoreConfig = StoreConfig()
    log: LogConfig = LogConfig()
    admin: AdminConfig = AdminConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()

    def data_dir(self, config_path: str) -> str:
        base = os.path.dirname(os.path.abspath(config_path))
        return os.path.normpath(os.path.join(base, self.store.data))


DEFAULT_YAML = """\
# Tessera configuration — one file per store, validated at start.
store:
  data: .              # the data directory, relative to this file
  io_threads: 4        # stripe encode/write threads per process
log:
  level: info          # debug | info | warning | error
  format: json         # json (structured) | text
admin:
  enabled: true
  listen: 127.0.0.1:9100   # /healthz and Prometheus /metrics
maintenance:
  gc_interval_s: 300       # garbage-collect unreferenced segments
  repair_interval_s: 60    # repair cells that reads found bad
"""


def load(path: str) -> Config:
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{os.path.basename(path)}: {errs}") from None


def write_default(data_dir: str) -> str:
    path = os.path.join(data_dir, CONFIG_NAME)
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(DEFAULT_YAML)
    return path
