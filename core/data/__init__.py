"""core.data: bytes on targets — segments of k+m shard files, stripes of cells,
Reed–Solomon parity, crc32c per block, degraded reads, scrub, rebuild, GC."""
