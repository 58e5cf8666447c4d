"""The arm64 conformance suites: the port of kvm-unit-tests ``arm/pmu.c`` (``kut_pmu``) and
of the KVM selftest ``vpmu_counter_access`` (``vpmu_counter_access``).

An Arm suite runs without x86's suite-level discovery (``discover_pmu`` reads CPUID, which
is UNDEFINED here): like upstream, where every sub-test is its own run of the test binary,
each case probes the PMU itself (``_kut_lib.pmu_probe``) and skips when there is none. A
case with variants gets the N of the PMU the runner gives by default (a probe run reading
PMCR_EL0.N); a variant that asks KVM for an attribute the runner refuses
(``KvmSetupRefused``) is checked against the errno the variant expects.
"""

from __future__ import annotations

from typing import Any, cast

from vpmu.guest.conformance._framework import (
    Checker,
    CheckResult,
    Expectations,
    Runner,
    Suite,
    SuiteContext,
    TestCase,
    Unsupported,
    run_case,
)
from vpmu.guest.conformance.arm64.vpmu_counter_access import (
    ArmVariant,
    KvmSetupRefused,
    probe_n,
)
from vpmu.guest.port import GuestGen


def run_suite(suite: Suite, runner: Runner, expectations: Expectations) -> list[CheckResult]:
    """Run every case of an Arm ``suite``, each on a fresh machine, and return all check
    results (the x86 ``run_suite`` without its CPUID discovery)."""
    reason = suite.applies_to_platform(expectations)
    if reason:
        return [CheckResult(suite.name, "*", "skipped", True, reason, True)]
    results: list[CheckResult] = []
    max_n = runner(probe_n) if any(c.variants for c in suite.cases) else None
    for case in suite.cases:
        if case.variants is None:
            results += run_case(suite, case, runner, SuiteContext(expectations))
            continue
        for variant in cast(Any, case.variants)(max_n):
            results += run_arm_case(suite, case, runner, SuiteContext(expectations, variant))
    return results


def run_arm_case(suite: Suite, case: TestCase, runner: Runner,
                 ctx: SuiteContext) -> list[CheckResult]:
    """One case on a fresh machine; an ``ArmVariant``'s expected errno is a check."""
    v = ctx.variant
    label = case.name if v is None else f"{case.name}[{v.label()}]"
    checker = Checker(suite.name, label)
    expect = v.expect_errno if isinstance(v, ArmVariant) else None

    def program() -> GuestGen:
        yield from case.body(checker, ctx)

    result = runner(program, v)
    if isinstance(result, Unsupported):
        checker.skip(result.reason)
    elif isinstance(result, KvmSetupRefused) or expect is not None:
        got = result.errno if isinstance(result, KvmSetupRefused) else None
        what = result.attr if isinstance(result, KvmSetupRefused) else "the attributes"
        want = f"fail with {expect}" if expect else "succeed"
        checker.check(f"KVM_ARM_VCPU_PMU_V3 attributes {want}", got == expect,
                      f"{what}: {got or 'returned 0'}")
    if not checker.results:
        checker.check("recorded a check", False, "the case recorded no check")
    return checker.results
