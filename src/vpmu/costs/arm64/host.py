"""The host part of the Arm presets' cost tables: the PMU system-register accesses and the
kernel paths of Linux on arm64 with the arm_pmuv3 driver.

Every number here is an estimate (``sources.py`` gives each one's reasoning): no published
measurement of these paths on these cores was found. The kernel's own code on each path is
``vpmu.costs.kernel``'s, the same on every architecture; this module adds arm_pmuv3's
register accesses on the perf paths, priced with the preset's instruction latencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.costs import kernel
from vpmu.costs.host import CostTable
from vpmu.costs.path import KernelPath

MRS_CYCLES = 10
"""MRS of a PMU system register (a counter, PMOVSCLR_EL0, PMCR_EL0)."""
MSR_CYCLES = 20
"""MSR to a PMU system register; the ISB that orders it is part of the path's own code."""

_SYSREG_ACCESSES: Mapping[str, Mapping[str, int]] = MappingProxyType({
    "create": {}, "pause": {"msr": 2}, "period": {"mrs": 1, "msr": 4}, "enable": {"msr": 4},
    "disable": {"msr": 2}, "read_value": {"mrs": 1}, "release": {},
})
PERF_CALL_WORK: Mapping[str, KernelPath] = MappingProxyType({
    call: KernelPath(kernel.PERF_CALL_CODE[call], **acc)
    for call, acc in _SYSREG_ACCESSES.items()})
"""Each kernel-counter API call's work besides the lock and the sched-in/out it triggers."""
PERF_SCHED_IN_EVENT = KernelPath(kernel.PERF_SCHED_IN_CODE, msr=4)
PERF_SCHED_OUT_EVENT = KernelPath(kernel.PERF_SCHED_OUT_CODE, mrs=1, msr=2)
PERF_ROTATE = KernelPath(kernel.PERF_ROTATE_CODE, msr=2)
PERF_OVERFLOW_HANDLER = KernelPath(kernel.PERF_OVERFLOW_BOOKKEEPING_CYCLES, mrs=2, msr=4)
"""armv8pmu_handle_irq with one overflowed counter: read and write back PMOVSCLR_EL0, stop and
start (PMCR_EL0.E), read the counter and write its new period."""


def host_table() -> CostTable:
    """The Arm presets' host table (every Arm preset shares it)."""
    paths = kernel.PerfPaths(PERF_CALL_WORK, PERF_SCHED_IN_EVENT, PERF_SCHED_OUT_EVENT,
                             PERF_ROTATE, PERF_OVERFLOW_HANDLER)
    return kernel.host_table({"mrs": MRS_CYCLES, "msr": MSR_CYCLES}, paths,
                             clear_dirty_counter_cycles=MSR_CYCLES)
