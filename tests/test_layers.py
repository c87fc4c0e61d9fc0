"""The dependency direction of DESIGN.md, checked on every module's imports:

gateway -> protocols -> core.fs (+ core.identity, core.errors) -> core.meta, core.data.
core never imports protocols or gateway; a protocol never imports another protocol, the
gateway, or core below its interface (core.meta, core.data, core.store, core.fs's modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_MAY = ("core.fs", "core.identity", "core.errors")


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in ("core", "protocols"):  # `from core import errors`
                out += [f"{node.module}.{a.name}" for a in node.names]
            else:
                out.append(node.module)
    return out


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def violations() -> list[str]:
    bad: list[str] = []
    for top in ("core", "protocols"):
        for path in sorted((ROOT / top).rglob("*.py")):
            mod = module_of(path)
            for imp in imports(path):
                why = rule(mod, imp)
                if why:
                    bad.append(f"{mod} imports {imp}: {why}")
    return bad


def rule(mod: str, imp: str) -> str | None:
    first = imp.split(".")[0]
    if mod.startswith("core") and first in ("protocols", "gateway"):
        return "core never imports protocols or the gateway"
    if not mod.startswith("protocols."):
        return None
    proto = mod.split(".")[1]
    if first == "gateway":
        return "protocols never import the gateway"
    if first == "protocols" and imp.split(".")[1:2] not in ([proto], ["loop"]) and imp != "protocols":
        return "protocols never import each other (protocols.loop, protocol-neutral, is shared)"
    if first == "core" and imp not in PROTOCOL_MAY and not imp.startswith(("core.identity.",)):
        if imp.startswith("core.fs.") and imp.count(".") == 2 and imp.rsplit(".", 1)[1][0].isupper():
            return None  # `from core.fs import Name`
        return "protocols reach core only through core.fs, core.identity and core.errors"
    return None


def test_rule_catches_violations() -> None:
    assert rule("protocols.s3.service", "core.meta.types")
    assert rule("protocols.s3.service", "core.fs.fs")
    assert rule("protocols.s3.server", "gateway.config")
    assert rule("protocols.torch.fs", "protocols.s3.keys")
    assert rule("core.fs.fs", "protocols.s3")
    assert rule("protocols.s3.service", "core.fs.Attr") is None
    assert rule("protocols.s3.service", "core.fs") is None
    assert rule("protocols.s3.app", "protocols.s3.router") is None


def test_dependency_direction() -> None:
    bad = violations()
    assert not bad, "imports against the dependency direction (DESIGN.md):\n" + "\n".join(bad)


def private_reaches() -> list[str]:
    """Attribute uses of core's private metadata and data stores outside core."""
    bad: list[str] = []
    for top in ("gateway", "protocols"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute) and node.attr in ("_meta", "_data"):
                    bad.append(f"{module_of(path)}:{node.lineno} uses .{node.attr}")
    return bad


def test_metadata_and_data_stay_private_to_core() -> None:
    bad = private_reaches()
    assert not bad, "core's metadata/data objects reached from outside core:\n" + "\n".join(bad)
