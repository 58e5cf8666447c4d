"""Pure functions from trace records to the numbers a results file reports."""

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

__all__ = ["guest_pmi", "host_profiling", "leaks", "mode_time_ps", "msr_exits", "overhead",
           "per_pmi_msr_ratios", "perf_calls", "pmu_switch", "pollution", "vm_exits"]
