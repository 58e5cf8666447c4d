"""The Linux kernel's own code on the paths the tables price, whatever the architecture: the
cycles of each path besides its PMU register accesses (which each architecture's table adds
at its own instruction latencies, ``vpmu.costs.path``), the perf context lock fitted once,
and the guest table derived from these paths.

Every architecture runs the same generic scheduler and perf code here, so each number is
held once; per-core IPC is not modelled (an in-order core would take more cycles for the
same path). The sources (``vpmu.costs.<arch>.sources``) say per architecture what the path
includes there (IDT vectoring and an x2APIC EOI on x86, the exception vector and the GIC's
acknowledge on arm64) and that its number is this estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from vpmu.arch.presets import PRESETS
from vpmu.costs.guest import GuestCosts
from vpmu.costs.host import CostTable
from vpmu.costs.path import KernelPath


def perf_lock_from_is_paused() -> int:
    """perf_ctx_lock_cycles fitted to the is_paused patch (host.perf_ctx_lock_cycles' source).

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
"""The perf context lock and call entry: generic perf code, fitted on x86."""

CONTEXT_SWITCH_CYCLES = 3_000
TICK_CYCLES = 2_000
IRQ_ENTRY_EXIT_CYCLES = 1_000
NMI_ENTRY_EXIT_CYCLES = IRQ_ENTRY_EXIT_CYCLES * 3 // 2
IPI_SEND_CYCLES = 500
IPI_HANDLER_CYCLES = 500
IPI_LATENCY_NS = 500
PERF_SAMPLE_OUTPUT_CYCLES = 1_000
PERF_OVERFLOW_BOOKKEEPING_CYCLES = 1_500
"""perf_event_overflow's software work, besides the handler's register accesses."""

PERF_CALL_CODE: Mapping[str, int] = MappingProxyType({
    "create": 15_000, "pause": 500, "period": 500, "enable": 1_000, "disable": 500,
    "read_value": 300, "release": 5_000,
})
"""Each kernel-counter API call's own code besides the lock, the sched-in/out it triggers
and its register accesses."""
PERF_SCHED_IN_CODE = 600
PERF_SCHED_OUT_CODE = 400
PERF_ROTATE_CODE = 1_000


def guest_table(udelay_1us_cycles: int) -> GuestCosts:
    """The guest kernel's table: a path the host table prices is the same path in the guest
    (its number derived from the host's code cycles here); the rest are the guest's own
    estimates. Only udelay(1) depends on the part (its clock)."""
    nmi_entry = NMI_ENTRY_EXIT_CYCLES * 2 // 3
    irq_entry = IRQ_ENTRY_EXIT_CYCLES * 3 // 5
    return GuestCosts(
        nmi_entry_cycles=nmi_entry,
        nmi_exit_cycles=NMI_ENTRY_EXIT_CYCLES - nmi_entry,
        irq_entry_cycles=irq_entry,
        irq_exit_cycles=IRQ_ENTRY_EXIT_CYCLES - irq_entry,
        tick_cycles=TICK_CYCLES,
        perf_tick_event_cycles=300,
        perf_rotate_cycles=PERF_ROTATE_CODE,
        perf_sched_event_cycles=300,
        perf_overflow_cycles=PERF_OVERFLOW_BOOKKEEPING_CYCLES,
        perf_sample_output_cycles=PERF_SAMPLE_OUTPUT_CYCLES,
        perf_event_open_cycles=PERF_CALL_CODE["create"],
        perf_event_close_cycles=PERF_CALL_CODE["release"],
        syscall_cycles=1_000,
        udelay_1us_cycles=udelay_1us_cycles,
        kernel_ipc=Fraction(1),
        kernel_branches_per_insn=Fraction(1, 5),
    )


@dataclass(frozen=True, slots=True)
class PerfPaths:
    """One architecture's perf paths: the kernel's code above plus that driver's register
    accesses on each."""

    call_work: Mapping[str, KernelPath]
    """Each kernel-counter API call (keys ``PERF_CALLS``)."""
    sched_in: KernelPath
    sched_out: KernelPath
    rotate: KernelPath
    overflow_handler: KernelPath
    """The host PMI handler with one overflowed counter."""


def host_table(instruction_cycles: Mapping[str, int], paths: PerfPaths,
               clear_dirty_counter_cycles: int) -> CostTable:
    """A host table: the kernel's shared paths, the perf paths priced at these instruction
    latencies."""
    ins = instruction_cycles
    return CostTable(
        instruction_cycles=ins,
        context_switch_cycles=CONTEXT_SWITCH_CYCLES, tick_cycles=TICK_CYCLES,
        irq_entry_exit_cycles=IRQ_ENTRY_EXIT_CYCLES, nmi_entry_exit_cycles=NMI_ENTRY_EXIT_CYCLES,
        ipi_send_cycles=IPI_SEND_CYCLES, ipi_handler_cycles=IPI_HANDLER_CYCLES,
        ipi_latency_ns=IPI_LATENCY_NS, perf_ctx_lock_cycles=PERF_CTX_LOCK_CYCLES,
        perf_call_work_cycles={k: p.price(ins) for k, p in paths.call_work.items()},
        perf_sched_in_event_cycles=paths.sched_in.price(ins),
        perf_sched_out_event_cycles=paths.sched_out.price(ins),
        perf_rotate_cycles=paths.rotate.price(ins),
        perf_overflow_handler_cycles=paths.overflow_handler.price(ins),
        perf_sample_output_cycles=PERF_SAMPLE_OUTPUT_CYCLES,
        perf_clear_dirty_counter_cycles=clear_dirty_counter_cycles,
    )
