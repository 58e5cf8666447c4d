"""The host part of the x86 presets' cost tables: figures, the two fits, and the kernel paths.

Each number is named once here; ``sources.py`` says where it comes from. Kernel paths are
shared by every x86 preset (the same kernel code; turbo and per-part IPC are not modelled).
Only WRMSR has per-part figures (EMR and Turin); every path that contains MSR accesses is
priced with its preset's instruction costs, so those differ between presets too.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.arch.presets import PRESETS
from vpmu.costs import kernel
from vpmu.costs.host import CostTable
from vpmu.costs.path import KernelPath

# -- bare-metal instructions with no per-part figure ----------------------------------------
RDMSR_CYCLES = 150
RDPMC_CYCLES = 30
LBR_MSR_CYCLES = 36
"""An LBR MSR access in a save or restore of the stack (fitted: see the sources)."""
MOV_CR_CYCLES = 100

# -- bare CPUID: the per-part figures (leaf 0xD sub-leaves, 1201f226c863) and the estimate ----
CPUID_SUBLEAF_0XD: Mapping[str, tuple[int, ...]] = MappingProxyType({
    "intel-skl": (348, 400, 276, 236),
    "intel-emr": (1138, 1362, 1068, 910, 914, 1350, 734, 766, 732, 718, 734, 1700, 1126, 898,
                  716, 748, 776),
})
"""Bare-metal CPUID.0xD.n latencies in cycles, SKX sub-leaves 2-5 and EMR 2-18 (sources.py)."""
CPUID_ESTIMATE_CYCLES = 100
"""CPUID on a part with no published figure (sources.py)."""


def cpuid_cycles(preset: str) -> int:
    """A bare CPUID's latency: the mean of the part's published sub-leaves, else the
    estimate."""
    figures = CPUID_SUBLEAF_0XD.get(preset)
    return round(sum(figures) / len(figures)) if figures else CPUID_ESTIMATE_CYCLES


# -- the per-part WRMSR figures ---------------------------------------------------------------
def wrmsr_from_elision(before_cycles: int, after_cycles: int, preset: str) -> int:
    """WRMSR cost from a CPUID-exit round trip before/after eliding the PMC WRMSRs at mediated
    load. The elision swaps each WRMSR for a RDPMC; assuming the microbenchmark's guest leaves
    every exposed counter equal, all are elided: saved = counters x (WRMSR - RDPMC). Fewer
    elided writes would make a WRMSR dearer. Rounded to 10, as the figures themselves are."""
    counters = PRESETS[preset].caps.counter_mask.bit_count()
    return int(round((before_cycles - after_cycles) / counters + RDPMC_CYCLES, -1))


WRMSR_EMR = wrmsr_from_elision(4000, 3000, "intel-emr")     # 1000/12 + 30 -> 110
WRMSR_TURIN = wrmsr_from_elision(6200, 5300, "amd-zen5")    # 900/6 + 30 -> 180

WRMSR_CYCLES: Mapping[str, int] = MappingProxyType({
    "intel-skl": WRMSR_EMR, "intel-icx": WRMSR_EMR, "intel-spr": WRMSR_EMR,
    "intel-emr": WRMSR_EMR, "amd-zen4": WRMSR_TURIN, "amd-zen5": WRMSR_TURIN,
})
"""Each x86 preset's WRMSR cost: its vendor's measured part's (sources.py says why)."""


# -- kernel paths: the kernel's own code (vpmu.costs.kernel) and the MSR accesses of each
_MSR_ACCESSES: Mapping[str, Mapping[str, int]] = MappingProxyType({
    "create": {}, "pause": {"wrmsr": 2}, "period": {"wrmsr": 5, "rdpmc": 1},
    "enable": {"wrmsr": 2}, "disable": {"wrmsr": 2}, "read_value": {"rdpmc": 1},
    "release": {},
})
PERF_CALL_WORK: Mapping[str, KernelPath] = MappingProxyType({
    call: KernelPath(kernel.PERF_CALL_CODE[call], **acc) for call, acc in _MSR_ACCESSES.items()})
"""Each kernel-counter API call's work besides the lock and the sched-in/out it triggers."""
PERF_SCHED_IN_EVENT = KernelPath(kernel.PERF_SCHED_IN_CODE, wrmsr=2)
PERF_SCHED_OUT_EVENT = KernelPath(kernel.PERF_SCHED_OUT_CODE, wrmsr=1, rdpmc=1)
PERF_ROTATE = KernelPath(kernel.PERF_ROTATE_CODE, wrmsr=2)

PERF_OVERFLOW_HANDLER: Mapping[str, KernelPath] = MappingProxyType({
    "intel": KernelPath(kernel.PERF_OVERFLOW_BOOKKEEPING_CYCLES, wrmsr=5, rdmsr=2, rdpmc=1),
    "amd": KernelPath(kernel.PERF_OVERFLOW_BOOKKEEPING_CYCLES, wrmsr=5, rdmsr=1, rdpmc=1),
})
"""The host PMI handler with one overflowed counter, by vendor: Intel writes GLOBAL_CTRL
twice, OVF_CTRL, the counter and the LVTPC and reads GLOBAL_STATUS twice; AMD PerfMonV2 writes
GLOBAL_CTL twice, STATUS_CLR, the counter and the LVTPC and reads STATUS once; both read the
counter with RDPMC."""


def instruction_table(preset: str) -> dict[str, int]:
    """One x86 preset's instruction latencies: the shared figures and its part's WRMSR."""
    return {"rdmsr": RDMSR_CYCLES, "wrmsr": WRMSR_CYCLES[preset], "rdpmc": RDPMC_CYCLES,
            "cpuid": cpuid_cycles(preset), "mov_cr": MOV_CR_CYCLES,
            "lbr_rdmsr": LBR_MSR_CYCLES, "lbr_wrmsr": LBR_MSR_CYCLES}


def host_table(preset: str) -> CostTable:
    """One x86 preset's host table: the shared paths, priced at this part's WRMSR cost."""
    ins = instruction_table(preset)
    paths = kernel.PerfPaths(PERF_CALL_WORK, PERF_SCHED_IN_EVENT, PERF_SCHED_OUT_EVENT,
                             PERF_ROTATE, PERF_OVERFLOW_HANDLER[PRESETS[preset].vendor])
    return kernel.host_table(ins, paths, clear_dirty_counter_cycles=ins["wrmsr"])
