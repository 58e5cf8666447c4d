"""Ported conformance suites (reference/conformance_suites.md) as guest programs.

``SUITES`` maps each suite's upstream name to its port. Suites are added by their own
modules; see ``_framework`` for how a case records checks.
"""

from vpmu.guest.conformance._framework import (
    Checker,
    CheckResult,
    Expectations,
    Runner,
    Suite,
    SuiteContext,
    TestCase,
    Variant,
    discover_pmu,
    run_case,
    run_suite,
)

SUITES: dict[str, Suite] = {}
"""Suites by upstream name, in the order they run."""

__all__ = ["SUITES", "CheckResult", "Checker", "Expectations", "Runner", "Suite",
           "SuiteContext", "TestCase", "Variant", "discover_pmu", "run_case", "run_suite"]
