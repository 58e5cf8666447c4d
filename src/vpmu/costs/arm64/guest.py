"""The guest part of the Arm presets' cost tables: the guest Linux kernel's own code on arm64.

As for x86, a guest kernel path that the host table prices is derived from the host's number
here; the rest are the guest's own estimates. One table for every Arm preset.
"""

from __future__ import annotations

from fractions import Fraction

from vpmu.costs.arm64 import host
from vpmu.costs.guest import GuestCosts


def _guest_table() -> GuestCosts:
    nmi_entry = host.NMI_ENTRY_EXIT_CYCLES * 2 // 3
    irq_entry = host.IRQ_ENTRY_EXIT_CYCLES * 3 // 5
    return GuestCosts(
        nmi_entry_cycles=nmi_entry,
        nmi_exit_cycles=host.NMI_ENTRY_EXIT_CYCLES - nmi_entry,
        irq_entry_cycles=irq_entry,
        irq_exit_cycles=host.IRQ_ENTRY_EXIT_CYCLES - irq_entry,
        tick_cycles=host.TICK_CYCLES,
        perf_tick_event_cycles=300,
        perf_rotate_cycles=host.PERF_ROTATE.cycles,
        perf_sched_event_cycles=300,
        perf_overflow_cycles=host.PERF_OVERFLOW_BOOKKEEPING_CYCLES,
        perf_sample_output_cycles=host.PERF_SAMPLE_OUTPUT_CYCLES,
        perf_event_open_cycles=host.PERF_CALL_WORK["create"].cycles,
        perf_event_close_cycles=host.PERF_CALL_WORK["release"].cycles,
        syscall_cycles=1_000,
        udelay_1us_cycles=1_000,
        kernel_ipc=Fraction(1),
        kernel_branches_per_insn=Fraction(1, 5),
    )


GUEST_COSTS = _guest_table()
"""The guest table of every Arm preset."""
