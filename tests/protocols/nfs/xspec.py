"""A tiny reader of RFC 4506 ``.x`` files and an interpreter of their types: the test oracle for codecs.

It parses ``const``, ``typedef``, ``enum``, ``struct``, ``union`` and ``program`` definitions
(the subset the ONC RPC protocol files use) and then decodes and encodes values of any
defined type *from the definition alone*, independently of the codecs under test:

- integers are ints, ``bool`` a bool, an enum an int (one of its values), opaque and strings bytes;
- a struct is a dict of its fields; a union a dict with the discriminant's name and, unless the
  arm is void, the arm's name; ``T *x`` is None or a value, and a pointer to a struct that links
  to itself (``entry3 *entries`` with ``entry3 *nextentry``) is a list of those structs (without
  the link field) -- decoded iteratively, so a 2,000-entry directory listing needs no recursion;
- :meth:`Spec.size` is the encoded size of a fixed-size type (None for variable-size ones).

>>> spec = Spec.parse("struct p { unsigned int a; hyper b; opaque c[3]; }; union u switch (bool f) "
...                   "{ case TRUE: p v; case FALSE: void; };")
>>> spec.size("p")
16
>>> raw = spec.encode("u", {"f": True, "v": {"a": 1, "b": -2, "c": b"xyz"}})
>>> spec.decode("u", raw)
{'f': True, 'v': {'a': 1, 'b': -2, 'c': b'xyz'}}
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TOKEN = re.compile(r"\s*(?:(0x[0-9a-fA-F]+|-?\d+)|([A-Za-z_][A-Za-z0-9_]*)|([{}();:,<>\[\]*=]))")
_PRIMS = {"int": ">i", "unsigned int": ">I", "hyper": ">q", "unsigned hyper": ">Q", "bool": ">I",
          "long": ">i", "unsigned long": ">I", "unsigned": ">I", "float": ">f", "double": ">d"}


@dataclass(frozen=True)
class Decl:
    """One declaration: ``type name`` with its form (plain, fixed[n], var<n>, optional *)."""

    name: str
    type: str
    form: str = "plain"  # plain | fixed | var | ptr | void
    bound: int | None = None


@dataclass
class Union:
    disc: Decl
    arms: dict[int, Decl] = field(default_factory=dict)
    default: Decl | None = None


@dataclass
class Spec:
    consts: dict[str, int] = field(default_factory=dict)
    enums: dict[str, dict[str, int]] = field(default_factory=dict)
    structs: dict[str, list[Decl]] = field(default_factory=dict)
    unions: dict[str, Union] = field(default_factory=dict)
    typedefs: dict[str, Decl] = field(default_factory=dict)
    procs: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # name -> (number, args, result)
    order: list[str] = field(default_factory=list)  # definitions in file order

    # -- parsing ----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Spec:
        return cls.parse(Path(path).read_text())

    @classmethod
    def parse(cls, text: str) -> Spec:
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"^\s*%.*$", " ", text, flags=re.M)
        toks: list[str] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                if text[pos:].strip():
                    raise SyntaxError(f"cannot read {text[pos:pos + 20]!r}")
                break
            toks.append(m.group(m.lastindex or 0))
            pos = m.end()
        spec = cls()
        _Parser(toks, spec).definitions()
        return spec

    def value(self, tok: str) -> int:
        if tok in self.consts:
            return self.consts[tok]
        for values in self.enums.values():
            if tok in values:
                return values[tok]
        if tok in ("TRUE", "FALSE"):
            return 1 if tok == "TRUE" else 0
        return int(tok, 0)

    # -- layout -----------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        while name in self.typedefs and self.typedefs[name].form == "plain":
            name = self.typedefs[name].type
        return name

    def size(self, name: str) -> int | None:
        """Encoded size of a fixed-size type, None if it varies."""
        return self._size(Decl("", name))

    def _size(self, d: Decl) -> int | None:
        if d.form == "void":
            return 0
        if d.form in ("var", "ptr"):
            return None
        if d.type in self.typedefs:
            td = self.typedefs[d.type]
            if d.form == "fixed":
                return None
            return self._size(td)
        if d.form == "fixed":
            if d.type == "opaque":
                return ((d.bound or 0) + 3) & ~3
            one = self._size(Decl("", d.type))
            return None if one is None else one * (d.bound or 0)
        if d.type in _PRIMS:
            return struct.calcsize(_PRIMS[d.type])
        if d.type in self.enums:
            return 4
        if d.type in self.structs:
            sizes = [self._size(f) for f in self.structs[d.type]]
            return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)
        if d.type in self.unions:
            return None
        raise KeyError(d.type)

    # -- decoding ---------------------------------------------------------------------
    def decode(self, name: str, data: bytes) -> Any:
        """Decode one ``name`` from ``data``, which it must use exactly."""
        r = _Reader(data)
        v = self._dec(r, Decl("", name))
        if r.pos != len(data):
            raise ValueError(f"{len(data) - r.pos} bytes left after {name}")
        return v

    def decode_prefix(self, name: str, data: bytes) -> tuple[Any, int]:
        r = _Reader(data)
        return self._dec(r, Decl("", name)), r.pos

    def _self_link(self, name: str) -> str | None:
        fields = self.structs.get(self.resolve(name))
        if fields and fields[-1].form == "ptr" and self.resolve(fields[-1].type) == self.resolve(name):
            return fields[-1].name
        return None

    def _dec(self, r: _Reader, d: Decl) -> Any:
        if d.form == "void":
            return None
        if d.form == "ptr":
            if self._self_link(d.type):
                out = []
                while r.bool():
                    out.append(self._dec_struct(r, self.resolve(d.type), skip_link=True))
                return out
            return self._dec(r, Decl(d.name, d.type)) if r.bool() else None
        if d.type in ("opaque", "string"):
            n = d.bound if d.form == "fixed" else r.prim(">I")
            if d.form == "var" and d.bound is not None and n > d.bound:
                raise ValueError(f"{d.name}: {n} bytes over the bound {d.bound}")
            return r.take(n or 0, pad=True)
        if d.form in ("fixed", "var"):
            n = d.bound if d.form == "fixed" else r.prim(">I")
            return [self._dec(r, Decl("", d.type)) for _ in range(n or 0)]
        t = d.type
        if t in self.typedefs:
            td = self.typedefs[t]
            return self._dec(r, Decl(d.name, td.type, td.form, td.bound))
        if t in _PRIMS:
            v = r.prim(_PRIMS[t])
            if t == "bool":
                if v not in (0, 1):
                    raise ValueError(f"bool {v}")
                return bool(v)
            return v
        if t in self.enums:
            v = r.prim(">i")
            if v not in self.enums[t].values():
                raise ValueError(f"{v} is not a value of enum {t}")
            return v
        if t in self.structs:
            return self._dec_struct(r, t)
        if t in self.unions:
            u = self.unions[t]
            disc = self._dec(r, u.disc)
            arm = u.arms.get(int(disc), u.default)
            if arm is None:
                raise ValueError(f"union {t}: no arm for {disc}")
            out = {u.disc.name: disc}
            if arm.form != "void":
                out[arm.name] = self._dec(r, arm)
            return out
        raise KeyError(t)

    def _dec_struct(self, r: _Reader, t: str, skip_link: bool = False) -> dict[str, Any]:
        fields = self.structs[t]
        if skip_link:
            fields = fields[:-1]
        return {f.name: self._dec(r, f) for f in fields}

    # -- encoding ---------------------------------------------------------------------
    def encode(self, name: str, value: Any) -> bytes:
        out: list[bytes] = []
        self._enc(out, Decl("", name), value)
        return b"".join(out)

    def _enc(self, out: list[bytes], d: Decl, v: Any) -> None:
        if d.form == "void":
            return
        if d.form == "ptr":
            if self._self_link(d.type):
                for item in v:
                    out.append(struct.pack(">I", 1))
                    for f in self.structs[self.resolve(d.type)][:-1]:
                        self._enc(out, f, item[f.name])
                out.append(struct.pack(">I", 0))
                return
            out.append(struct.pack(">I", 0 if v is None else 1))
            if v is not None:
                self._enc(out, Decl(d.name, d.type), v)
            return
        if d.type in ("opaque", "string"):
            data = v.encode() if isinstance(v, str) else bytes(v)
            if d.form == "fixed" and len(data) != d.bound:
                raise ValueError(f"{d.name}: needs {d.bound} bytes")
            if d.form == "var":
                out.append(struct.pack(">I", len(data)))
            out.append(data + b"\0" * (-len(data) % 4))
            return
        if d.form in ("fixed", "var"):
            if d.form == "var":
                out.append(struct.pack(">I", len(v)))
            for item in v:
                self._enc(out, Decl("", d.type), item)
            return
        t = d.type
        if t in self.typedefs:
            td = self.typedefs[t]
            self._enc(out, Decl(d.name, td.type, td.form, td.bound), v)
        elif t in _PRIMS:
            out.append(struct.pack(_PRIMS[t], int(v)))
        elif t in self.enums:
            out.append(struct.pack(">i", int(v)))
        elif t in self.structs:
            for f in self.structs[t]:
                self._enc(out, f, v[f.name])
        elif t in self.unions:
            u = self.unions[t]
            disc = v[u.disc.name]
            self._enc(out, u.disc, disc)
            arm = u.arms.get(int(disc), u.default)
            if arm is None:
                raise ValueError(f"union {t}: no arm for {disc}")
            if arm.form != "void":
                self._enc(out, arm, v[arm.name])
        else:
            raise KeyError(t)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, pad: bool = False) -> bytes:
        end = self.pos + n + ((-n % 4) if pad else 0)
        if end > len(self.data):
            raise ValueError(f"data ends early: need {end - self.pos} bytes at {self.pos}")
        v = self.data[self.pos: self.pos + n]
        self.pos = end
        return v

    def prim(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def bool(self) -> bool:
        v = self.prim(">I")
        if v not in (0, 1):
            raise ValueError(f"bool {v}")
        return bool(v)


class _Parser:
    def __init__(self, toks: list[str], spec: Spec) -> None:
        self.t = toks
        self.i = 0
        self.spec = spec

    def peek(self) -> str:
        return self.t[self.i] if self.i < len(self.t) else ""

    def next(self, want: str | None = None) -> str:
        tok = self.peek()
        if want is not None and tok != want:
            raise SyntaxError(f"expected {want!r}, got {tok!r} at token {self.i}")
        self.i += 1
        return tok

    def definitions(self) -> None:
        while self.peek():
            kw = self.next()
            s = self.spec
            if kw == "const":
                name = self.next()
                self.next("=")
                s.consts[name] = s.value(self.next())
            elif kw == "typedef":
                d = self.decl()
                s.typedefs[d.name] = d
                name = d.name
            elif kw == "enum":
                name = self.next()
                s.enums[name] = self.enum_body()
            elif kw == "struct":
                name = self.next()
                self.next("{")
                fields = []
                while self.peek() != "}":
                    fields.append(self.decl())
                    self.next(";")
                self.next("}")
                s.structs[name] = fields
            elif kw == "union":
                name = self.next()
                s.unions[name] = self.union_body()
            elif kw == "program":
                self.program()
                continue
            else:
                raise SyntaxError(f"unexpected {kw!r}")
            self.next(";")
            s.order.append(name)

    def enum_body(self) -> dict[str, int]:
        self.next("{")
        values: dict[str, int] = {}
        while True:
            name = self.next()
            self.next("=")
            values[name] = self.spec.value(self.next())
            if self.next() == "}":
                return values

    def union_body(self) -> Union:
        self.next("switch")
        self.next("(")
        u = Union(self.decl())
        self.next(")")
        self.next("{")
        while self.peek() != "}":
            cases: list[int] = []
            is_default = False
            while self.peek() in ("case", "default"):
                if self.next() == "case":
                    cases.append(self.spec.value(self.next()))
                else:
                    is_default = True
                self.next(":")
            d = self.decl()
            self.next(";")
            for c in cases:
                u.arms[c] = d
            if is_default:
                u.default = d
        self.next("}")
        return u

    def type_spec(self) -> str:
        tok = self.next()
        if tok == "unsigned" and self.peek() in ("int", "hyper", "long"):
            return f"unsigned {self.next()}"
        return tok

    def decl(self) -> Decl:
        if self.peek() == "void":
            self.next()
            return Decl("", "void", "void")
        typ = self.type_spec()
        if self.peek() == "*":
            self.next()
            return Decl(self.next(), typ, "ptr")
        name = self.next()
        if self.peek() == "[":
            self.next()
            bound = self.spec.value(self.next())
            self.next("]")
            return Decl(name, typ, "fixed", bound)
        if self.peek() == "<":
            self.next()
            bound = None if self.peek() == ">" else self.spec.value(self.next())
            self.next(">")
            return Decl(name, typ, "var", bound)
        if typ in ("opaque", "string"):
            raise SyntaxError(f"{typ} {name} needs a size")
        return Decl(name, typ)

    def program(self) -> None:
        self.next()
        self.next("{")
        while self.peek() == "version":
            self.next()
            self.next()
            self.next("{")
            while self.peek() != "}":
                res = self.type_spec()
                name = self.next()
                self.next("(")
                arg = self.type_spec()
                self.next(")")
                self.next("=")
                self.spec.procs[name] = (self.spec.value(self.next()), arg, res)
                self.next(";")
            self.next("}")
            self.next("=")
            self.next()
            self.next(";")
        self.next("}")
        self.next("=")
        self.next()
        self.next(";")
