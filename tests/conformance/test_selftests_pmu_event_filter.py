"""The pmu_event_filter_test port (selftests x86, conformance_suites.md 2.3): under the emulated
design, skipped on bare metal, and the runner's KVM_SET_PMU_EVENT_FILTER plumbing."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Generator
from typing import Any

import pytest

from vpmu.arch.presets import PRESETS, get_preset
from vpmu.arch.x86.caps import GuestPmuView
from vpmu.guest.conformance import (
    SUITES,
    Checker,
    CheckResult,
    EventFilterArgs,
    Expectations,
    FilterRefused,
    Runner,
    Suite,
    SuiteContext,
    Unsupported,
    Variant,
    discover_pmu,
    run_case,
    run_suite,
)
from vpmu.guest.conformance import TestCase as Case  # not collected by pytest
from vpmu.guest.conformance.x86 import selftests_pmu_event_filter as pef
from vpmu.guest.port import GuestProgram, Op
from vpmu.machine.conformance import (
    DESIGN_EXPECTATIONS,
    bare_metal_runner,
    build_event_filter,
    run_conformance,
    vm_runner,
)
from vpmu.vpmu import filter as kvm

NAME = "selftests/x86/pmu_event_filter_test"
INTEL = ("intel-skl", "intel-icx", "intel-spr", "intel-emr")
AMD = ("amd-zen4", "amd-zen5")
EMULATED = DESIGN_EXPECTATIONS["emulated"]

FIXED_BITMAP_CHECKS = 3 * (1 + 8 * 4 * 2)
"""3 fixed counters under emulated: one unfiltered run, then 8 bitmaps x 4 filters, each run
checking the ioctl and the count."""
CHECKS = {
    "intel-skl": 1 + 1 + 2 + 4 * 3 + 14 * 4 + 7 + 1 + FIXED_BITMAP_CHECKS,
    "intel-emr": 1 + 1 + 2 + 4 * 3 + 1 + 7 + 1 + FIXED_BITMAP_CHECKS,
    "amd-zen4": 1 + 3 + 2 + 4 * 3 + 14 * 4 + 7 + 1 + 1,
}
"""Results per preset: sanity; AMD deny list (a skip on Intel); no filter (2 counts); the four
base-list filters (ioctl + 2 counts); 14 masked runs (ioctl + 3 counters, AMD's load-op-store
counter a skip), or one skip off the model list (EMR); 7 ioctl checks; PMU disable; the fixed
bitmap (a skip on AMD)."""
CHECKS |= {"intel-icx": CHECKS["intel-skl"], "intel-spr": CHECKS["intel-skl"],
           "amd-zen5": CHECKS["amd-zen4"]}


@functools.cache
def _emulated(preset: str) -> tuple[CheckResult, ...]:
    """The suite on a VM of the emulated design, once per test session."""
    return tuple(run_conformance(preset, suites=(NAME,), design="emulated"))


def _failures(results: tuple[CheckResult, ...] | list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.passed and not r.skipped]


def _view(preset: str) -> GuestPmuView:
    view: GuestPmuView = vm_runner(PRESETS[preset], "emulated")(discover_pmu)
    return view


@pytest.mark.parametrize("preset", INTEL + AMD)
def test_emulated_preset_passes(preset: str) -> None:
    """Every check passes under the emulated design, and the port records what it should."""
    results = _emulated(preset)
    bad = _failures(results)
    assert not bad, "\n".join(f"{r.test}: {r.check}: {r.detail}" for r in bad[:20])
    assert len(results) == CHECKS[preset]


@pytest.mark.parametrize("preset", INTEL + AMD)
def test_bare_metal_skips_the_suite(preset: str) -> None:
    """No hypervisor, no filter: one skip naming the ioctl, no failure."""
    (result,) = run_conformance(preset, suites=(NAME,))
    assert result.skipped and result.passed and "KVM VM ioctl" in result.detail


def test_no_vpmu_skips_the_suite() -> None:
    """The none design is KVM without a vPMU: upstream's TEST_REQUIRE skips."""
    (result,) = run_conformance("amd-zen4", suites=(NAME,), design="none")
    assert result.skipped and "kvm_is_pmu_enabled" in result.detail


