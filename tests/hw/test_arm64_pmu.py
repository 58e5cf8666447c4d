"""The Arm PMUv3 hardware (``vpmu.hw.arm64.pmu``) on the lazy-counting engine: counting and
filters, 32/64-bit overflow under PMCR_EL0.LC / LP, CHAIN pairs, SW_INCR, the PMCR_EL0.P / .C
resets, the PMXEV* windows, and the level-sensitive overflow interrupt; with a Hypothesis
check of counter wrap against a reference count."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from vpmu.arch import events as ev
from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.arm64 import sysregs as sr
from vpmu.arch.arm64.caps import PMUVER_V3P1, PMUVER_V3P5, ArmPmuCaps
from vpmu.arch.faults import Fault
from vpmu.arch.presets import CpuPreset
from vpmu.hw.arm64.pmu import ArmPmu
from vpmu.hw.counting import RING_KERNEL, RING_USER, Segment
from vpmu.sim import Environment
from vpmu.workloads.streams import Stream

E, P, C, LC, LP = 1, 2, 4, 1 << 6, 1 << 7
CYC = 1 << 31
U_BIT, P_BIT = 1 << 30, 1 << 31
EVENTS = frozenset({arm_ev.SW_INCR, arm_ev.CPU_CYCLES, arm_ev.CHAIN,
                    arm_ev.BY_NAME["INST_RETIRED"], arm_ev.BY_NAME["BR_RETIRED"]})
INST = arm_ev.BY_NAME["INST_RETIRED"]
SEQ = itertools.count()


def make(pmuver: int = PMUVER_V3P1, n: int = 6) -> tuple[Environment, ArmPmu, list[int]]:
    caps = ArmPmuCaps(0x41, 0xD0C, pmuver, n, events=EVENTS)
    preset = CpuPreset("arm-test", "a test core", caps, 2000, 100, 4)  # type: ignore[arg-type]
    env = Environment()
    irqs: list[int] = []
    pmu = ArmPmu(preset, env, lambda: irqs.append(env.now_ps))
    return env, pmu, irqs


def run(env: Environment, pmu: ArmPmu, instructions: int, *, cycles: int | None = None,
        cpl: int = RING_KERNEL) -> None:
    """Execute a stream of ``instructions`` (and as many cycles unless given) to its end."""
    stream = Stream("s", {ev.CYCLES: cycles or instructions, ev.INSTRUCTIONS: instructions,
                          ev.BRANCHES: instructions // 10})
    duration = 1_000_000
    pmu.set_cpl(cpl)
    pmu.set_segment(Segment(stream, env.now_ps, duration, cpl, next(SEQ)))
    env.run(env.now_ps + duration)
    pmu.sync()
    pmu.set_segment(None)


def read(pmu: ArmPmu, addr: int) -> int:
    value = pmu.mrs(addr)
    assert isinstance(value, int)
    return value


def test_an_enabled_counter_counts_its_event_and_the_cycle_counter_cycles() -> None:
    env, pmu, _ = make()
    pmu.msr(sr.pmevtyper(0), INST)
    pmu.msr(sr.PMCNTENSET_EL0, 1 | CYC)
    run(env, pmu, 1000)
    assert read(pmu, sr.pmevcntr(0)) == 0 and read(pmu, sr.PMCCNTR_EL0) == 0  # PMCR.E clear
    pmu.msr(sr.PMCR_EL0, E)
    run(env, pmu, 1000, cycles=2500)
    assert read(pmu, sr.pmevcntr(0)) == 1000 and read(pmu, sr.PMCCNTR_EL0) == 2500


def test_filters_select_exception_levels() -> None:
    """U excludes EL0, P excludes EL1 (NSU/NSK equal to them count again)."""
    env, pmu, _ = make()
    pmu.msr(sr.PMCR_EL0, E)
    pmu.msr(sr.pmevtyper(0), INST | U_BIT)         # EL1 only
    pmu.msr(sr.pmevtyper(1), INST | P_BIT)         # EL0 only
    pmu.msr(sr.pmevtyper(2), INST | U_BIT | 1 << 28)  # U == NSU: EL0 counts again
    pmu.msr(sr.PMCNTENSET_EL0, 0b111)
    run(env, pmu, 300, cpl=RING_USER)
    run(env, pmu, 500, cpl=RING_KERNEL)
    assert [read(pmu, sr.pmevcntr(i)) for i in range(3)] == [500, 300, 800]


def test_32_bit_overflow_sets_pmovs_and_raises_a_level_interrupt() -> None:
    env, pmu, irqs = make()
    pmu.msr(sr.pmevtyper(0), INST)
    pmu.msr(sr.pmevcntr(0), 2**32 - 100)
    pmu.msr(sr.PMINTENSET_EL1, 1)
    pmu.msr(sr.PMCNTENSET_EL0, 1)
    pmu.msr(sr.PMCR_EL0, E)
    run(env, pmu, 1000)
    assert read(pmu, sr.pmevcntr(0)) == 900
    assert read(pmu, sr.PMOVSSET_EL0) == 1 == read(pmu, sr.PMOVSCLR_EL0)
    assert len(irqs) == 1 and pmu.irq.pending
    pmu.msr(sr.PMOVSCLR_EL0, 1)                    # the handler clears the source
    assert not pmu.irq.pending and read(pmu, sr.PMOVSSET_EL0) == 0


def test_no_interrupt_without_pmcr_e_or_pminten() -> None:
    _, pmu, irqs = make()
    pmu.msr(sr.PMOVSSET_EL0, 1)                    # set by hand
    pmu.msr(sr.PMINTENSET_EL1, 1)
    assert not irqs
    pmu.msr(sr.PMCR_EL0, E)                        # the level rises with E
    assert len(irqs) == 1


def test_pmuv3p5_counters_store_64_bits_and_overflow_at_32_unless_lp() -> None:
    env, pmu, _ = make(PMUVER_V3P5)
    pmu.msr(sr.pmevtyper(0), INST)
    pmu.msr(sr.pmevtyper(1), INST)
    pmu.msr(sr.pmevcntr(0), 2**32 - 10)
    pmu.msr(sr.pmevcntr(1), 2**32 - 10)
    pmu.msr(sr.PMCNTENSET_EL0, 0b11)
    pmu.msr(sr.PMCR_EL0, E)
    run(env, pmu, 20)
    assert read(pmu, sr.pmevcntr(0)) == 2**32 + 10          # the upper half goes on
    assert read(pmu, sr.PMOVSSET_EL0) & 0b11 == 0b11         # but the overflow is at 32
    pmu.msr(sr.PMOVSCLR_EL0, 0b11)
    pmu.msr(sr.PMCR_EL0, E | LP)
    pmu.msr(sr.pmevcntr(0), 2**32 - 10)
    run(env, pmu, 20)
    assert read(pmu, sr.PMOVSSET_EL0) & 1 == 0               # LP: at 64 bits now


def test_the_cycle_counter_overflows_at_32_bits_unless_lc() -> None:
    env, pmu, _ = make()
    pmu.msr(sr.PMCCNTR_EL0, 2**32 - 5)
    pmu.msr(sr.PMCNTENSET_EL0, CYC)
    pmu.msr(sr.PMCR_EL0, E)
    run(env, pmu, 10)
    assert read(pmu, sr.PMCCNTR_EL0) == 2**32 + 5 and read(pmu, sr.PMOVSSET_EL0) == CYC
    pmu.msr(sr.PMOVSCLR_EL0, CYC)
    pmu.msr(sr.PMCR_EL0, E | LC)
    pmu.msr(sr.PMCCNTR_EL0, 2**32 - 5)
    run(env, pmu, 10)
    assert read(pmu, sr.PMOVSSET_EL0) == 0


def test_chain_makes_a_64_bit_pair() -> None:
    """Counter 1 counting CHAIN counts counter 0's overflows (and overflows itself)."""
    env, pmu, _ = make()
    pmu.msr(sr.pmevtyper(0), INST)
    pmu.msr(sr.pmevtyper(1), arm_ev.CHAIN)
    pmu.msr(sr.pmevcntr(0), 2**32 - 1)
    pmu.msr(sr.pmevcntr(1), 2**32 - 1)
    pmu.msr(sr.PMCNTENSET_EL0, 0b11)
    pmu.msr(sr.PMCR_EL0, E)
    run(env, pmu, 2)
    assert read(pmu, sr.pmevcntr(0)) == 1 and read(pmu, sr.pmevcntr(1)) == 0
    assert read(pmu, sr.PMOVSSET_EL0) == 0b11


