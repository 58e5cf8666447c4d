"""What the guest kernel's own code costs, in core cycles, and the streams that spend it.

The guest's register accesses are port operations and cost what the machine charges for them
(on a VM: the exits). Everything else the kernel does (entering an NMI, perf's bookkeeping,
writing a sample) is executed as a kernel-mode ``Execute`` of a stream built here. Every number
is an estimate for a modern server core with its reason; the host's cost table
(``vpmu.host.costs``) uses the same figures for the same kernel paths, and this module must not
import it (layers), so the shared values are restated.
"""

from __future__ import annotations

import functools
from fractions import Fraction

from vpmu.arch import events as ev
from vpmu.workloads.streams import Stream

NMI_ENTRY_CYCLES = 1_000
"""NMI vectoring, the entry code and nmi_handle's dispatch to perf_event_nmi_handler: two
thirds of the ~1,500-cycle NMI entry+exit the host table estimates (estimate)."""
NMI_EXIT_CYCLES = 500
"""The NMI exit path and IRET: the rest of the ~1,500 cycles (estimate)."""
IRQ_ENTRY_CYCLES = 600
"""Timer interrupt vectoring and entry code: ~60% of the host's ~1,000-cycle IRQ entry+exit
(estimate)."""
IRQ_EXIT_CYCLES = 400
"""EOI, irq_exit and IRET: the rest (estimate)."""
TICK_CYCLES = 2_000
"""The scheduler tick without perf's part (update_process_times, scheduler_tick, RCU): the
host table's tick estimate."""
PERF_TICK_EVENT_CYCLES = 300
"""perf_adjust_freq_unthr_context's software work per active event (list walk, period
arithmetic), MSR accesses excluded (estimate: a few hundred instructions)."""
PERF_ROTATE_CYCLES = 1_000
"""perf_rotate_context's fixed part without its MSR accesses: the host table's estimate."""
PERF_SCHED_EVENT_CYCLES = 300
"""event_sched_in/out and x86_pmu_add/del's software per event, MSR accesses excluded: the
host's ~600-cycle sched-in less its two WRMSRs (estimate)."""
PERF_OVERFLOW_CYCLES = 1_500
"""perf_event_overflow's bookkeeping per overflowed event (accounting, throttle check,
frequency adjust, wakeup check), MSR accesses excluded: the host table's estimate."""
PERF_SAMPLE_OUTPUT_CYCLES = 1_000
"""perf_event_output of one sample without a callchain into the ring buffer: the host table's
estimate."""
PERF_EVENT_OPEN_CYCLES = 15_000
"""perf_event_open: syscall, perf_event_alloc, x86_pmu_event_init and installing the event in
its context: the host table's ``create`` estimate."""
PERF_EVENT_CLOSE_CYCLES = 5_000
"""close() of an event: the host table's ``release`` estimate."""
SYSCALL_CYCLES = 1_000
"""A small syscall (read() of a count, the exec/exit paths' perf hooks), its own work included
(estimate)."""
UDELAY_1US_CYCLES = 2_400
"""udelay(1) in amd_pmu_wait_on_overflow: 1 µs of spinning at the presets' ~2.4 GHz
(estimate)."""

KERNEL_IPC = Fraction(1)
"""Instructions per cycle of kernel code paths (estimate: branchy, cache-cold code)."""
KERNEL_BRANCHES_PER_INSN = Fraction(1, 5)
"""Branches per kernel instruction (estimate, typical of kernel code)."""


@functools.lru_cache(maxsize=64)
def kernel_work(name: str, cycles: int) -> Stream:
    """``cycles`` of guest kernel code as a stream at CPL 0 (``user_fraction`` 0).

    Cached: the same stream object is reused, so the hardware model's per-stream totals cache
    stays warm on the PMI path.
    """
    insns = int(cycles * KERNEL_IPC)
    return Stream(f"kernel:{name}", {
        ev.CYCLES: cycles, ev.INSTRUCTIONS: insns,
        ev.BRANCHES: int(insns * KERNEL_BRANCHES_PER_INSN),
    }, Fraction(0))
