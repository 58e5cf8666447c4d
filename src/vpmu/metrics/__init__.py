"""A run's metrics: accumulators its records stream into as they are emitted
(``RunMetrics``), and the same as pure functions from a list of records to the numbers a
results file reports."""

from vpmu.metrics.mediated import host_profiling, leaks, pollution
from vpmu.metrics.results import (
    guest_pmi,
    mode_time_ps,
    msr_exits,
    overhead,
    per_pmi_msr_ratios,
    perf_calls,
    pmu_switch,
    vm_exits,
)
from vpmu.metrics.stream import RunMetrics

__all__ = ["RunMetrics", "guest_pmi", "host_profiling", "leaks", "mode_time_ps", "msr_exits",
           "overhead", "per_pmi_msr_ratios", "perf_calls", "pmu_switch", "pollution",
           "vm_exits"]
