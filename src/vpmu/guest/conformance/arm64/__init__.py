"""The arm64 conformance suites: the port of kvm-unit-tests ``arm/pmu.c`` (``kut_pmu``).

An Arm suite runs without x86's suite-level discovery (``discover_pmu`` reads CPUID, which
is UNDEFINED here): like upstream, where every sub-test is its own run of the test binary,
each case probes the PMU itself (``_kut_lib.pmu_probe``) and skips when there is none.
"""

from __future__ import annotations

from vpmu.guest.conformance._framework import (
    CheckResult,
    Expectations,
    Runner,
    Suite,
    SuiteContext,
    run_case,
)


def run_suite(suite: Suite, runner: Runner, expectations: Expectations) -> list[CheckResult]:
    """Run every case of an Arm ``suite``, each on a fresh machine, and return all check
    results (the x86 ``run_suite`` without its CPUID discovery and variants)."""
    reason = suite.applies_to_platform(expectations)
    if reason:
        return [CheckResult(suite.name, "*", "skipped", True, reason, True)]
    results: list[CheckResult] = []
    for case in suite.cases:
        results += run_case(suite, case, runner, SuiteContext(expectations))
    return results