def test_a_vm_that_ignores_the_filter_fails() -> None:
    """A VM run without the filter it was given fails every case where the filter matters."""
    inner = vm_runner(PRESETS["intel-icx"], "emulated")

    def run(program: GuestProgram, variant: Variant | None = None) -> Any:
        if variant is not None and variant.event_filter is not None \
                and variant.event_filter.expect_errno is None:
            variant = dataclasses.replace(variant, event_filter=None)
        return inner(program, variant)

    failed = {r.test.split("[")[0] for r in _failures(run_suite(SUITES[NAME], run, EMULATED))}
    assert failed == {"test_member_deny_list", "test_not_member_allow_list",
                      "test_masked_events", "test_fixed_counter_bitmap"}


# --- the runners and run_case ---------------------------------------------------------------

def _probe(checker: Checker, ctx: SuiteContext) -> Generator[Op, Any, None]:
    """A case that records one passing check when its program runs."""
    del ctx
    checker.check("program ran", True)
    yield from ()


def _run_probe(runner: Runner, args: EventFilterArgs | None = None, *,
               pmu_disabled: bool = False) -> list[CheckResult]:
    suite = Suite("probe", "test", (Case("probe", _probe),))
    variant = Variant(event_filter=args, pmu_disabled=pmu_disabled)
    return run_case(suite, suite.cases[0], runner, SuiteContext(Expectations(), variant))


def test_bare_metal_runner_answers_unsupported() -> None:
    """A filter or KVM_PMU_CAP_DISABLE on bare metal: the program does not run, a skip."""
    runner = bare_metal_runner(PRESETS["intel-icx"])
    args = EventFilterArgs(pef.KVM_PMU_EVENT_DENY, pef.BASE_EVENTS)
    assert isinstance(runner(discover_pmu, Variant(event_filter=args)), Unsupported)
    for results in (_run_probe(runner, args), _run_probe(runner, pmu_disabled=True)):
        assert [(r.check, r.skipped) for r in results] == [("skipped", True)]


def test_vm_runner_returns_the_errno_without_running() -> None:
    """A refused filter comes back as FilterRefused; the program never runs."""
    runner = vm_runner(PRESETS["amd-zen4"], "emulated")
    bad = EventFilterArgs(pef.INVALID_ACTION, pef.BASE_EVENTS)
    assert runner(discover_pmu, Variant(event_filter=bad)) == FilterRefused("EINVAL")
    (result,) = _run_probe(runner, dataclasses.replace(bad, expect_errno="EINVAL"))
    assert result.passed and result.check == "KVM_SET_PMU_EVENT_FILTER fails with EINVAL"


@pytest.mark.parametrize(("action", "expect", "checks"), [
    (pef.INVALID_ACTION, None, [("KVM_SET_PMU_EVENT_FILTER returns 0", False)]),
    (pef.KVM_PMU_EVENT_ALLOW, "EINVAL", [("KVM_SET_PMU_EVENT_FILTER fails with EINVAL", False),
                                         ("program ran", True)]),
    (pef.KVM_PMU_EVENT_ALLOW, None, [("KVM_SET_PMU_EVENT_FILTER returns 0", True),
                                     ("program ran", True)]),
])
def test_run_case_checks_the_ioctl_result(action: int, expect: str | None,
                                          checks: list[tuple[str, bool]]) -> None:
    """The ioctl's result is a check: refused when it must succeed, or accepted when it must
    fail, is a failure."""
    runner = vm_runner(PRESETS["intel-skl"], "emulated")
    results = _run_probe(runner, EventFilterArgs(action, (), expect_errno=expect))
    assert [(r.check, r.passed) for r in results] == checks


def test_pmu_disabled_vm_has_no_pmu() -> None:
    """KVM_PMU_CAP_DISABLE gives the VM no PMU: the guest discovers version 0, no counters."""
    runner = vm_runner(PRESETS["intel-icx"], "emulated")
    view = runner(discover_pmu, Variant(pmu_disabled=True))
    assert (view.version, view.n_gp) == (0, 0)


