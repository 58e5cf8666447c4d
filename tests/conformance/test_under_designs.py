"""The conformance suites are the guest-visible spec: every check passes under each design,
with only the differences the design documents (machine/conformance.py DESIGN_EXPECTATIONS).

All three suites run per (design, preset); skipped checks are the suites' own skips."""

from functools import cache

import pytest

from vpmu.guest.conformance import CheckResult
from vpmu.machine.conformance import DESIGN_EXPECTATIONS, run_conformance
from vpmu.vpmu.registry import design_entries

CASES = [case for entry in design_entries() for case in entry.conformance_cases]
"""Each design's own (spec, preset) matrix, from its registry entry."""


@cache
def _results(design: str, preset: str) -> tuple[CheckResult, ...]:
    return tuple(run_conformance(preset, design=design))


@pytest.mark.parametrize(("design", "preset"), CASES)
def test_every_check_passes(design: str, preset: str) -> None:
    """No check fails, and most are run rather than skipped."""
    results = _results(design, preset)
    failed = [f"{r.test}: {r.check}: {r.detail}" for r in results
              if not r.passed and not r.skipped]
    assert failed == []
    ran = sum(not r.skipped for r in results)
    assert ran > 0.75 * len(results)


def test_mediated_documents_its_differences() -> None:
    """Mediated differs from bare metal where KVM's common code does (legacy PERFCTR0/1
    drop) and in the PMU version it presents, like emulated."""
    assert DESIGN_EXPECTATIONS["mediated"].unsupported_legacy_perfctr01 == "drop"
    assert DESIGN_EXPECTATIONS["mediated"].max_version == 2
