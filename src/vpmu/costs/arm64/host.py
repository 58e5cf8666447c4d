"""The host part of the Arm presets' cost tables: the PMU system-register accesses and the
kernel paths of Linux on arm64 with the arm_pmuv3 driver.

Every number here is an estimate (``sources.py`` gives each one's reasoning): no published
measurement of these paths on these cores was found. Kernel paths are the same code on every
Arm preset, so they share the cycle counts (per-core IPC is not modelled: an in-order A53
would take more cycles than an N1 for the same path, which this table does not say); the
register accesses in them are priced with the preset's instruction latencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.costs.host import CostTable
from vpmu.costs.path import KernelPath

MRS_CYCLES = 10
"""MRS of a PMU system register (a counter, PMOVSCLR_EL0, PMCR_EL0)."""
MSR_CYCLES = 20
"""MSR to a PMU system register; the ISB that orders it is part of the path's own code."""

CONTEXT_SWITCH_CYCLES = 3_000
TICK_CYCLES = 2_000
IRQ_ENTRY_EXIT_CYCLES = 1_000
NMI_ENTRY_EXIT_CYCLES = IRQ_ENTRY_EXIT_CYCLES * 3 // 2
IPI_SEND_CYCLES = 500
IPI_HANDLER_CYCLES = 500
IPI_LATENCY_NS = 500
PERF_CTX_LOCK_CYCLES = 1_400
PERF_SAMPLE_OUTPUT_CYCLES = 1_000
PERF_OVERFLOW_BOOKKEEPING_CYCLES = 1_500

PERF_CALL_WORK: Mapping[str, KernelPath] = MappingProxyType({
    "create": KernelPath(15_000),
    "pause": KernelPath(500, msr=2),
    "period": KernelPath(500, mrs=1, msr=4),
    "enable": KernelPath(1_000, msr=4),
    "disable": KernelPath(500, msr=2),
    "read_value": KernelPath(300, mrs=1),
    "release": KernelPath(5_000),
})
"""Each kernel-counter API call's work besides the lock and the sched-in/out it triggers."""
PERF_SCHED_IN_EVENT = KernelPath(600, msr=4)
PERF_SCHED_OUT_EVENT = KernelPath(400, mrs=1, msr=2)
PERF_ROTATE = KernelPath(1_000, msr=2)
PERF_OVERFLOW_HANDLER = KernelPath(PERF_OVERFLOW_BOOKKEEPING_CYCLES, mrs=2, msr=4)
"""armv8pmu_handle_irq with one overflowed counter: read and write back PMOVSCLR_EL0, stop and
start (PMCR_EL0.E), read the counter and write its new period."""


def host_table() -> CostTable:
    """The Arm presets' host table (every Arm preset shares it)."""
    ins = {"mrs": MRS_CYCLES, "msr": MSR_CYCLES}
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
        perf_overflow_handler_cycles=PERF_OVERFLOW_HANDLER.price(ins),
        perf_sample_output_cycles=PERF_SAMPLE_OUTPUT_CYCLES,
        perf_clear_dirty_counter_cycles=MSR_CYCLES,
    )
