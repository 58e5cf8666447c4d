"""Ported conformance suites (reference/conformance_suites.md) as guest programs.

``SUITES`` maps each suite's upstream name to its port, in the order they run; see
``_framework`` for how a case records checks.
"""

from vpmu.guest.conformance import (
    kut_pmu,
    selftests_pmu_counters,
    selftests_pmu_event_filter,
)
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

SUITES: dict[str, Suite] = {s.name: s for s in (
    kut_pmu.SUITE, selftests_pmu_counters.SUITE, selftests_pmu_event_filter.SUITE)}
"""Suites by upstream name, in the order they run."""

__all__ = ["SUITES", "CheckResult", "Checker", "EventFilterArgs", "Expectations",
           "FilterRefused", "Runner", "Suite", "SuiteContext", "TestCase", "Unsupported",
           "Variant", "discover_pmu", "run_case", "run_suite"]