def test_shape_variant_labels_are_unchanged() -> None:
    """Existing sweeps keep their labels; VM setup is appended after the shape."""
    assert Variant(version=2, fixed_mask=3).label() == "version=2,fixed_mask=0x3"
    args = EventFilterArgs(pef.KVM_PMU_EVENT_DENY, label="deny x")
    assert Variant(n_gp=1, event_filter=args, pmu_disabled=True).label() == \
        "n_gp=1,deny x,KVM_PMU_CAP_DISABLE"
    assert Variant(version=1, event_filter=args).changes() == {"version": 1}


# --- the port's data against the kernel side (vpmu.vpmu.filter) ------------------------------

def test_uapi_numbers_agree_with_the_kernel_model() -> None:
    """The guest suite uses the same uapi numbers and encoders as vpmu.vpmu.filter."""
    assert (pef.KVM_PMU_EVENT_ALLOW, pef.KVM_PMU_EVENT_DENY) == \
        (kvm.KVM_PMU_EVENT_ALLOW, kvm.KVM_PMU_EVENT_DENY)
    assert pef.KVM_PMU_EVENT_FLAG_MASKED_EVENTS == kvm.KVM_PMU_EVENT_FLAG_MASKED_EVENTS
    assert pef.MAX_FILTER_EVENTS == kvm.KVM_PMU_EVENT_FILTER_MAX_EVENTS
    for select, umask in ((0xC2, 0), (0x1C2, 0), (0xD0, 0x83), (0xFFF, 0xFF)):
        assert pef.raw_event(select, umask) == kvm.raw_event(select, umask)
    for args in ((0xFF, 0xFF, 0xFF, True), (0x29, ~3, 0, False), (0x1D0, 0x7C, 0, True)):
        assert pef.masked_entry(*args) == kvm.masked_entry(*args)


@pytest.mark.parametrize("preset", ("intel-icx", "amd-zen4"))
def test_masked_table_matches_the_kernel_rules(preset: str) -> None:
    """Each row's filter lets through exactly the counters the row says (pmu.c's rules)."""
    view = _view(preset)
    writes, _ = pef.masked_events_setup(view)
    eventsels = [value for _, value in writes if value & pef.OS_EN]
    for run in pef.masked_events_variants(view):
        assert isinstance(run, pef.MaskedEventsRun) and run.event_filter and run.row
        flt = build_event_filter(run.event_filter, get_preset(preset).caps)
        assert isinstance(flt, kvm.PmuEventFilter)
        allowed = sum(flt.allows(i, sel) << i for i, sel in enumerate(eventsels))
        assert allowed == run.row.allowed, run.label()


def test_fixed_bitmap_expectations_match_the_kernel_rules() -> None:
    """The selftest's expectation (counts iff allowed by the bitmap) is pmu.c's rule."""
    runs = pef.fixed_counter_variants(_view("intel-icx"))
    assert len(runs) == 3 * (1 + 8 * 4)
    for run in runs:
        assert isinstance(run, pef.FixedCounterRun)
        if run.event_filter is None:
            assert run.expect_count
            continue
        flt = build_event_filter(run.event_filter, get_preset("intel-icx").caps)
        assert isinstance(flt, kvm.PmuEventFilter)
        assert flt.allows_fixed(run.fixed_idx) == run.expect_count, run.label()


def test_dense_filter_padding() -> None:
    """290 dummy entries, every 4th an exclude, none for the masked-events selects."""
    dummies = pef.dummy_events(pef.MAX_FILTER_EVENTS - pef.MAX_TEST_EVENTS)
    assert len(dummies) == 290
    selects = {e & 0xFF for e in dummies}
    assert pef.MEM_INST_RETIRED not in selects and pef.LS_DISPATCH not in selects
    assert [bool(e >> 55 & 1) for e in dummies[:8]] == [True, False, False, False] * 2


def test_masked_events_model_gate() -> None:
    """Emerald Rapids is not on the selftest's model list: the masked test is a skip."""
    reason = pef.masked_events_skip(_view("intel-emr"))
    assert reason is not None and "0xcf" in reason
    assert pef.masked_events_skip(_view("intel-skl")) is None
