"""What the guest kernel's own code costs on one CPU preset: the ``guest`` part of a preset's
cost table.

The guest's register accesses are port operations and cost what the machine charges for them
(on a VM: the exits). Everything else its kernel does (entering an NMI, perf's bookkeeping,
writing a sample) runs as kernel-mode execution of these many cycles. Where the guest runs a
kernel path the host table prices, its number is derived from the host's, not restated.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class GuestCosts:
    """The guest Linux kernel's own work on one preset, in core cycles, and the shape of its
    code (instructions and branches per cycle)."""

    nmi_entry_cycles: int
    """NMI vectoring, the entry code and nmi_handle's dispatch to perf_event_nmi_handler."""
    nmi_exit_cycles: int
    """The NMI exit path and IRET."""
    irq_entry_cycles: int
    """Timer interrupt vectoring and entry code."""
    irq_exit_cycles: int
    """EOI, irq_exit and IRET."""
    tick_cycles: int
    """The scheduler tick without perf's part (update_process_times, scheduler_tick, RCU)."""
    perf_tick_event_cycles: int
    """perf_adjust_freq_unthr_context's software work per active event, MSR accesses
    excluded."""
    perf_rotate_cycles: int
    """perf_rotate_context's fixed part without its MSR accesses."""
    perf_sched_event_cycles: int
    """event_sched_in/out and x86_pmu_add/del's software per event, MSR accesses excluded."""
    perf_overflow_cycles: int
    """perf_event_overflow's bookkeeping per overflowed event (accounting, throttle check,
    frequency adjust, wakeup check), MSR accesses excluded."""
    perf_sample_output_cycles: int
    """perf_event_output of one sample without a callchain into the ring buffer."""
    perf_event_open_cycles: int
    """perf_event_open: syscall, perf_event_alloc, event_init and installing the event."""
    perf_event_close_cycles: int
    """close() of an event."""
    syscall_cycles: int
    """A small syscall (read() of a count, the exec/exit paths' perf hooks), its own work
    included."""
    udelay_1us_cycles: int
    """udelay(1) in amd_pmu_wait_on_overflow."""
    kernel_ipc: Fraction
    """Instructions per cycle of kernel code paths."""
    kernel_branches_per_insn: Fraction
    """Branches per kernel instruction."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind = Fraction if f.type == "Fraction" else int    # annotations are strings here
            if type(value) is not kind or value <= 0:
                raise ValueError(f"{f.name} must be a positive {kind.__name__}, not {value!r}")
