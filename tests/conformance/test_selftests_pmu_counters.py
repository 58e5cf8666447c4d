"""The pmu_counters_test port (selftests x86, conformance_suites.md 2.2) on bare metal."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Generator
from typing import Any

import pytest

from vpmu.arch.presets import PRESETS, CpuPreset
from vpmu.arch.x86.caps import GuestPmuView
from vpmu.guest.conformance import (
    SUITES,
    CheckResult,
    Expectations,
    Runner,
    Suite,
    Variant,
    discover_pmu,
    run_suite,
)
from vpmu.guest.conformance import TestCase as Case  # not collected by pytest
from vpmu.guest.conformance._framework import CaseFn
from vpmu.guest.conformance.x86.selftests_pmu_counters import (
    NR_INTEL_ARCH_EVENTS,
    NUM_INSNS_RETIRED,
    SUITE,
    UNAVAILABLE_MASKS,
    arch_event_variants,
    guest_test_arch_events,
    guest_test_fixed_counters,
    guest_test_gp_counters,
    sweep_point,
)
from vpmu.guest.port import GuestProgram, Op, Rdpmc
from vpmu.machine.conformance import bare_metal_runner

INTEL = ("intel-skl", "intel-icx", "intel-spr", "intel-emr")
AMD = ("amd-zen4", "amd-zen5")

MIN_CHECKS = {"intel-skl": 8_000, "intel-icx": 20_000, "intel-spr": 20_000,
              "intel-emr": 20_000}
"""Floor on non-skipped checks per preset, a margin below what the port records today
(8,375 on the 4 GP / 3 fixed v4 part, 22,591 on the 8 GP / 4 fixed v5 parts)."""


@functools.cache
def _results(preset: str) -> tuple[CheckResult, ...]:
    """The whole suite on bare-metal ``preset``, run once per test session."""
    return tuple(run_suite(SUITE, bare_metal_runner(PRESETS[preset]), Expectations()))


def _failures(results: tuple[CheckResult, ...] | list[CheckResult]) -> list[CheckResult]:
    """The checks that ran and failed."""
    return [r for r in results if not r.passed and not r.skipped]


def _fmt(results: list[CheckResult], limit: int = 25) -> str:
    """Failing checks, one a line, for an assertion message."""
    return "\n".join(f"{r.test}: {r.check}: {r.detail}" for r in results[:limit])


def _host_view(preset: CpuPreset) -> GuestPmuView:
    """The PMU as discovered on the unmodified preset (what ``run_suite`` passes to variants)."""
    view: GuestPmuView = bare_metal_runner(preset)(discover_pmu)
    return view


def _one_case(name: str, body: CaseFn, variants: Callable[[GuestPmuView], list[Variant | None]]
              ) -> Suite:
    """A suite with one case of the port on hand-picked sweep points (keeps tests fast)."""
    return Suite(SUITE.name, SUITE.source, (Case(name, body, variants=variants),),
                 applies=SUITE.applies)


@pytest.mark.parametrize("preset", INTEL)
def test_intel_preset_passes(preset: str) -> None:
    """Every non-skipped check of the port passes on the bare-metal Intel preset."""
    failures = _failures(_results(preset))
    assert not failures, f"{len(failures)} checks failed on {preset}:\n{_fmt(failures)}"


@pytest.mark.parametrize("preset", AMD)
def test_amd_preset_is_skipped(preset: str) -> None:
    """On AMD the suite does not apply: one skipped result naming the reason."""
    results = run_suite(SUITE, bare_metal_runner(PRESETS[preset]), Expectations())
    assert len(results) == 1
    assert results[0].skipped and "Intel only" in results[0].detail


@pytest.mark.parametrize("preset", INTEL)
def test_check_floor(preset: str) -> None:
    """The port records at least its floor of checks, from every case."""
    checked = [r for r in _results(preset) if not r.skipped]
    assert len(checked) >= MIN_CHECKS[preset]
    cases = {r.test.split("[")[0] for r in checked}
    assert cases == {c.name for c in SUITE.cases}


@pytest.mark.parametrize("preset", INTEL)
def test_exact_counts_checked_on_every_counter(preset: str) -> None:
    """At the host version, instructions == 65 is checked on every GP counter and fixed 0."""
    view = _host_view(PRESETS[preset])
    prefix = f"arch_events[version={view.version},ebx_length=0,"
    label = next(r.test for r in _results(preset)
                 if r.test.startswith(prefix) and r.test.endswith("fw_write=True]"))
    names = {r.check for r in _results(preset) if r.test == label}
    for counter in [f"GP{i}" for i in range(view.n_gp)] + ["fixed0"]:
        assert f"instructions {counter}: count == {NUM_INSNS_RETIRED}" in names


@pytest.mark.parametrize("preset", INTEL)
def test_every_gp_sweep_point_is_named(preset: str) -> None:
    """The GP-counter case runs once per version x caps x count, each named in the report."""
    view = _host_view(PRESETS[preset])
    labels = {r.test for r in _results(preset) if r.test.startswith("gp_counters[")}
    expected = {f"gp_counters[version={v},n_gp={n},fw_write={fw}]"
                for v in range(view.version + 1) for fw in (False, True)
                for n in range(view.n_gp + 1)}
    assert labels == expected


def test_arch_sweep_covers_every_length_and_mask() -> None:
    """At the host version, each caps value sees every EBX length 0..NR+1 and every mask."""
    view = _host_view(PRESETS["intel-icx"])
    points = [p for p in arch_event_variants(view) if p and p.version == view.version]
    for fw in (False, True):
        mine = [p for p in points if p and p.fw_write is fw]
        assert {p.ebx_length for p in mine if p} == set(range(NR_INTEL_ARCH_EVENTS + 2))
        assert {p.ebx_unavailable for p in mine if p} == set(UNAVAILABLE_MASKS)


def test_drop_expectation_fails_legacy_perfctr01() -> None:
    """Expecting KVM's dropped PERFCTR0/1 writes on bare metal fails exactly those checks."""
    suite = _one_case("gp_counters", guest_test_gp_counters, lambda view: [
        sweep_point(view, view.version, fw, n_gp=n) for fw in (False, True) for n in range(4)])
    results = run_suite(suite, bare_metal_runner(PRESETS["intel-icx"]),
                        Expectations(unsupported_legacy_perfctr01="drop"))
    failures = _failures(results)
    assert failures, "the drop expectation must fail on bare metal"
    for r in failures:
        assert "fw_write=False" in r.test and ("n_gp=0" in r.test or "n_gp=1" in r.test), r
        assert "MSR 0xc1" in r.check or "MSR 0xc2" in r.check, r
    assert {r.test for r in failures} == {"gp_counters[version=5,n_gp=0,fw_write=False]",
                                         "gp_counters[version=5,n_gp=1,fw_write=False]"}


