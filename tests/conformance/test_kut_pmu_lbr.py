"""The kvm-unit-tests x86/pmu_lbr.c port on bare metal: both checks pass with the preset's
depth where the legacy LBR exists, and each skip reason is upstream's."""

from __future__ import annotations

import pytest

from vpmu.arch import events as ev
from vpmu.arch.presets import PRESETS
from vpmu.guest.conformance import SUITES, CheckResult, Expectations, run_suite
from vpmu.guest.conformance.x86 import kut_pmu_lbr
from vpmu.guest.conformance.x86.kut_pmu_lbr import DEPTH_GOOD, RECORDS_GOOD, SUITE
from vpmu.machine.conformance import bare_metal_runner
from vpmu.workloads import Stream


def _results(preset: str) -> list[CheckResult]:
    return run_suite(SUITE, bare_metal_runner(PRESETS[preset]), Expectations())


@pytest.mark.parametrize("preset", ["intel-skl", "intel-icx"])
def test_both_checks_pass_with_the_presets_depth(preset: str) -> None:
    results = _results(preset)
    assert [(r.check, r.passed, r.skipped) for r in results] == [
        (DEPTH_GOOD, True, False), (RECORDS_GOOD, True, False)]
    assert results[0].detail == f"max={PRESETS[preset].caps.lbr_depth}"


@pytest.mark.parametrize(("preset", "reason"), [
    ("intel-spr", "LBR on this platform is not supported!"),
    ("intel-emr", "LBR on this platform is not supported!"),
    ("amd-zen4", "PMU_LBR test is for intel CPU's only"),
    ("intel-icx-no-pdcm", "Perfmon/Debug Capabilities MSR isn't supported."),
    ("intel-icx-no-lbr", "(Architectural) LBR is not supported."),
])
def test_skips_with_upstreams_reason(preset: str, reason: str) -> None:
    variants = {"intel-icx-no-pdcm": PRESETS["intel-icx"].with_caps(pdcm=False),
                "intel-icx-no-lbr": PRESETS["intel-icx"].with_caps(lbr_format=0)}
    target = variants.get(preset, PRESETS.get(preset))
    assert target is not None
    results = run_suite(SUITE, bare_metal_runner(target), Expectations())
    assert [(r.skipped, r.detail) for r in results] == [(True, reason)]


def test_a_stack_that_records_nothing_fails_the_second_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A workload that takes no branch leaves FROM/TO at 0: the second check fails."""
    monkeypatch.setattr(kut_pmu_lbr, "lbr_test_loop",
                        lambda n: Stream("flat", {ev.CYCLES: 10, ev.INSTRUCTIONS: 1}))
    results = _results("intel-icx")
    assert [(r.check, r.passed) for r in results] == [(DEPTH_GOOD, True), (RECORDS_GOOD, False)]


def test_suite_is_registered() -> None:
    assert SUITES[SUITE.name] is SUITE
