"""Prometheus metrics of a store, gathered at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from core.store import Store


class StoreCollector(Collector):
    def __init__(self, store: Store, counters: dict[str, float]) -> None:
        self.store = store
        self.counters = counters

    def collect(self) -> Iterator[Any]:
        h = self.store.health()
        state = GaugeMetricFamily("tessera_health", "1 for the current health state", labels=["state"])
        for s in ("OK", "DEGRADED", "FAILED"):
            state.add_metric([s], 1.0 if h.state == s else 0.0)
        yield state
        yield GaugeMetricFamily("tessera_degraded_stripes", "Stripes missing redundancy",
                                value=h.degraded_stripes)
        used = GaugeMetricFamily("tessera_target_used_bytes", "Bytes used on a target", labels=["target"])
        free = GaugeMetricFamily("tessera_target_free_bytes", "Bytes free on a target", labels=["target"])
        up = GaugeMetricFamily("tessera_target_up", "1 if the target is healthy", labels=["target", "path"])
        for t in h.targets:
            tid = str(t["id"])
            used.add_metric([tid], float(t["used"]))  # type: ignore[arg-type]
            free.add_metric([tid], float(t["free"]))  # type: ignore[arg-type]
            up.add_metric([tid, str(t["path"])], 1.0 if t["state"] == "ok" else 0.0)
        yield used
        yield free
        yield up
        st = self.store.fs.statfs()
        yield GaugeMetricFamily("tessera_files", "Inodes in the store", value=st.total_files - st.free_files)
        count = GaugeMetricFamily("tessera_kept_entries", "Kept versions, delete markers and trash entries",
                                  labels=["kind"])
        size = GaugeMetricFamily("tessera_kept_bytes", "Logical bytes kept as versions and in the trash",
                                 labels=["kind"])
        usage = self.store.fs.version_usage("/")
        for kind in ("version", "marker", "trash"):
            n, b = usage.get(kind, (0, 0))
            count.add_metric([kind], float(n))
            size.add_metric([kind], float(b))
        yield count
        yield size
        for name, val in self.counters.items():
            yield CounterMetricFamily(f"tessera_{name}", f"Maintenance counter {name}", value=val)


def registry(store: Store, counters: dict[str, float]) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(StoreCollector(store, counters))
    return reg
