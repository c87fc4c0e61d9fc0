"""Serving needs only the package's runtime dependencies: what `make run` installs (``pip install -e .``)
and what the container image holds (pip and setuptools removed).

The servers run here with every other installed distribution hidden — torch, the test tools, pip,
setuptools, the extras' dependencies — by a meta path hook in a ``sitecustomize`` that every process of
the server tree loads (the S3 server and its uvicorn workers, the NFS server, the SMB server): an import of
a hidden module fails as it would where that module is not installed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.gateway.test_serve import ROOT, _exports_yaml, _free_port, _get, _get_status, _init, _mount_exports, _until
from tests.gateway.test_smb_role import PASSWORD, connect

HOOK = """\
import os, sys
from importlib.abc import MetaPathFinder

BLOCKED = frozenset(os.environ["TESSERA_TEST_HIDDEN"].split(","))


class Hidden(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in BLOCKED:
            with open(os.environ["TESSERA_TEST_HIDDEN_LOG"], "a") as f:
                f.write(f"{os.getpid()} {fullname}\\n")
            raise ModuleNotFoundError(f"No module named {fullname!r} (hidden: not a runtime dependency)",
                                      name=fullname)
        return None


sys.meta_path.insert(0, Hidden())
"""


def runtime_distributions() -> set[str]:
    """The project's distribution and everything its base requirements pull in, extras like
    ``uvicorn[standard]`` included, environment markers evaluated here."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [("tessera", frozenset())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed: nothing of it can be imported anyway
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in {"", *extras}):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def hidden_modules() -> set[str]:
    """Top-level modules that only distributions outside the runtime set provide."""
    runtime = runtime_distributions()
    return {top for top, dists in metadata.packages_distributions().items()
            if not any(canonicalize_name(d) in runtime for d in dists)}


def test_the_runtime_set_is_what_pyproject_says() -> None:
    runtime = runtime_distributions()
    assert {"fastapi", "uvicorn", "uvloop", "httptools", "pydantic", "pyeclib", "pyyaml", "impacket"} <= runtime
    hidden = hidden_modules()
    assert {"torch", "pytest", "hypothesis", "boto3", "botocore", "mypy", "fsspec", "pip", "setuptools",
            "smbprotocol", "smbclient", "spnego"} <= hidden  # the SMB clients are the tests' own
    assert not {"fastapi", "uvicorn", "yaml", "numpy", "pydantic", "core", "gateway", "protocols", "impacket",
                "cryptography"} & hidden


def test_servers_run_on_the_runtime_dependencies_alone(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HOOK)
    log = tmp_path / "hidden.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
           "TESSERA_TEST_HIDDEN": ",".join(sorted(hidden_modules())), "TESSERA_TEST_HIDDEN_LOG": str(log)}
    # the hook works (torch is installed here, and hidden)
    p = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert p.returncode == 1 and "hidden: not a runtime dependency" in p.stderr
    # every server module imports
    mods = ["gateway.cli", "gateway.serve", "gateway.nfs_role", "protocols.s3.server", "protocols.s3.app",
            "protocols.nfs.service", "protocols.nfs.nfs3", "protocols.nfs.nlm", "protocols.nfs.nsm",
            "gateway.smb_role", "protocols.smb.service", "protocols.smb.auth", "protocols.smb.spnego",
            "protocols.smb.srvsvc"]
    present = [m for m in mods if (ROOT / (m.replace(".", "/") + ".py")).exists()]
    p = subprocess.run([sys.executable, "-c", f"import {', '.join(present)}"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    # and serve: admin endpoint, S3 (uvicorn and a worker process), NFS, SMB (a logon: NTLM and SPNEGO)
    d = tmp_path / "data"
    _init(d)
    subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(d), "user", "add", "alice", "--password",
                    PASSWORD, "--no-key"], cwd=ROOT, check=True, capture_output=True)
    admin, s3, nfs, smb = _free_port(), _free_port(), _free_port(), _free_port()
    (d / "tessera.yaml").write_text(textwrap.dedent(f"""\
        admin:
          listen: 127.0.0.1:{admin}
        s3:
          listen: 127.0.0.1:{s3}
          workers: 1
        nfs:
          listen: 127.0.0.1:{nfs}
          rpcbind: false
          exports:
        """) + _exports_yaml("path: /, clients: ['*']") + f"smb:\n  listen: 127.0.0.1:{smb}\n  shares:\n"
                                                  "    - {name: all, path: /}\n")
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--data", str(d), "serve"], cwd=ROOT, env=env,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert _get(f"http://127.0.0.1:{admin}/healthz") == (200, "OK\n")
        code, xml = _get_status(f"http://127.0.0.1:{s3}/")
        assert code == 403 and "AccessDenied" in xml
        assert _until(lambda: _mount_exports(nfs), bool) == [("/", ["*"])]
        with connect(smb) as c:
            assert "meta" not in c.listdir("all")
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    err = server.stderr.read() if server.stderr else ""
    assert "Traceback" not in err and "hidden: not a runtime dependency" not in err, err[-3000:]
