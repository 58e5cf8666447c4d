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
from vpmu.costs.host import CostTable
from vpmu.costs.path import KernelPath

# -- bare-metal instructions with no per-part figure ----------------------------------------
RDMSR_CYCLES = 150
RDPMC_CYCLES = 30
LBR_MSR_CYCLES = 36
"""An LBR MSR access in a save or restore of the stack (fitted: see the sources)."""
CPUID_CYCLES = 100
MOV_CR_CYCLES = 100


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


# -- the perf context lock, fitted to is_paused ---------------------------------------------
def perf_lock_from_is_paused() -> int:
    """perf_ctx_lock_cycles fitted to the is_paused patch (sources.py, host.perf_ctx_lock_cycles).

    is_paused cut the guest PMI handler from 37,646.7 to 32,929.3 ns on ICX (4 events). Per
    PMI it skips, on already-paused events: the 4 repeat pauses when GLOBAL_CTRL is re-enabled,
    the read_value of each RDPMC exit, and the read_value + period of each counter write. The
    thread's histogram counts them: PMIs = LVT_PMI writes, RDPMC exits, PMC/FIXED_CTR writes.
    Calls on paused events do no work, so the whole saving is lock and call entry; that makes
    this an upper bound. Rounded to 100."""
    saved_ns = 37_646.7 - 32_929.3
    pmis, rdpmcs, counter_writes = 7315, 9710, 2922 + 2912 + 2904 + 976
    skipped_per_pmi = (4 * pmis + rdpmcs + 2 * counter_writes) / pmis       # ~8.0
    icx_mhz = PRESETS["intel-icx"].core_mhz
    return int(round(saved_ns * icx_mhz / 1000 / skipped_per_pmi, -2))     # ~1,356 -> 1,400


PERF_CTX_LOCK_CYCLES = perf_lock_from_is_paused()


# -- kernel paths: estimates, the same on every x86 preset ----------------------------------
CONTEXT_SWITCH_CYCLES = 3_000
TICK_CYCLES = 2_000
IRQ_ENTRY_EXIT_CYCLES = 1_000
NMI_ENTRY_EXIT_CYCLES = IRQ_ENTRY_EXIT_CYCLES * 3 // 2
IPI_SEND_CYCLES = 500
IPI_HANDLER_CYCLES = 500
IPI_LATENCY_NS = 500
PERF_SAMPLE_OUTPUT_CYCLES = 1_000
PERF_OVERFLOW_BOOKKEEPING_CYCLES = 1_500
"""perf_event_overflow's software work, besides the handler's MSR accesses."""

PERF_CALL_WORK: Mapping[str, KernelPath] = MappingProxyType({
    "create": KernelPath(15_000),
    "pause": KernelPath(500, wrmsr=2),
    "period": KernelPath(500, wrmsr=5, rdpmc=1),
    "enable": KernelPath(1_000, wrmsr=2),
    "disable": KernelPath(500, wrmsr=2),
    "read_value": KernelPath(300, rdpmc=1),
    "release": KernelPath(5_000),
})
"""Each kernel-counter API call's work besides the lock and the sched-in/out it triggers."""
PERF_SCHED_IN_EVENT = KernelPath(600, wrmsr=2)
PERF_SCHED_OUT_EVENT = KernelPath(400, wrmsr=1, rdpmc=1)
PERF_ROTATE = KernelPath(1_000, wrmsr=2)

PERF_OVERFLOW_HANDLER: Mapping[str, KernelPath] = MappingProxyType({
    "intel": KernelPath(PERF_OVERFLOW_BOOKKEEPING_CYCLES, wrmsr=5, rdmsr=2, rdpmc=1),
    "amd": KernelPath(PERF_OVERFLOW_BOOKKEEPING_CYCLES, wrmsr=5, rdmsr=1, rdpmc=1),
})
"""The host PMI handler with one overflowed counter, by vendor: Intel writes GLOBAL_CTRL
twice, OVF_CTRL, the counter and the LVTPC and reads GLOBAL_STATUS twice; AMD PerfMonV2 writes
GLOBAL_CTL twice, STATUS_CLR, the counter and the LVTPC and reads STATUS once; both read the
counter with RDPMC."""


def instruction_table(preset: str) -> dict[str, int]:
    """One x86 preset's instruction latencies: the shared figures and its part's WRMSR."""
    return {"rdmsr": RDMSR_CYCLES, "wrmsr": WRMSR_CYCLES[preset], "rdpmc": RDPMC_CYCLES,
            "cpuid": CPUID_CYCLES, "mov_cr": MOV_CR_CYCLES,
            "lbr_rdmsr": LBR_MSR_CYCLES, "lbr_wrmsr": LBR_MSR_CYCLES}


def host_table(preset: str) -> CostTable:
    """One x86 preset's host table: the shared paths, priced at this part's WRMSR cost."""
    ins = instruction_table(preset)
    return CostTable(
        instruction_cycles=ins,
        context_switch_cycles=CONTEXT_SWITCH_CYCLES, tick_cycles=TICK_CYCLES,
        irq_entry_exit_cycles=IRQ_ENTRY_EXIT_CYCLES, nmi_entry_exit_cycles=NMI_ENTRY_EXIT_CYCLES,
        ipi_send_cycles=IPI_SEND_CYCLES, ipi_handler_cycles=IPI_HANDLER_CYCLES,
        ipi_latency_ns=IPI_LATENCY_NS, perf_ctx_lock_cycles=PERF_CTX_LOCK_CYCLES,
        perf_call_work_cycles={k: p.price(ins) for k, p in PERF_CALL_WORK.items()},
        perf_sched_in_event_cycles=PERF_SCHED_IN_EVENT.price(ins),
        perf_sched_out_event_cycles=PERF_SCHED_OUT_EVENT.price(ins),
        perf_rotate_cycles=PERF_ROTATE.price(ins),
        perf_overflow_handler_cycles=PERF_OVERFLOW_HANDLER[PRESETS[preset].vendor].price(ins),
        perf_sample_output_cycles=PERF_SAMPLE_OUTPUT_CYCLES,
        perf_clear_dirty_counter_cycles=ins["wrmsr"],
    )
