"""The guest kernel's view of the cost tables: what its own code costs, in core cycles, and the
streams that spend it.

The guest's register accesses are port operations and cost what the machine charges for them
(on a VM: the exits). Everything else the kernel does (entering an NMI, perf's bookkeeping,
writing a sample) is executed as a kernel-mode ``Execute`` of a stream built here. The numbers
and their sources live in ``vpmu.costs`` (the ``guest`` part of a preset's table, derived from
the host's where the kernel path is the same). Every preset of one architecture shares one
guest table, so the kernel takes the table of the architecture it booted on
(``KernelCosts.for_arch``); the module-level names below are the x86 table's.
"""

from __future__ import annotations

import functools
from fractions import Fraction

from vpmu.arch import events as ev
from vpmu.costs.arm64.guest import GUEST_COSTS as _ARM64_COSTS
from vpmu.costs.guest import GuestCosts
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


class KernelCosts:
    """One architecture's guest table and the kernel-work streams built from it (cached per
    table, as ``kernel_work`` caches the x86 ones)."""

    def __init__(self, table: GuestCosts) -> None:
        self.table = table
        self._streams: dict[tuple[str, int], Stream] = {}

    def __repr__(self) -> str:
        return f"KernelCosts({self.table!r})"

    @staticmethod
    def for_arch(arch: str) -> KernelCosts:
        """The guest table of ``arch`` ("x86", "arm64")."""
        found = _BY_ARCH.get(arch)
        if found is None:
            raise ValueError(f"arch must be one of {sorted(_BY_ARCH)}, not {arch!r}")
        return found

    def work(self, name: str, cycles: int) -> Stream:
        """``cycles`` of kernel code at CPL 0 with this table's IPC and branch mix."""
        if self.table is _COSTS:
            return kernel_work(name, cycles)  # the same stream objects as before
        stream = self._streams.get((name, cycles))
        if stream is None:
            t = self.table
            insns = int(cycles * t.kernel_ipc)
            stream = Stream(f"kernel:{name}", {
                ev.CYCLES: cycles, ev.INSTRUCTIONS: insns,
                ev.BRANCHES: int(insns * t.kernel_branches_per_insn),
            }, Fraction(0))
            if len(self._streams) < 64:
                self._streams[(name, cycles)] = stream
        return stream


_BY_ARCH = {"x86": KernelCosts(_COSTS), "arm64": KernelCosts(_ARM64_COSTS)}
