"""The Arm CPU's MRS / MSR (``vpmu.hw.arm64.cpu``) and the arm64 bare-metal executor
(``vpmu.machine.arm64.bare``): a program written with ``Mrs`` / ``Msr`` counts its own loop,
EL0 is gated by PMUSERENR_EL0, and what is not a PMU register is UNDEFINED."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.arm64.caps import PMUVER_V3P1, ArmPmuCaps
from vpmu.arch.faults import Fault
from vpmu.arch.presets import CpuPreset
from vpmu.guest.port import Mrs, Msr, Rdmsr
from vpmu.hw.arm64.cpu import ArmCpu
from vpmu.hw.counting import RING_USER
from vpmu.machine.arm64.bare import execute
from vpmu.sim import Environment
from vpmu.workloads.streams import loop

CAPS = ArmPmuCaps(0x41, 0xD0C, PMUVER_V3P1, 6,
                  events=frozenset({arm_ev.SW_INCR, arm_ev.CPU_CYCLES,
                                    arm_ev.BY_NAME["INST_RETIRED"]}))
PRESET = CpuPreset("arm-test", "a test core", CAPS, 2000, 100, 4)  # type: ignore[arg-type]
INST = arm_ev.BY_NAME["INST_RETIRED"]


def run(program: Generator[Any, Any, Any]) -> tuple[Any, ArmCpu, list[int]]:
    """Run ``program``'s port operations (and ``loop`` streams) on one Arm CPU."""
    env = Environment()
    irqs: list[int] = []
    cpu = ArmCpu(PRESET, env, lambda intid, _: irqs.append(intid), {"mrs": 20, "msr": 30})
    out: list[Any] = []

    def proc() -> Generator[Any, Any, None]:
        send: Any = None
        while True:
            try:
                op = program.send(send)
            except StopIteration as stop:
                out.append(stop.value)
                return
            if hasattr(op, "counts"):       # a workload stream
                yield from cpu.execute(op)
                send = None
            elif op == "el0":
                cpu.set_cpl(RING_USER)
                send = None
            else:
                send = yield from execute(cpu, op)

    env.process(proc())
    env.run(10**12)
    return out[0], cpu, irqs


def test_a_program_counts_its_own_loop() -> None:
    """The enabling MSR lands after it retires and the reading MRS reads as it executes, so
    the count is the loop's instructions exactly."""
    def program() -> Generator[Any, Any, Any]:
        yield Msr("PMEVTYPER0_EL0", INST)
        yield Msr("PMCNTENSET_EL0", 1)
        yield Msr("PMCR_EL0", 1)
        yield loop(iterations=1000)
        return (yield Mrs("PMEVCNTR0_EL0"))
    value, _, _ = run(program())
    assert value == 10_000


def test_el0_needs_pmuserenr_and_unknown_registers_are_undefined() -> None:
    def program() -> Generator[Any, Any, Any]:
        yield Msr("PMCNTENSET_EL0", 1 << 31)
        yield Msr("PMCR_EL0", 1)
        yield "el0"
        denied = yield Mrs("PMCCNTR_EL0")
        no_such = yield Mrs("PMEVCNTR9_EL0")
        x86 = yield Rdmsr(0x38F)
        return denied, no_such, x86
    assert run(program())[0] == (Fault.UNDEF, Fault.UNDEF, Fault.UNDEF)

    def allowed() -> Generator[Any, Any, Any]:
        yield Msr("PMUSERENR_EL0", 1 << 2)         # CR: EL0 may read the cycle counter
        yield Msr("PMCNTENSET_EL0", 1 << 31)
        yield Msr("PMCR_EL0", 1)
        yield "el0"
        first = yield Mrs("PMCCNTR_EL0")
        second = yield Mrs("PMCCNTR_EL0")
        write = yield Msr("PMCCNTR_EL0", 0)
        return first, second, write
    (first, second, write), _, _ = run(allowed())
    assert isinstance(first, int) and isinstance(second, int) and second - first == 20
    assert write is Fault.UNDEF


def test_an_overflow_raises_the_pmu_ppi() -> None:
    def program() -> Generator[Any, Any, Any]:
        yield Msr("PMEVTYPER0_EL0", INST)
        yield Msr("PMEVCNTR0_EL0", 2**32 - 100)
        yield Msr("PMINTENSET_EL1", 1)
        yield Msr("PMCNTENSET_EL0", 1)
        yield Msr("PMCR_EL0", 1)
        yield loop(iterations=100)
        return (yield Mrs("PMOVSSET_EL0"))
    value, _, irqs = run(program())
    assert value == 1 and irqs == [23]


def test_an_interrupt_still_asserted_at_its_eoi_is_signalled_again() -> None:
    """The PPI is level-sensitive: a handler that clears only the overflow it read leaves the
    line up when another counter overflowed meanwhile, and the end of the interrupt signals
    it again (GICv3); once every bit is cleared the EOI signals nothing."""
    def program() -> Generator[Any, Any, Any]:
        for n in (0, 1):
            yield Msr(f"PMEVTYPER{n}_EL0", INST)
            yield Msr(f"PMEVCNTR{n}_EL0", 2**32 - 100)
        yield Msr("PMINTENSET_EL1", 0b11)
        yield Msr("PMCNTENSET_EL0", 0b11)
        yield Msr("PMCR_EL0", 1)
        yield loop(iterations=100)      # both counters overflow: one rising edge
        yield Msr("PMOVSCLR_EL0", 0b01)  # a handler that cleared counter 0's bit only
        return (yield Mrs("PMOVSSET_EL0"))
    value, cpu, irqs = run(program())
    assert value == 0b10 and irqs == [23]
    cpu.end_of_interrupt()
    assert irqs == [23, 23]
    pmu = cpu.arm_pmu
    pmu.write(pmu.by_name["PMOVSCLR_EL0"], 0b10)   # the next handler clears the other bit
    cpu.end_of_interrupt()
    assert irqs == [23, 23]
