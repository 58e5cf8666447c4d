"""One x86 logical CPU as guest-visible instructions see it: privilege, CR4.PCE, CPUID, the
PMU and the LVTPC, and the execution of workload streams in simulated time.

Instruction semantics that are not the PMU's live here: RDMSR/WRMSR are privileged (#GP at
CPL > 0); RDPMC at CPL > 0 needs CR4.PCE (SDM RDPMC: #GP if CR4.PCE = 0 and CPL > 0 in
protected mode). A write retires as one instruction *before* its effect lands, which is why a
WRMSR that enables a counter is not counted and one that disables it is (conformance_suites.md
5.D); a read samples its value as it executes, before it retires; an instruction that faults
takes its latency but does not retire.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from vpmu.arch.faults import Fault
from vpmu.arch.presets import CpuPreset
from vpmu.arch.x86 import caps as x86caps
from vpmu.arch.x86 import events as ev
from vpmu.arch.x86.msrs import X2APIC_LVTPC
from vpmu.hw.counting import RING_KERNEL, Segment
from vpmu.hw.x86.lapic import DeliverFn, Lapic
from vpmu.hw.x86.pmu import X86Pmu
from vpmu.sim import Environment, Event, cycles_to_ps
from vpmu.workloads.streams import Stream

INSTRUCTIONS = ("rdmsr", "wrmsr", "rdpmc", "cpuid", "mov_cr")
"""The instructions whose latency the CPU needs, by name (the cost table's ``<name>_cycles``)."""


class X86Cpu:
    """A logical CPU: executes streams and instructions, owns its PMU and LVTPC.

    ``instruction_cycles`` gives each instruction's latency (the preset's cost table).
    """

    def __init__(self, preset: CpuPreset, env: Environment, deliver: DeliverFn,
                 instruction_cycles: Mapping[str, int]) -> None:
        missing = set(INSTRUCTIONS) - set(instruction_cycles)
        if missing:
            raise ValueError(f"instruction_cycles must give {INSTRUCTIONS}, missing {missing!r}")
        self.preset = preset
        self.env = env
        self.lapic = Lapic(mask_on_pmi=preset.caps.is_intel, deliver=deliver)
        """The local APIC's LVTPC."""
        self.pmu = X86Pmu(preset, env, on_pmi=self.lapic.pmi)
        """The hardware PMU."""
        self.cpl = RING_KERNEL
        self.cr4_pce = False
        self._seq = 0
        self._op_streams = {name: _op_stream(name, instruction_cycles[name])
                            for name in INSTRUCTIONS}
        self._fault_streams = {name: _op_stream(f"{name} (#GP)", instruction_cycles[name], 0)
                               for name in INSTRUCTIONS}

    def __repr__(self) -> str:
        return f"X86Cpu(preset={self.preset.name!r})"

    # -- instructions (each a generator: it takes simulated time) -------------------------
    def rdmsr(self, addr: int) -> Generator[Event, Any, int | Fault]:
        """RDMSR: privileged; the LVTPC is the APIC's, everything else the PMU's. The value is
        read as the instruction executes, so it does not include the RDMSR's own retirement."""
        if self.cpl != RING_KERNEL or (addr != X2APIC_LVTPC and addr not in self.pmu.specs):
            yield from self._retire("rdmsr", faulted=True)
            return Fault.GP
        value = self.lapic.rdmsr() if addr == X2APIC_LVTPC else self.pmu.rdmsr(addr)
        yield from self._retire("rdmsr")
        return value

    def wrmsr(self, addr: int, value: int) -> Generator[Event, Any, Fault | None]:
        """WRMSR: privileged; the write lands after the instruction retires (so the WRMSR that
        disables a counter is counted and the one that enables it is not)."""
        lvtpc = addr == X2APIC_LVTPC
        faults = self.cpl != RING_KERNEL or (
            self.lapic.wrmsr_faults(value) if lvtpc else self.pmu.wrmsr_faults(addr, value))
        yield from self._retire("wrmsr", faulted=faults)
        if faults:
            return Fault.GP
        return self.lapic.wrmsr(value) if lvtpc else self.pmu.wrmsr(addr, value)

    def rdpmc(self, ecx: int) -> Generator[Event, Any, int | Fault]:
        """RDPMC: the CR4.PCE/CPL rule, then the PMU's index decoding; read as it executes."""
        value = self.pmu.rdpmc(ecx) if self.cpl == RING_KERNEL or self.cr4_pce else Fault.GP
        yield from self._retire("rdpmc", faulted=isinstance(value, Fault))
        return value

    def cpuid(self, leaf: int, subleaf: int) -> Generator[Event, Any, tuple[int, int, int, int]]:
        """CPUID: the PMU-relevant leaves of the preset."""
        yield from self._retire("cpuid")
        return x86caps.cpuid(self.preset.caps, leaf, subleaf)

    def set_cr4_pce(self, enabled: bool) -> Generator[Event, Any, Fault | None]:
        """MOV to CR4 (PCE only): privileged."""
        faults = self.cpl != RING_KERNEL
        yield from self._retire("mov_cr", faulted=faults)
        if faults:
            return Fault.GP
        self.cr4_pce = enabled
        return None

    def set_cpl(self, cpl: int) -> None:
        """Change privilege level (an IRET/SYSRET; its own cost is not modelled)."""
        self.cpl = cpl
        self.pmu.set_cpl(cpl)

    def execute(self, stream: Stream) -> Generator[Event, Any, None]:
        """Run ``stream`` to completion; counters advance lazily meanwhile."""
        yield self.env.timeout(self.start(stream))
        self.stop()

    def start(self, stream: Stream) -> int:
        """Begin executing ``stream`` now; returns how long it takes to finish (ps)."""
        self._seq += 1
        duration = max(cycles_to_ps(stream.cycles, self.preset.core_mhz), 1)
        self.pmu.set_segment(Segment(stream, self.env.now_ps, duration, self.cpl, self._seq))
        return duration

    def stop(self) -> Stream | None:
        """Stop executing (finished or interrupted); returns the work left, if any."""
        seg = self.pmu.segment
        self.pmu.set_segment(None)
        if seg is None:
            return None
        return seg.stream.remainder(self.env.now_ps - seg.start_ps, seg.duration_ps)

    def set_guest(self, guest: bool) -> None:
        """Enter or leave guest mode (VM-entry / VM-exit as the PMU sees it)."""
        self.pmu.set_guest(guest)

    def _retire(self, op: str, *, faulted: bool = False) -> Generator[Event, Any, None]:
        """Spend the instruction's latency; it retires (counts as an instruction) unless it
        faulted: a fault restores the state from before the instruction (SDM Vol. 3A 6.5)."""
        yield from self.execute(self._fault_streams[op] if faulted else self._op_streams[op])


def _op_stream(name: str, cycles: int, instructions: int = 1) -> Stream:
    """The instruction itself as a stream: its retirement (or none) over its latency."""
    return Stream(name, {ev.CYCLES: cycles, ev.INSTRUCTIONS: instructions})
