"""The results' metric sections (docs/guide/README.md, "Metrics") as pure functions of a list
of records: each feeds the records to ``vpmu.metrics.stream.RunMetrics`` (the accumulators a
run streams its records into) and reads its section, so a section is computed in one place.

Every function returns plain JSON data with a fixed key order, so the same run gives
byte-identical JSON. Times are reported in ns (floats rounded to 0.1 ns) and counts as ints.
Records need not be in time order (they are fed stably sorted by ``t_ps``), but must not be
later than ``end_ps`` where one is given (as a run's are not).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from vpmu.metrics.counts import EXIT_PUTS
from vpmu.metrics.stream import RunMetrics
from vpmu.metrics.units import ns, percentile
from vpmu.trace import Record

__all__ = ["EXIT_PUTS", "guest_pmi", "mode_time_ps", "msr_exits", "ns", "overhead",
           "per_pmi_msr_ratios", "percentile", "perf_calls", "pmu_switch", "vm_exits"]


def ended(records: Iterable[Record], end_ps: int) -> RunMetrics:
    """The metrics of ``records`` for a run that ended at ``end_ps``."""
    metrics = RunMetrics.of(records)
    metrics.finish(end_ps)
    return metrics


def vm_exits(records: Iterable[Record]) -> dict[str, Any]:
    """Exits: total, by VMX reason, how many the fastpath completed, and their time."""
    return RunMetrics.of(records).exits.vm_exits()


def msr_exits(records: Iterable[Record]) -> dict[str, Any]:
    """MSR exits by kernel MSR name and direction, as seed 001's kvm_msr histogram
    (docs/sources.md)."""
    return RunMetrics.of(records).exits.msr_exits()


def perf_calls(records: Iterable[Record]) -> dict[str, Any]:
    """Kernel-counter API calls by name, and the host time they took."""
    return RunMetrics.of(records).calls.perf_calls()


def guest_pmi(records: Iterable[Record]) -> dict[str, Any]:
    """Guest PMIs handled, and the handler latency distribution (delivery to last op)."""
    metrics = RunMetrics.of(records)
    return metrics.pmis.guest_pmi(metrics.exits)


def per_pmi_msr_ratios(records: Iterable[Record], pmis: int) -> dict[str, float]:
    """Seed 001's per-PMI MSR ratios over the whole run (accesses / guest PMIs)."""
    return RunMetrics.of(records).exits.per_pmi(pmis)


def mode_time_ps(records: Iterable[Record], end_ps: int) -> dict[str, dict[str, int]]:
    """Time each task spent in each mode, from the CPUs' mode changes (task -> mode -> ps)."""
    return ended(records, end_ps).mode_time.ps


def overhead(records: Iterable[Record], end_ps: int, vcpu_tasks: Sequence[str]
             ) -> dict[str, Any]:
    """What virtualizing the PMU cost the vCPUs (``RunMetrics.overhead``)."""
    return ended(records, end_ps).overhead(vcpu_tasks)


def pmu_switch(records: Iterable[Record]) -> dict[str, Any]:
    """The mediated PMU context switches (``vpmu.metrics.counts.Switches.pmu_switch``)."""
    return RunMetrics.of(records).switches.pmu_switch()
