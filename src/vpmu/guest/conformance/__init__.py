"""Ported conformance suites as guest programs: kvm-unit-tests' PMU test and the KVM
selftests' PMU tests, run on bare metal and under every design.

``SUITES`` maps each suite's upstream name to its port, in the order they run; the ports are
per architecture (``x86/``); see ``_framework`` for how a case records checks.
"""

from vpmu.guest.conformance._framework import (
    Checker,
    CheckResult,
    EventFilterArgs,
    Expectations,
    FilterRefused,
    Runner,
    Suite,
    SuiteContext,
    TestCase,
    Unsupported,
    Variant,
    discover_pmu,
    run_case,
    run_suite,
)
from vpmu.guest.conformance.x86 import (
    kut_pmu,
    kut_pmu_lbr,
    selftests_pmu_counters,
    selftests_pmu_event_filter,
)

SUITES: dict[str, Suite] = {s.name: s for s in (
    kut_pmu.SUITE, kut_pmu_lbr.SUITE, selftests_pmu_counters.SUITE,
    selftests_pmu_event_filter.SUITE)}
"""Suites by upstream name, in the order they run."""

__all__ = ["SUITES", "CheckResult", "Checker", "EventFilterArgs", "Expectations",
           "FilterRefused", "Runner", "Suite", "SuiteContext", "TestCase", "Unsupported",
           "Variant", "discover_pmu", "run_case", "run_suite"]
