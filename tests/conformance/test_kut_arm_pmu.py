"""kvm-unit-tests arm/pmu.c port (kvm-unit-tests@1da1819e): it passes on every Arm preset on
bare metal, records one check per upstream report site, skips the 64-bit variants without
FEAT_PMUv3p5 as upstream, and fails when the hardware under it breaks."""

from __future__ import annotations

from typing import Any

import pytest

from vpmu.arch.arm64.caps import ArmPmuCaps
from vpmu.arch.faults import Fault
from vpmu.arch.presets import PRESETS
from vpmu.guest.conformance import (
    SUITE_ARCH,
    SUITES,
    CheckResult,
    Expectations,
    Runner,
    suites_for,
)
from vpmu.guest.conformance.arm64 import run_suite
from vpmu.guest.conformance.arm64._kut_lib import (
    mem_access_stream,
    precise_instrs_stream,
)
from vpmu.guest.conformance.arm64.kut_pmu import SUITE
from vpmu.guest.port import Mrs, Msr, Op, WaitPmi
from vpmu.machine.conformance import bare_metal_runner, run_conformance

from .port_shims import failed, fmt, shim


def _long(preset: str) -> bool:
    """The preset has FEAT_PMUv3p5 (64-bit event counters)."""
    caps = PRESETS[preset].caps
    return isinstance(caps, ArmPmuCaps) and caps.long_event_counters


ARM = [name for name, p in PRESETS.items() if isinstance(p.caps, ArmPmuCaps)]
V3P5 = [name for name in ARM if _long(name)]
CHECKS_32 = {"cycle-counter": 2, "pmu-event-introspection": 1, "pmu-event-counter-config": 3,
             "pmu-basic-event-count": 10, "pmu-mem-access-reliability": 1,
             "pmu-mem-access": 2, "pmu-sw-incr": 4, "pmu-chained-counters": 6,
             "pmu-chained-sw-incr": 2, "pmu-chain-promotion": 7, "pmu-overflow-interrupt": 6}
"""Report sites each sub-test reaches in one AArch64 run (upstream's ``report(...)`` calls)."""
WITH_64 = ("pmu-basic-event-count", "pmu-mem-access-reliability", "pmu-mem-access",
           "pmu-sw-incr", "pmu-overflow-interrupt")


def _run(preset: str, runner: Runner | None = None) -> list[CheckResult]:
    return run_suite(SUITE, runner or bare_metal_runner(PRESETS[preset]), Expectations())




def _failing_tests(results: list[CheckResult]) -> set[str]:
    return {r.test.split("[")[0] for r in failed(results)}


# -- the suite passes and records what upstream reports -----------------------------------
def test_there_are_arm_presets_and_the_suite_is_registered_for_them() -> None:
    assert ARM and V3P5
    assert SUITES[SUITE.name] is SUITE and SUITE_ARCH[SUITE.name] == "arm64"
    assert suites_for("arm64")[0] == SUITE.name
    assert SUITE.name not in suites_for("x86")


@pytest.mark.parametrize("name", ARM)
def test_suite_passes_on_bare_metal(name: str) -> None:
    """Every non-skipped check passes."""
    results = _run(name)
    assert [r for r in results if not r.skipped], "the suite recorded no check"
    bad = failed(results)
    assert not bad, fmt(bad)


@pytest.mark.parametrize("name", ARM)
def test_every_report_site_is_a_check(name: str) -> None:
    """One check per upstream report; the 64-bit runs check too with PMUv3p5, else each is
    one skip with upstream's reason."""
    results = _run(name)
    counts: dict[str, int] = {}
    for r in results:
        if not r.skipped:
            base = r.test.split("[")[0]
            counts[base] = counts.get(base, 0) + 1
    long = _long(name)
    expected = {t: n * (2 if long and t in WITH_64 else 1) for t, n in CHECKS_32.items()}
    assert counts == expected
    skips = [r for r in results if r.skipped]
    if long:
        assert not skips
    else:
        assert [r.test for r in skips] == [f"{t}[64-bit overflows]" for t in WITH_64]
        assert {r.detail for r in skips} == {"Skip test as 64 overflows need FEAT_PMUv3p5"}


def test_case_labels_follow_upstream_prefixes() -> None:
    """Sub-tests run through run_event_test carry their "N-bit overflows" prefix."""
    labels = [c.name for c in SUITE.cases]
    assert labels[:3] == ["cycle-counter", "pmu-event-introspection",
                          "pmu-event-counter-config"]
    assert "pmu-chained-counters[32-bit overflows]" in labels
    assert "pmu-chained-counters[64-bit overflows]" not in labels
    assert "pmu-overflow-interrupt[64-bit overflows]" in labels
    assert len(labels) == 3 + 8 + len(WITH_64)


