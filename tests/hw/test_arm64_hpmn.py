"""MDCR_EL2.HPMN / HPME on the Arm PMUv3 hardware (``ArmPmu.set_mdcr``): what EL1 sees of
EL2's counters, who enables and resets which counters, and which interrupt they raise."""

from __future__ import annotations

from tests.hw.test_arm64_pmu import CYC, INST, E, P, make, run

from vpmu.arch.arm64 import sysregs as sr
from vpmu.arch.faults import Fault
from vpmu.hw.arm64.pmu import ArmPmu
from vpmu.hw.counting import RING_KERNEL

PMCR, CNTENSET, INTENSET, OVSSET = sr.PMCR_EL0, sr.PMCNTENSET_EL0, sr.PMINTENSET_EL1, \
    sr.PMOVSSET_EL0


def split(hpmn: int = 4) -> tuple[object, ArmPmu, list[int]]:
    env, pmu, irqs = make(n=6)
    pmu.set_mdcr(hpmn=hpmn, hpme=False)
    return env, pmu, irqs


def test_reset_hpmn_is_n_and_nothing_changes() -> None:
    _, pmu, _ = make(n=6)
    assert pmu.hpmn == 6 and not pmu.partitioned
    assert pmu.mrs(PMCR, el=1) == pmu.mrs(PMCR, el=2)


def test_el1_sees_hpmn_counters_el2_sees_n() -> None:
    _, pmu, _ = split(4)
    n_el1 = pmu.mrs(PMCR, el=1)
    n_el2 = pmu.mrs(PMCR, el=2)
    assert isinstance(n_el1, int) and isinstance(n_el2, int)
    assert (n_el1 >> 11 & 0x1F, n_el2 >> 11 & 0x1F) == (4, 6)
    assert pmu.mrs(sr.pmevcntr(4), el=1) is Fault.UNDEF
    assert pmu.mrs(sr.pmevtyper(5), el=0) is Fault.UNDEF
    assert pmu.mrs(sr.pmevcntr(4), el=2) == 0
    assert pmu.mrs(sr.pmevcntr(3), el=1) == 0


def test_el2_bits_are_raz_wi_below_el2() -> None:
    _, pmu, _ = split(4)
    assert pmu.msr(CNTENSET, 0x3F | CYC, el=1) is None
    assert pmu.mrs(CNTENSET, el=2) == 0xF | CYC  # bits 4 and 5 ignored
    pmu.msr(CNTENSET, 0x30, el=2)
    assert pmu.mrs(CNTENSET, el=1) == 0xF | CYC  # and read as zero
    assert pmu.mrs(CNTENSET, el=2) == 0x3F | CYC


def test_pmcr_e_enables_el1_counters_hpme_el2_counters() -> None:
    env, pmu, _ = split(4)
    for idx in (0, 4):
        pmu.msr(sr.pmevtyper(idx), INST, el=2)
    pmu.msr(CNTENSET, 1 | 1 << 4, el=2)
    pmu.msr(PMCR, E, el=1)
    run(env, pmu, 1000)
    assert (pmu.mrs(sr.pmevcntr(0), el=2), pmu.mrs(sr.pmevcntr(4), el=2)) == (1000, 0)
    pmu.set_mdcr(hpmn=4, hpme=True)
    run(env, pmu, 500)
    assert (pmu.mrs(sr.pmevcntr(0), el=2), pmu.mrs(sr.pmevcntr(4), el=2)) == (1500, 500)


def test_pmcr_p_below_el2_resets_only_el1_counters() -> None:
    _, pmu, _ = split(4)
    for idx in (0, 5):
        pmu.msr(sr.pmevcntr(idx), 7, el=2)
    pmu.msr(PMCR, P, el=1)
    assert (pmu.mrs(sr.pmevcntr(0), el=2), pmu.mrs(sr.pmevcntr(5), el=2)) == (0, 7)
    pmu.msr(PMCR, P, el=2)
    assert pmu.mrs(sr.pmevcntr(5), el=2) == 0


def test_an_el2_counters_overflow_interrupts_under_hpme_not_pmcr_e() -> None:
    _, pmu, _ = split(4)
    pmu.msr(INTENSET, 1 << 5, el=2)
    pmu.msr(OVSSET, 1 << 5, el=2)
    pmu.msr(PMCR, E, el=1)
    assert not pmu.irq_level
    pmu.set_mdcr(hpmn=4, hpme=True)
    assert pmu.irq_level
    pmu.msr(PMCR, 0, el=1)
    assert pmu.irq_level  # EL1's PMCR_EL0.E does not gate EL2's counters


def test_sw_incr_counts_at_the_writers_el() -> None:
    """A write at EL1 increments a counter whose filter admits EL1 (P == NSK), whatever the
    CPU's ring; at EL2 only one that counts EL2 (NSH)."""
    _, pmu, _ = split(4)
    pmu.set_cpl(RING_KERNEL)
    pmu.msr(sr.pmevtyper(0), 0, el=2)
    pmu.msr(CNTENSET, 1, el=2)
    pmu.msr(PMCR, E, el=1)
    pmu.msr(sr.PMSWINC_EL0, 1, el=1)
    pmu.msr(sr.PMSWINC_EL0, 1, el=2)
    assert pmu.mrs(sr.pmevcntr(0), el=2) == 1
