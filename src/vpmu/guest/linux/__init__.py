"""The guest's Linux: the perf driver per vendor, the perf core, and the perf tools.

Everything here runs inside the guest and reaches the PMU only through port operations, so
the same kernel runs on bare metal and under every design, and its register traffic (seed
001's MSR histogram, docs/sources.md) is whatever its code does:

- ``boot``: x86 PMU discovery (CPUID, PERF_CAPABILITIES, check_hw_exists).
- ``x86``, ``pmu_intel``, ``pmu_amd``: arch/x86/events (assignment, update/set_period,
  enable/disable, the PMI handlers).
- ``arm_probe``, ``arm_pmuv3``: arm64 PMU discovery and reset, and drivers/perf/arm_pmuv3.c
  with drivers/perf/arm_pmu.c (the same operations, the IRQ handler).
- ``pmu``: what the perf core needs of a driver (``PerfPmu``, struct pmu).
- ``clock``: perf_clock on each architecture (RDTSC, CNTVCT_EL0).
- ``perf``: kernel/events/core.c (scheduling, multiplexing, frequency mode, throttling).
- ``tools``: ``PerfRecord`` and ``PerfStat`` and their results.
- ``kernel``: ``LinuxGuest``, the GuestOs that ties them together.
- ``costs``: the guest kernel's own code paths in cycles.
"""

from vpmu.guest.linux.event import Sample
from vpmu.guest.linux.kernel import LinuxGuest
from vpmu.guest.linux.tools import EventResult, PerfRecord, PerfStat, RunResult

__all__ = ["EventResult", "LinuxGuest", "PerfRecord", "PerfStat", "RunResult", "Sample"]
