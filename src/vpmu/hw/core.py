"""What every architecture's CPU model does: execute workload streams in simulated time over
a lazily counting PMU, change privilege level, enter and leave guest mode, and spend the
latency of its own instructions (each retires as one instruction, unless it faults).

An architecture's CPU (``vpmu.hw.x86.cpu.X86Cpu``) adds its instructions (RDMSR/WRMSR/RDPMC,
or MRS/MSR on arm64), its interrupt controller and its PMU's register file.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

from mypy_extensions import mypyc_attr

from vpmu.arch import events as ev
from vpmu.arch.faults import Fault
from vpmu.arch.presets import CpuPreset
from vpmu.hw.counting import RING_KERNEL, Segment
from vpmu.hw.engine import CountingPmu
from vpmu.sim import Environment, Event, cycles_to_ps
from vpmu.workloads.streams import Stream

DeliverFn = Callable[[int, bool], None]
"""A CPU's PMU interrupt reaching its core: (vector, is_nmi)."""


@mypyc_attr(allow_interpreted_subclasses=True)  # X86Cpu is not compiled
class CpuCore:
    """A logical CPU's execution: streams, privilege, guest mode, instruction latencies.

    ``instructions`` names the architecture's instructions whose latency the CPU spends;
    ``instruction_cycles`` gives each (the preset's cost table).
    """

    def __init__(self, preset: CpuPreset, env: Environment, pmu: CountingPmu,
                 instructions: Sequence[str], instruction_cycles: Mapping[str, int]) -> None:
        missing = set(instructions) - set(instruction_cycles)
        if missing:
            raise ValueError(f"instruction_cycles must give {tuple(instructions)}, missing "
                             f"{missing!r}")
        self.preset = preset
        self.env = env
        self.pmu = pmu
        """The hardware PMU."""
        self.cpl = RING_KERNEL
        self.user_access = False
        """User mode may read counters directly (x86: CR4.PCE; arm64: PMUSERENR_EL0.EN)."""
        self._seq = 0
        self._op_streams = {name: _op_stream(name, instruction_cycles[name])
                            for name in instructions}
        self._fault_streams = {name: _op_stream(f"{name} (#GP)", instruction_cycles[name], 0)
                               for name in instructions}

    def set_cpl(self, cpl: int) -> None:
        """Change privilege level (an exception return; its own cost is not modelled)."""
        self.cpl = cpl
        self.pmu.set_cpl(cpl)

    def execute(self, stream: Stream) -> Generator[Event, Any, None]:
        """Run ``stream`` to completion; counters advance lazily meanwhile."""
        if self.elapse(stream.cycles):
            return
        duration = self.start(stream)
        if not self.env.skip_to(self.env.now_ps + duration):
            yield self.env.timeout(duration)
        self.stop()

    def duration_ps(self, cycles: int) -> int:
        """How long ``cycles`` of execution take on this CPU (at least 1 ps)."""
        return max(cycles_to_ps(cycles, self.preset.core_mhz), 1)

    def elapse(self, cycles: int) -> bool:
        """Execute ``cycles`` of work at once if nothing can observe its inside: the CPU
        executes nothing else and its PMU observes nothing (no counter counts, no branch is
        recorded: no segment is needed), and no event
        falls in its window (``Environment.skip_to``). False: nothing happened, execute it
        as a stream."""
        pmu = self.pmu
        return pmu.segment is None and not pmu.observed and \
            self.env.skip_to(self.env.now_ps + self.duration_ps(cycles))

    def start(self, stream: Stream) -> int:
        """Begin executing ``stream`` now; returns how long it takes to finish (ps)."""
        self._seq += 1
        duration = self.duration_ps(stream.cycles)
        self.pmu.set_segment(Segment(stream, self.env.now_ps, duration, self.cpl, self._seq))
        return duration

    def stop(self) -> Stream | None:
        """Stop executing (finished or interrupted); returns the work left, if any."""
        seg = self.pmu.segment
        self.pmu.set_segment(None)
        if seg is None:
            return None
        return seg.stream.remainder(self.env.now_ps - seg.start_ps, seg.duration_ps)

    def end_of_interrupt(self) -> None:
        """The PMU interrupt's handler has returned (its EOI). An edge-signalled interrupt
        (x86's LVTPC) needs nothing; a level-sensitive one still asserted is signalled again
        (the Arm CPU)."""

    def set_guest(self, guest: bool) -> None:
        """Enter or leave guest mode (VM-entry / VM-exit as the PMU sees it)."""
        self.pmu.set_guest(guest)

    def user_read(self, index: int) -> Generator[Event, Any, int | Fault]:
        """A counter read by index as a user-mode instruction executes it (x86: RDPMC with
        ECX = ``index``; arm64: MRS PMEVCNTR<n>_EL0): ``user_access`` decides at CPL > 0."""
        raise NotImplementedError(f"{type(self).__name__} has no user counter read")

    def user_read_origin(self, index: int) -> str:
        """The origin tag of the counter ``user_read(index)`` reads ("" if none or host)."""
        raise NotImplementedError(f"{type(self).__name__} has no user counter read")

    def _retire(self, op: str, *, faulted: bool = False) -> Generator[Event, Any, None]:
        """Spend the instruction's latency; it retires (counts as an instruction) unless it
        faulted: a fault restores the state from before the instruction (SDM Vol. 3A 6.5)."""
        yield from self.execute(self._fault_streams[op] if faulted else self._op_streams[op])


def _op_stream(name: str, cycles: int, instructions: int = 1) -> Stream:
    """The instruction itself as a stream: its retirement (or none) over its latency."""
    return Stream(name, {ev.CYCLES: cycles, ev.INSTRUCTIONS: instructions})
