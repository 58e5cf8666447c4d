"""Ported conformance suites as guest programs: kvm-unit-tests' PMU test and the KVM
selftests' PMU tests, run on bare metal and under every design.

``SUITES`` maps each suite's upstream name to its port, in the order they run; the ports are
per architecture (``x86/``, ``arm64/``), and ``SUITE_ARCH`` says which architecture's presets
each suite runs on and ``RUN_SUITE`` how (an Arm suite has no CPUID discovery); see
``_framework`` for how a case records checks.
"""

from collections.abc import Callable

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
from vpmu.guest.conformance.arm64 import kut_pmu as arm_kut_pmu
from vpmu.guest.conformance.arm64 import run_suite as run_arm_suite
from vpmu.guest.conformance.arm64 import vpmu_counter_access as arm_counter_access
from vpmu.guest.conformance.x86 import (
    kut_pmu,
    kut_pmu_lbr,
    selftests_pmu_counters,
    selftests_pmu_event_filter,
)

_X86_SUITES = (kut_pmu.SUITE, kut_pmu_lbr.SUITE, selftests_pmu_counters.SUITE,
               selftests_pmu_event_filter.SUITE)
_ARM64_SUITES = (arm_kut_pmu.SUITE, arm_counter_access.SUITE)

SUITES: dict[str, Suite] = {s.name: s for s in (*_X86_SUITES, *_ARM64_SUITES)}
"""Suites by upstream name, in the order they run."""
SUITE_ARCH: dict[str, str] = {**{s.name: "x86" for s in _X86_SUITES},
                              **{s.name: "arm64" for s in _ARM64_SUITES}}
"""The architecture (``PmuCaps.arch``) whose presets each suite runs on."""
RUN_SUITE: dict[str, Callable[[Suite, Runner, Expectations], list[CheckResult]]] = {
    "x86": run_suite, "arm64": run_arm_suite}
"""How each architecture's suites run: x86's discover the PMU through CPUID first."""


def suites_for(arch: str) -> tuple[str, ...]:
    """The names of the suites that run on presets of ``arch``, in order."""
    return tuple(name for name in SUITES if SUITE_ARCH[name] == arch)

__all__ = ["RUN_SUITE", "SUITES", "SUITE_ARCH", "CheckResult", "Checker", "EventFilterArgs",
           "Expectations", "FilterRefused", "Runner", "Suite", "SuiteContext", "TestCase",
           "Unsupported", "Variant", "discover_pmu", "run_case", "run_suite", "suites_for"]
