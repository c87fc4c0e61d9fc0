"""Lookups that also say the stored name (a part of FileSystem), for case-insensitive SMB shares.

A share with ``case_insensitive: true`` finds ``README.TXT`` when the directory holds
``Readme.txt``: ``fs.lookup(parent, name, fold=True)`` and ``fs.resolve(path, fold=True)``
match names under Unicode case folding (:mod:`core.meta.fold`: canonical caseless matching,
so ``Straße`` = ``STRASSE`` and NFD = NFC) through an index on each entry's folded key, never
a directory scan.  When several entries differ only by case the exact name wins, else the
first in byte order.  The SMB layer then needs the name as stored, to unlink or rename that
entry and to report it: :meth:`CaselessOps.lookup_entry` and :meth:`CaselessOps.resolve_entry`
return it with the attributes.

Creating with ``fold=True`` (``fs.create``/``fs.mkdir``) treats a name that differs only by
case as the same name, inside the same transaction (no window for a second case variant).
Renames and other calls take exact names: pass the stored name a lookup returned.
"""

from __future__ import annotations

from core.errors import NotFound
from core.fs import names, perm
from core.fs import namespace as ns
from core.fs.types import Attr, Cred
from core.meta.store import MetaStore


class CaselessOps:
    _meta: MetaStore
    cred: Cred

    def lookup_entry(self, parent: int, name: str, *, fold: bool = False) -> tuple[str, Attr]:
        """(the stored name, its attributes) of ``name`` in ``parent``, case-insensitively if ``fold``."""
        raw = names.encode(name)
        with self._meta.read() as t:
            perm.may_search(t, self.cred, ns.get_dir(t, parent))
            hit = ns.find(t, parent, raw, fold)
            if hit is None:
                raise NotFound(f"{name!r} not found")
            node = ns.get(t, hit[0])
        return names.decode(hit[2]), Attr.of(node)

    def resolve_entry(self, path: str, *, fold: bool = False) -> tuple[str, Attr]:
        """(the stored path, its attributes) of an absolute store path, case-insensitively if ``fold``.

        The stored path spells each component as the directory holds it (``/Docs/Readme.txt`` for
        ``/DOCS/README.TXT``)."""
        parts = [names.encode(p) for p in names.split_path(path)]
        found: list[bytes] = []
        with self._meta.read() as t:
            node = ns.walk(t, self.cred, parts, fold=fold, found=found)
        return "/" + "/".join(names.decode(n) for n in found), Attr.of(node)
