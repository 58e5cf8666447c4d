"""The guest kernel's view of the cost tables: what its own code costs, in core cycles, and the
streams that spend it.

The guest's register accesses are port operations and cost what the machine charges for them
(on a VM: the exits). Everything else the kernel does (entering an NMI, perf's bookkeeping,
writing a sample) is executed as a kernel-mode ``Execute`` of a stream built here. The numbers
and their sources live in ``vpmu.costs`` (the ``guest`` part of a preset's table, derived from
the host's where the kernel path is the same); the names below are the x86 presets' table,
which every x86 preset shares, until the guest takes its preset's table.
"""

from __future__ import annotations

import functools
from fractions import Fraction

from vpmu.arch import events as ev
from vpmu.costs.x86.guest import GUEST_COSTS as _COSTS
from vpmu.workloads.streams import Stream

NMI_ENTRY_CYCLES = _COSTS.nmi_entry_cycles
NMI_EXIT_CYCLES = _COSTS.nmi_exit_cycles
IRQ_ENTRY_CYCLES = _COSTS.irq_entry_cycles
IRQ_EXIT_CYCLES = _COSTS.irq_exit_cycles
TICK_CYCLES = _COSTS.tick_cycles
PERF_TICK_EVENT_CYCLES = _COSTS.perf_tick_event_cycles
PERF_ROTATE_CYCLES = _COSTS.perf_rotate_cycles
PERF_SCHED_EVENT_CYCLES = _COSTS.perf_sched_event_cycles
PERF_OVERFLOW_CYCLES = _COSTS.perf_overflow_cycles
PERF_SAMPLE_OUTPUT_CYCLES = _COSTS.perf_sample_output_cycles
PERF_EVENT_OPEN_CYCLES = _COSTS.perf_event_open_cycles
PERF_EVENT_CLOSE_CYCLES = _COSTS.perf_event_close_cycles
SYSCALL_CYCLES = _COSTS.syscall_cycles
UDELAY_1US_CYCLES = _COSTS.udelay_1us_cycles
KERNEL_IPC: Fraction = _COSTS.kernel_ipc
KERNEL_BRANCHES_PER_INSN: Fraction = _COSTS.kernel_branches_per_insn


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
