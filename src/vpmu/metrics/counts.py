"""Accumulators of the sections that count and sum records of one kind: VM-exits (and the MSR
exits among them), perf kernel-API calls, guest PMI latencies and mediated PMU switches.

Each ``feed`` folds one record in as the run emits it (``vpmu.metrics.stream.RunMetrics``
routes them); the section methods read the totals, in the results' key order, at the end.
Sums are of integer picoseconds, so the order records arrive in changes no result.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from vpmu.arch.names import names_for
from vpmu.metrics.units import ns, percentile_of_counts, ranked
from vpmu.trace import GuestPmi, PerfCall, PmuContext, VmExit
from vpmu.trace.records import PmuPartition

EXIT_PUTS = ("run-loop", "vm-entry", "vcpu-load")
"""Causes of a put made inside a VM-exit's handling (its time is also in the exit's cost)."""


class ExitCounts:
    """VM-exits by VMX reason, MSR exits by (direction, MSR), fastpath exits, their time."""

    TOTALS: ClassVar[tuple[str, ...]] = ("by_reason", "msrs", "fastpath", "cost_ps")
    """Its fields, all sums (``vpmu.metrics.period.Totals``)."""

    def __init__(self) -> None:
        self.by_reason: Counter[str] = Counter()
        self.msrs: Counter[tuple[bool, int]] = Counter()
        """(write, MSR index) -> exits: named only when read, as one name may cover two."""
        self.fastpath = 0
        self.cost_ps = 0

    def feed(self, e: VmExit) -> None:
        """Count one exit."""
        self.by_reason[e.reason] += 1
        if e.msr >= 0:
            self.msrs[(e.write, e.msr)] += 1
        self.fastpath += e.fastpath
        self.cost_ps += e.cost_ps

    def vm_exits(self) -> dict[str, Any]:
        """Exits: total, by VMX reason, how many the fastpath completed, and their time."""
        return {"total": sum(self.by_reason.values()), "by_reason": ranked(self.by_reason),
                "fastpath": self.fastpath, "time_ns": ns(self.cost_ps)}

    def msr_exits(self) -> dict[str, Any]:
        """MSR exits by kernel MSR name and direction, as seed 001's kvm_msr histogram
        (docs/sources.md)."""
        counts: Counter[str] = Counter()
        name = names_for().name
        for (write, msr), n in self.msrs.items():
            counts[f"{'msr_write' if write else 'msr_read'}, {name(msr)}"] += n
        return {"total": sum(counts.values()), "by_msr": ranked(counts)}

    def per_pmi(self, pmis: int) -> dict[str, float]:
        """Seed 001's per-PMI MSR ratios over the whole run (accesses / guest PMIs)."""
        by_msr = self.msr_exits()["by_msr"]
        names = names_for()
        out: dict[str, float] = {}
        for name, msr, direction in names.per_pmi:
            out[name] = round(by_msr.get(f"msr_{direction}, {msr}", 0) / pmis, 3)
        counter_writes = sum(n for key, n in by_msr.items()
                             if key.startswith("msr_write, ") and names.is_counter_name(key[11:]))
        out["counter_writes"] = round(counter_writes / pmis, 3)
        out["rdpmc"] = round(self.by_reason.get("RDPMC", 0) / pmis, 3)
        return out


class CallCounts:
    """Kernel-counter API calls by name, and the host time they took."""

    TOTALS: ClassVar[tuple[str, ...]] = ("by_api", "cost_ps")
    """Its fields, all sums (``vpmu.metrics.period.Totals``)."""

    def __init__(self) -> None:
        self.by_api: Counter[str] = Counter()
        self.cost_ps = 0

    def feed(self, c: PerfCall) -> None:
        """Count one call."""
        self.by_api[c.api] += 1
        self.cost_ps += c.cost_ps

    def perf_calls(self) -> dict[str, Any]:
        """Calls: total, by API, and their time."""
        return {"total": sum(self.by_api.values()), "by_api": ranked(self.by_api),
                "time_ns": ns(self.cost_ps)}


class PmiLatencies:
    """How many guest PMIs had each handler latency: exact percentiles need every value, and
    a handler's paths are few (seed-001: 61 distinct latencies in 2,280 PMIs under emulated,
    22 in 1,386 under mediated), so a count per value keeps them in little memory."""

    TOTALS: ClassVar[tuple[str, ...]] = ("by_latency",)
    """Its fields, all sums (``vpmu.metrics.period.Totals``)."""

    def __init__(self) -> None:
        self.by_latency: Counter[int] = Counter()
        """Latency (ps) -> PMIs."""

    def feed(self, p: GuestPmi) -> None:
        """Count one PMI's latency."""
        self.by_latency[p.latency_ps] += 1

    def guest_pmi(self, exits: ExitCounts) -> dict[str, Any]:
        """Guest PMIs handled, the handler latency distribution (delivery to last op) and the
        MSR accesses per PMI."""
        counts = sorted(self.by_latency.items())
        if not counts:
            return {"count": 0, "handler_latency_ns": None, "per_pmi": {}}
        n = sum(c for _, c in counts)
        stats = {"mean": ns(sum(v * c for v, c in counts) / n),
                 "p50": ns(percentile_of_counts(counts, 0.5)),
                 "p99": ns(percentile_of_counts(counts, 0.99)),
                 "max": ns(counts[-1][0]), "min": ns(counts[0][0])}
        return {"count": n, "handler_latency_ns": stats, "per_pmi": exits.per_pmi(n)}


class Switches:
    """The mediated PMU's context switches (``PmuContext``) and the partitioned PMU's
    (``PmuPartition``)."""

    TOTALS: ClassVar[tuple[str, ...]] = ("loads", "puts", "cost_ps", "in_exits_ps", "by_why")
    """Its fields, all sums (``vpmu.metrics.period.Totals``)."""

    def __init__(self) -> None:
        self.loads = self.puts = 0
        self.cost_ps = 0
        self.in_exits_ps = 0
        self.by_why: Counter[str] = Counter()

    def feed(self, s: PmuContext | PmuPartition) -> None:
        """Count one load or put."""
        self.loads += s.state == "guest"
        self.puts += s.state == "host"
        self.cost_ps += s.cost_ps
        if s.state == "host" and s.why in EXIT_PUTS:
            self.in_exits_ps += s.cost_ps
        self.by_why[s.why] += 1

    def pmu_switch(self) -> dict[str, Any]:
        """``switches`` (all), ``loads`` ("guest"), ``puts`` ("host"), ``time_ns`` (their
        summed cost), ``per_switch_ns`` (the mean cost of one load or put: what each
        transition costs instead of exits), ``in_exits_ns`` (the part spent by puts inside
        VM-exit handling, so exit time can be split without counting it twice) and
        ``by_why`` (cause -> count, most frequent first, ties by name)."""
        switches = sum(self.by_why.values())
        return {"switches": switches, "loads": self.loads, "puts": self.puts,
                "time_ns": ns(self.cost_ps),
                "per_switch_ns": ns(self.cost_ps / switches) if switches else None,
                "in_exits_ns": ns(self.in_exits_ps), "by_why": ranked(self.by_why)}
