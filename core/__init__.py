"""Tessera's data core: an erasure-coded store (core.data), its metadata
(core.meta) and the one storage interface every protocol uses (core.fs)."""