def test_sw_incr_increments_enabled_counters_that_count_it() -> None:
    _, pmu, _ = make()
    pmu.msr(sr.pmevtyper(0), arm_ev.SW_INCR)
    pmu.msr(sr.pmevtyper(1), arm_ev.SW_INCR)
    pmu.msr(sr.pmevtyper(2), INST)
    pmu.msr(sr.PMCNTENSET_EL0, 0b101)              # counter 1 disabled
    pmu.msr(sr.PMCR_EL0, E)
    for _ in range(3):
        pmu.msr(sr.PMSWINC_EL0, 0b111)
    assert [read(pmu, sr.pmevcntr(i)) for i in range(3)] == [3, 0, 0]
    assert pmu.mrs(sr.PMSWINC_EL0) is Fault.UNDEF


def test_pmcr_p_and_c_reset_the_event_counters_and_the_cycle_counter() -> None:
    _, pmu, _ = make()
    for i in range(3):
        pmu.msr(sr.pmevcntr(i), 100 + i)
    pmu.msr(sr.PMCCNTR_EL0, 999)
    pmu.msr(sr.PMCR_EL0, P)
    assert [read(pmu, sr.pmevcntr(i)) for i in range(3)] == [0, 0, 0]
    assert read(pmu, sr.PMCCNTR_EL0) == 999
    pmu.msr(sr.PMCR_EL0, C)
    assert read(pmu, sr.PMCCNTR_EL0) == 0
    assert read(pmu, sr.PMCR_EL0) & (P | C) == 0 and read(pmu, sr.PMCR_EL0) >> 11 & 0x1F == 6