def test_the_loops_have_upstreams_exact_counts() -> None:
    """isb + 2*loop (the disabling MSR is the port's own); 4 + 4*loop with loop loads."""
    s = precise_instrs_stream(20)
    assert (s.get("instructions"), s.get("branches")) == (41, 20)
    m = mem_access_stream(250)
    assert (m.get("instructions"), m.get("branches"), m.get("loads")) == (1004, 250, 250)


def test_run_conformance_runs_only_the_presets_architecture() -> None:
    """Default suites follow the preset's architecture; a named foreign suite is a skip; a
    design that does not run on arm64 is refused."""
    arm = run_conformance("arm-a53")
    assert {r.suite for r in arm} == set(suites_for("arm64")) and not failed(arm)
    foreign = run_conformance("arm-a53", suites=("kvm-unit-tests/x86/pmu",))
    assert [(r.test, r.skipped) for r in foreign] == [("*", True)]
    with pytest.raises(ValueError, match="arm64"):   # mediated is x86's
        run_conformance("arm-a53", design="mediated")


# -- the suite fails when the hardware under it breaks ------------------------------------
def test_no_pmu_skips_every_sub_test() -> None:
    """PMUVer = 0: "No PMU found, test skipped..." for each sub-test."""
    def no_pmu(op: Op, r: Any) -> Any:
        return 0 if op == Mrs("ID_AA64DFR0_EL1") else r
    results = _run("arm-a72", shim("arm-a72", result_map=no_pmu))
    assert results and all(r.skipped for r in results)
    assert {r.detail for r in results} == {"No PMU found, test skipped..."}


def test_lost_interrupts_fail_overflow_interrupt_only() -> None:
    """A PPI that never arrives fails the interrupt sub-test and nothing else."""
    def no_irq(op: Op, r: Any) -> Any:
        return False if isinstance(op, WaitPmi) else r
    results = _run("arm-n1", shim("arm-n1", result_map=no_irq))
    assert _failing_tests(results) == {"pmu-overflow-interrupt"}


def test_a_chain_that_never_carries_fails_the_chain_tests() -> None:
    """Retyping CHAIN as an event nothing counts breaks every CHAIN expectation."""
    def unchain(op: Op) -> Op:
        if isinstance(op, Msr) and op.name.startswith("PMEVTYPER") and op.value & 0xFFFF == 0x1E:
            return Msr(op.name, op.value & ~0xFFFF | 0x1A)
        return op
    results = _run("arm-a53", shim("arm-a53", op_map=unchain))
    assert _failing_tests(results) == {"pmu-chained-counters", "pmu-chained-sw-incr",
                                       "pmu-chain-promotion", "pmu-overflow-interrupt"}


def test_dropped_sw_incr_writes_fail_the_sw_incr_tests() -> None:
    """PMSWINC_EL0 writes that do nothing break the sub-tests that count SW_INCR."""
    def drop(op: Op) -> Op:
        return Msr(op.name, 0) if isinstance(op, Msr) and op.name == "PMSWINC_EL0" else op
    results = _run("arm-a520", shim("arm-a520", op_map=drop))
    assert _failing_tests(results) == {"pmu-sw-incr", "pmu-chained-sw-incr",
                                       "pmu-overflow-interrupt"}


def test_unimplemented_counter_bits_must_read_as_zero() -> None:
    """A SET/CLR pair that kept unimplemented bits fails basic-event-count."""
    def leak(op: Op, r: Any) -> Any:
        if isinstance(op, Mrs) and op.name == "PMINTENSET_EL1" and isinstance(r, int):
            return r | 1 << 30
        return r
    results = _run("arm-a72", shim("arm-a72", result_map=leak))
    bad = failed(results)
    assert [r.check for r in bad] == ["overflow interrupts enabled on all implemented counters"]


def test_an_undefined_access_is_a_named_failure() -> None:
    """An access upstream expects to work that is UNDEFINED fails a check named after it."""
    def undef(op: Op, r: Any) -> Any:
        return Fault.UNDEF if op == Mrs("PMCEID1_EL0") else r
    results = _run("arm-a720", shim("arm-a720", result_map=undef))
    assert any(r.check == "MRS PMCEID1_EL0" for r in failed(results))
