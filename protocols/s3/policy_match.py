"""Wildcards and policy variables of the AWS policy language, matched without backtracking.

A policy string such as ``arn:aws:s3:::photos/${aws:username}/*`` is parsed once into a
:class:`Glob`: literal text, the wildcards ``*`` (any run of characters, ``/`` included) and
``?`` (one character), and variables ``${key}`` or ``${key, 'default'}`` that take their value
from the request context when the policy is evaluated. A substituted value is literal text:
a user called ``a*`` does not become a wildcard. ``${*}``, ``${?}`` and ``${$}`` write the
characters ``*``, ``?`` and ``$`` literally.

Matching splits the pattern at each ``*`` into fixed-length chunks and finds them left to
right (the leftmost fit is always safe for ``*``-only globs), so a hostile pattern such as
``*a*a*a*a*b`` costs at most (pattern length x subject length), never exponential time.

>>> g = Glob.parse("arn:aws:s3:::photos/${aws:username}/*")
>>> g.matches("arn:aws:s3:::photos/alice/2024/x.jpg", {"aws:username": ["alice"]})
True
>>> g.matches("arn:aws:s3:::photos/bob/x.jpg", {"aws:username": ["alice"]})
False
>>> g.matches("arn:aws:s3:::photos/alice/x", {})   # unresolved variable: matches nothing
False
>>> Glob.parse("s3:Get*", fold=True).matches("s3:getobject")
True
>>> Glob.parse("a?c").matches("abc"), Glob.parse("a?c", wildcards=False).matches("abc")
(True, False)
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class Wild(enum.Enum):
    STAR = "*"
    ONE = "?"


@dataclass(frozen=True)
class Var:
    """A policy variable: the context key it reads and the default used when the key is absent."""

    key: str
    default: str | None = None


Part = str | Wild | Var
Context = Mapping[str, Sequence[str]]
_VAR = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"^\s*([^,\s]+)\s*,\s*'([^']*)'\s*$")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


def norm_key(key: str) -> str:
    """A condition key as looked up: AWS key names are case-insensitive, a tag key after '/' is not.

    >>> norm_key("AWS:SourceIp"), norm_key("s3:ExistingObjectTag/Project")
    ('aws:sourceip', 's3:existingobjecttag/Project')
    """
    head, sep, tail = key.partition("/")
    return head.lower() + sep + tail


def lookup(ctx: Context, key: str) -> Sequence[str] | None:
    """The context values of a key (the context's keys already normalised), None when absent."""
    vals = ctx.get(norm_key(key))
    return vals if vals else None


def _parse_var(body: str) -> Part | None:
    if body in _ESCAPES:
        return _ESCAPES[body]
    m = _DEFAULT.match(body)
    if m:
        return Var(norm_key(m.group(1)), m.group(2))
    if body and "," not in body and "'" not in body and " " not in body:
        return Var(norm_key(body))
    return None


def _literal_parts(text: str, wildcards: bool) -> list[Part]:
    if not wildcards:
        return [text] if text else []
    out: list[Part] = []
    buf = ""
    for ch in text:
        if ch in "*?":
            if buf:
                out.append(buf)
                buf = ""
            out.append(Wild(ch))
        else:
            buf += ch
    if buf:
        out.append(buf)
    return out


@dataclass(frozen=True)
class Glob:
    """A parsed policy string. ``text`` is the policy's own spelling of it."""

    text: str
    parts: tuple[Part, ...]
    fold: bool = False

    @classmethod
    def parse(cls, text: str, *, wildcards: bool = True, variables: bool = True, fold: bool = False) -> Glob:
        """Parse ``text``; ``fold`` compares case-insensitively (action names)."""
        if fold:
            text = text.lower()
        parts: list[Part] = []
        pos = 0
        for m in _VAR.finditer(text) if variables else ():
            v = _parse_var(m.group(1))
            if v is None:
                continue
            parts += _literal_parts(text[pos:m.start()], wildcards)
            parts.append(v)
            pos = m.end()
        parts += _literal_parts(text[pos:], wildcards)
        return cls(text, tuple(parts), fold)

    @property
    def has_variables(self) -> bool:
        return any(isinstance(p, Var) for p in self.parts)

    @property
    def has_wildcards(self) -> bool:
        return any(isinstance(p, Wild) for p in self.parts)

    def literal_prefix(self) -> str:
        """The fixed text before the first wildcard or variable.

        >>> Glob.parse("arn:aws:s3:::b/${aws:username}*").literal_prefix()
        'arn:aws:s3:::b/'
        """
        out = ""
        for p in self.parts:
            if not isinstance(p, str):
                break
            out += p
        return out

    def resolve(self, ctx: Context) -> list[str | Wild] | None:
        """Substitute variables; None when one has neither a value nor a default."""
        out: list[str | Wild] = []
        for p in self.parts:
            if isinstance(p, Var):
                vals = lookup(ctx, p.key)
                value = vals[0] if vals else p.default
                if value is None:
                    return None
                out.append(value.lower() if self.fold else value)
            else:
                out.append(p)
        return out

    def value(self, ctx: Context) -> str | None:
        """The resolved text with wildcards written as themselves (for exact comparisons)."""
        parts = self.resolve(ctx)
        return None if parts is None else "".join(p.value if isinstance(p, Wild) else p for p in parts)

    def matches(self, subject: str, ctx: Context | None = None) -> bool:
        parts = self.resolve(ctx or {})
        if parts is None:
            return False
        return match_parts(parts, subject.lower() if self.fold else subject)


@dataclass(frozen=True)
class _Chunk:
    """A fixed-length run of literal characters and '?'."""

    length: int
    literal: str | None  # set when the chunk has no '?': str.find does the work
    regex: re.Pattern[str] | None

    @classmethod
    def of(cls, items: list[str | Wild]) -> _Chunk:
        if all(isinstance(i, str) for i in items):
            s = "".join(i for i in items if isinstance(i, str))
            return cls(len(s), s, None)
        rx = "".join("." if i is Wild.ONE else re.escape(i) for i in items if isinstance(i, str) or i is Wild.ONE)
        length = sum(1 if i is Wild.ONE else len(i) for i in items if isinstance(i, str) or i is Wild.ONE)
        return cls(length, None, re.compile(rx, re.DOTALL))

    def at(self, s: str, pos: int) -> bool:
        if pos < 0 or pos + self.length > len(s):
            return False
        if self.literal is not None:
            return s.startswith(self.literal, pos)
        assert self.regex is not None
        return self.regex.match(s, pos, pos + self.length) is not None

    def find(self, s: str, start: int, end: int) -> int:
        if self.literal is not None:
            return s.find(self.literal, start, end)
        assert self.regex is not None
        m = self.regex.search(s, start, end)
        return -1 if m is None else m.start()


@functools.lru_cache(maxsize=4096)
def _compile(parts: tuple[str | Wild, ...]) -> tuple[_Chunk, ...]:
    chunks: list[list[str | Wild]] = [[]]
    for p in parts:
        if p is Wild.STAR:
            chunks.append([])
        else:
            chunks[-1].append(p)
    return tuple(_Chunk.of(c) for c in chunks)


def match_parts(parts: Sequence[str | Wild], s: str) -> bool:
    """Match resolved parts (literal strings and wildcards) against a whole string.

    >>> match_parts(["a", Wild.STAR, "b", Wild.ONE], "axxbyb!")
    True
    >>> match_parts([Wild.STAR, "a", Wild.STAR, "a"], "a")
    False
    """
    compiled = _compile(tuple(parts))
    if len(compiled) == 1:
        return compiled[0].length == len(s) and compiled[0].at(s, 0)
    first, *middle, last = compiled
    tail = len(s) - last.length
    if tail < first.length or not first.at(s, 0) or not last.at(s, tail):
        return False
    pos = first.length
    for c in middle:
        found = c.find(s, pos, tail)
        if found < 0:
            return False
        pos = found + c.length
    return True