def test_platform_version_limit_is_honoured() -> None:
    """With a platform maximum of v1 the guest expects no fixed counters, so v5 hardware
    fails the fixed-counter checks: the effective version is min(platform, CPUID)."""
    suite = _one_case("fixed_counters", guest_test_fixed_counters, lambda view: [
        sweep_point(view, view.version, True, n_fixed=view.n_fixed, fixed_mask=0)])
    runner = bare_metal_runner(PRESETS["intel-icx"])
    assert not _failures(run_suite(suite, runner, Expectations()))
    failures = _failures(run_suite(suite, runner, Expectations(max_version=1)))
    assert any("fixed0 (MSR 0x309, unsupported): WRMSR" in r.check for r in failures)


def _rdpmc_off_by_one(inner: Runner) -> Runner:
    """A runner whose RDPMC returns one more than the counter holds (a broken platform)."""

    def run(program: GuestProgram, variant: Variant | None = None) -> Any:
        def skewed() -> Generator[Op, Any, Any]:
            gen, result = program(), None
            while True:
                try:
                    op = gen.send(result)
                except StopIteration as stop:
                    return stop.value
                result = yield op
                if isinstance(op, Rdpmc) and isinstance(result, int):
                    result += 1

        return inner(skewed, variant)

    return run


def test_overcounting_platform_fails_pass_table() -> None:
    """An RDPMC that overcounts by one fails the exact counts and the 0xDEAD sanity check."""
    suite = _one_case("arch_events", guest_test_arch_events, lambda view: [
        sweep_point(view, view.version, True, ebx_length=0, ebx_unavailable=0)])
    runner = _rdpmc_off_by_one(bare_metal_runner(PRESETS["intel-skl"]))
    checks = {r.check for r in _failures(run_suite(suite, runner, Expectations()))}
    assert f"instructions GP0: count == {NUM_INSNS_RETIRED}" in checks
    assert "branches GP3: count == 10" in checks
    assert "cycles GP0: RDPMC after writing 0xdead" in checks


def test_atom_erratum_relaxes_exact_counts() -> None:
    """On an Atom model with the overcount erratum, instructions are checked with >=."""
    atom = dataclasses.replace(PRESETS["intel-skl"], name="atom-like",
                               caps=PRESETS["intel-skl"].caps.replace(model=0x5F))
    suite = _one_case("arch_events", guest_test_arch_events, lambda view: [
        sweep_point(view, view.version, True, ebx_length=0, ebx_unavailable=0)])
    results = run_suite(suite, bare_metal_runner(atom), Expectations())
    names = {r.check for r in results}
    assert f"instructions GP0: count >= {NUM_INSNS_RETIRED}" in names
    assert f"instructions GP0: count == {NUM_INSNS_RETIRED}" not in names
    assert not _failures(results)


def test_suite_is_registered() -> None:
    """Importing the port registers it under its upstream name."""
    assert SUITES[SUITE.name] is SUITE
