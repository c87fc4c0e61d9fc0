"""The case-folded key of a directory entry name, for case-insensitive lookup (SMB shares).

Every dentry row keeps ``folded = fold(name)`` beside its exact name, with an index on
``(parent, folded)``: a case-insensitive lookup is one index search, never a directory scan.

The key is Unicode *canonical caseless matching* (Unicode 15, D145): full case folding
(``str.casefold``) of the canonically decomposed name, stored recomposed (NFC).  So
``Readme.TXT`` = ``README.txt``, a name a macOS client sends decomposed (``e`` + U+0301)
matches the same name written precomposed (``é``), and ``Straße`` = ``STRASSE``.  This is a
little wider than NTFS's per-character upcase table (NTFS tells ``ß`` and ``ss`` apart); the
exact name always wins over a folded match, so nothing stored becomes unreachable.  Bytes that
are not UTF-8 (kept through surrogateescape) fold to themselves.

>>> fold(b"Readme.TXT")
b'readme.txt'
>>> fold("Cafe\\u0301".encode()) == fold("CAFÉ".encode()) == "café".encode()
True
>>> fold("Straße".encode()) == fold(b"STRASSE")
True
>>> fold(b"\\xff\\xfeA")
b'\\xff\\xfea'
"""

from __future__ import annotations

import unicodedata


def fold(name: bytes) -> bytes:
    """The folded key of a stored (bytes) name."""
    if name.isascii():
        return name.lower()
    s = name.decode("utf-8", "surrogateescape")
    key = unicodedata.normalize("NFC", unicodedata.normalize("NFD", s).casefold())
    return key.encode("utf-8", "surrogateescape")