def test_pmxev_windows_follow_pmselr() -> None:
    _, pmu, _ = make(n=4)
    pmu.msr(sr.PMSELR_EL0, 2)
    pmu.msr(sr.PMXEVTYPER_EL0, INST)
    pmu.msr(sr.PMXEVCNTR_EL0, 1234)
    assert read(pmu, sr.pmevtyper(2)) == INST and read(pmu, sr.pmevcntr(2)) == 1234
    pmu.msr(sr.PMSELR_EL0, 31)
    pmu.msr(sr.PMXEVTYPER_EL0, P_BIT)
    assert read(pmu, sr.PMCCFILTR_EL0) == P_BIT
    pmu.msr(sr.PMSELR_EL0, 4)                      # beyond PMCR_EL0.N
    assert pmu.mrs(sr.PMXEVCNTR_EL0) is Fault.UNDEF
    assert pmu.msr(sr.pmevcntr(5), 0) is Fault.UNDEF   # not implemented


def test_el0_access_is_gated_by_pmuserenr() -> None:
    _, pmu, _ = make()
    assert pmu.mrs(sr.PMCCNTR_EL0, el=0) is Fault.UNDEF
    pmu.msr(sr.PMUSERENR_EL0, 1 << 2)              # CR
    assert pmu.mrs(sr.PMCCNTR_EL0, el=0) == 0
    assert pmu.msr(sr.PMCCNTR_EL0, 5, el=0) is Fault.UNDEF


@settings(max_examples=60)
@given(start=st.integers(0, 2**32 - 1), n=st.integers(0, 3 * 2**20), lp=st.booleans())
def test_wrap_and_overflow_match_a_reference_count(start: int, n: int, lp: bool) -> None:
    """PMUv3p5: the value is (start + n) mod 2^64 and PMOVS is set iff the low 32 bits (LP:
    all 64) carried out."""
    env, pmu, _ = make(PMUVER_V3P5)
    pmu.msr(sr.pmevtyper(0), INST)
    pmu.msr(sr.pmevcntr(0), start)
    pmu.msr(sr.PMCNTENSET_EL0, 1)
    pmu.msr(sr.PMCR_EL0, E | (LP if lp else 0))
    if n:
        run(env, pmu, n)
    assert read(pmu, sr.pmevcntr(0)) == start + n
    wraps = start + n >= 2**32 and not lp
    assert bool(read(pmu, sr.PMOVSSET_EL0) & 1) == wraps
