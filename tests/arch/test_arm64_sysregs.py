"""Arm PMUv3's system registers as data (``vpmu.arch.arm64.sysregs``): encodings, the set/clear
pairs against a reference model, PMCR_EL0's actions and read-only fields, widths, PMCEID, and
the accesses that are UNDEFINED."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpmu.arch.arm64 import sysregs as sr
from vpmu.arch.arm64.caps import PMUVER_V3, PMUVER_V3P1, PMUVER_V3P5, ArmPmuCaps
from vpmu.arch.arm64.events import BY_NAME, COMMON_EVENTS, pmceid
from vpmu.arch.faults import Fault
from vpmu.arch.regs import RegisterSpec, apply_write, by_address, read_value

U64 = st.integers(0, 2**64 - 1)


def caps(n: int = 6, pmuver: int = PMUVER_V3P1, **kw: object) -> ArmPmuCaps:
    return ArmPmuCaps(0x41, 0xD03, pmuver, n, **kw)  # type: ignore[arg-type]


def specs(c: ArmPmuCaps) -> dict[str, RegisterSpec]:
    return {s.name: s for s in sr.pmu_sysregs(c)}


def test_encodings_are_linux_sys_reg() -> None:
    """sys_reg(op0, op1, CRn, CRm, op2) as arch/arm64/include/asm/sysreg.h shifts them."""
    assert sr.PMCR_EL0 == 0x1B9C00
    assert sr.pmevcntr(0) == sr.sys_reg(3, 3, 14, 8, 0)
    assert sr.pmevtyper(30) == sr.sys_reg(3, 3, 14, 15, 6)
    assert sr.pmevtyper(31) == sr.PMCCFILTR_EL0  # PMCCFILTR_EL0 sits where PMEVTYPER31 would
    assert sr.sys_reg(3, 0, 9, 14, 1) == sr.PMINTENSET_EL1


@pytest.mark.parametrize("n", [0, 1, 6, 30, 31])
def test_every_counter_count_declares_distinct_registers(n: int) -> None:
    c = caps(n)
    table = by_address(sr.pmu_sysregs(c))  # refuses duplicates
    assert sum(s.name.startswith("PMEVCNTR") for s in table.values()) == n
    assert sum(s.name.startswith("PMEVTYPER") for s in table.values()) == n


def _apply(regs: dict[str, RegisterSpec], storage: dict[str, int], name: str,
           value: int) -> None:
    spec = regs[name]
    key = spec.storage
    result = apply_write(spec, storage.get(key, spec.reset), value)
    assert not result.fault
    if result.store is not None:
        storage[key] = result.store
    target = spec.target or key
    storage[target] = (storage.get(target, 0) | result.set) & ~result.clear


@given(st.lists(st.tuples(st.sampled_from(["PMCNTENSET_EL0", "PMCNTENCLR_EL0",
                                           "PMOVSSET_EL0", "PMOVSCLR_EL0",
                                           "PMINTENSET_EL1", "PMINTENCLR_EL1"]), U64),
                max_size=30),
       st.integers(0, 31))
def test_set_clear_pairs_match_a_reference_model(writes: list[tuple[str, int]], n: int) -> None:
    """Each written 1 sets (SET) or clears (CLR) that bit of the pair's one storage; bits of
    counters that do not exist stay 0; both registers of a pair read the storage."""
    c = caps(n)
    regs = specs(c)
    implemented = (1 << n) - 1 | 1 << 31
    storage: dict[str, int] = {}
    model: dict[str, int] = {}
    for name, value in writes:
        _apply(regs, storage, name, value)
        pair = name.replace("CLR", "SET")
        bits = value & implemented
        model[pair] = model.get(pair, 0) | bits if "SET" in name else model.get(pair, 0) & ~bits
    for set_name, value in model.items():
        clr_name = set_name.replace("SET", "CLR")
        for reg in (set_name, clr_name):
            assert read_value(regs[reg], storage.get(regs[reg].storage, 0)) == value


@given(U64)
def test_pmcr_p_and_c_are_actions_and_n_is_read_only(value: int) -> None:
    c = caps(6)
    pmcr = specs(c)["PMCR_EL0"]
    result = apply_write(pmcr, pmcr.reset, value)
    assert not result.fault and result.store is not None
    assert result.action == value & 0b110
    assert result.store & 0xFF == value & 0xF9          # E, D, X, DP, LC, LP stored
    assert pmcr.decode(result.store)["N"] == 6          # N ignores the write
    assert pmcr.decode(result.store)["IMP"] == 0x41
    assert result.store >> 32 == 0 and result.store & 0x700 == 0   # RES0 ignored, no fault
    assert read_value(pmcr, result.store) & 0b110 == 0  # P and C read 0


def test_pmswinc_is_write_only_and_acts_on_implemented_counters() -> None:
    c = caps(4)
    swinc = specs(c)["PMSWINC_EL0"]
    assert swinc.write_only
    assert apply_write(swinc, 0, 0xFFFF_FFFF).action == 0xF
    assert sr.access_fault(swinc, c, el=1, userenr=0, sel=0, write=False) is Fault.UNDEF


@pytest.mark.parametrize(("pmuver", "counter_bits", "event_bits"), [
    (PMUVER_V3, 32, 10), (PMUVER_V3P1, 32, 16), (PMUVER_V3P5, 64, 16)])
def test_widths_follow_the_pmu_version(pmuver: int, counter_bits: int, event_bits: int) -> None:
    regs = specs(caps(2, pmuver))
    assert regs["PMEVCNTR0_EL0"].field("PMEVCNTR").width == counter_bits
    assert regs["PMCCNTR_EL0"].field("CCNT").width == 64
    assert regs["PMEVTYPER1_EL0"].field("evtCount").width == event_bits


def test_pmceid_enumerates_the_implemented_common_events() -> None:
    events = frozenset({BY_NAME["SW_INCR"], BY_NAME["INST_RETIRED"], BY_NAME["CPU_CYCLES"],
                        BY_NAME["CHAIN"], BY_NAME["BR_RETIRED"], BY_NAME["STALL_SLOT"]})
    c = caps(6, events=events)
    assert (c.pmceid0, c.pmceid1) == (1 << 0 | 1 << 8 | 1 << 0x11 | 1 << 0x1E,
                                      1 << 1 | 1 << 31)
    regs = specs(c)
    assert regs["PMCEID0_EL0"].reset == c.pmceid0
    assert apply_write(regs["PMCEID1_EL0"], c.pmceid1, 0).store == c.pmceid1  # RO ignores it
    assert len(COMMON_EVENTS) == 64
    with pytest.raises(ValueError, match="0x00-0x3F"):
        pmceid(frozenset({0x40}))


EN, SW, CR, ER = 1, 2, 4, 8


@pytest.mark.parametrize(("name", "userenr", "write", "undefined"), [
    ("PMCR_EL0", 0, False, True), ("PMCR_EL0", EN, True, False),
    ("PMCCNTR_EL0", CR, False, False), ("PMCCNTR_EL0", CR, True, True),
    ("PMEVCNTR2_EL0", ER, False, False), ("PMEVCNTR2_EL0", ER, True, True),
    ("PMSELR_EL0", ER, True, False), ("PMSWINC_EL0", SW, True, False),
    ("PMSWINC_EL0", EN, False, True), ("PMINTENSET_EL1", EN, False, True),
    ("PMINTENCLR_EL1", EN, True, True), ("PMUSERENR_EL0", 0, False, False),
    ("PMUSERENR_EL0", EN, True, True), ("PMCEID0_EL0", ER | CR | SW, False, True),
])
def test_el0_access_follows_pmuserenr(name: str, userenr: int, write: bool,
                                      undefined: bool) -> None:
    c = caps(4)
    fault = sr.access_fault(specs(c)[name], c, el=0, userenr=userenr, sel=0, write=write)
    assert (fault is Fault.UNDEF) == undefined
    assert sr.access_fault(specs(c)[name], c, el=1, userenr=0, sel=0,
                           write=write) is (Fault.UNDEF if name == "PMSWINC_EL0" and not write
                                            else None)


@pytest.mark.parametrize(("sel", "undefined"), [(0, False), (3, False), (4, True), (30, True),
                                                (31, False)])
def test_the_selected_counter_must_exist(sel: int, undefined: bool) -> None:
    """PMSELR_EL0.SEL names an event counter below PMCR_EL0.N, or 31 (the cycle counter)."""
    c = caps(4)
    regs = specs(c)
    for name in ("PMXEVCNTR_EL0", "PMXEVTYPER_EL0"):
        fault = sr.access_fault(regs[name], c, el=1, userenr=0, sel=sel, write=True)
        assert (fault is Fault.UNDEF) == undefined
