"""The guest-program fuzzer under every vPMU design and every preset, with CPL 0-3.

The same WRMSR-heavy programs the bare-metal property tests check against the manuals run
here in a VM under ``none``, ``emulated`` and ``mediated``. Whatever a design virtualizes, the
privilege rules belong to the CPU and are the same everywhere: RDMSR and WRMSR fault at any CPL
but 0, RDPMC faults at CPL 1-3 unless CR4.PCE is set, and so does MOV to CR4. Every result is a
value (an integer, None, or a Fault), never a Python exception.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from vpmu import run_guest
from vpmu.arch.faults import Fault
from vpmu.guest import Rdmsr, Rdpmc, SetCpl, SetCr4Pce, Wrmsr
from vpmu.vpmu.registry import designs_for

from .strategies import PROPERTY_SETTINGS, Scenario, scenarios

X86_DESIGNS = [e.name for e in designs_for("x86")]
"""The designs these x86 programs (MSRs, RDPMC, CR4.PCE) run under."""


def _program(ops: tuple[Any, ...]) -> Any:
    def program() -> Any:
        results = []
        for op in ops:
            results.append((yield op))
        return results
    return program


def _privilege_faults(ops: tuple[Any, ...], results: list[Any]) -> list[str]:
    """Each operation whose fault (or lack of one) breaks the CPU's privilege rules."""
    bad, cpl, pce = [], 0, False
    for op, got in zip(ops, results, strict=True):
        must_fault = (
            (isinstance(op, Rdmsr | Wrmsr | SetCr4Pce) and cpl != 0)
            or (isinstance(op, Rdpmc) and cpl != 0 and not pce))
        if must_fault and got is not Fault.GP:
            bad.append(f"{op} at CPL {cpl} (CR4.PCE={pce}) gave {got!r}, not #GP")
        if not isinstance(got, int | Fault | type(None)):
            bad.append(f"{op} gave {got!r}, not a value")
        if isinstance(op, SetCpl):
            cpl = op.cpl
        if isinstance(op, SetCr4Pce) and cpl == 0:
            pce = op.enabled
    return bad


@pytest.mark.parametrize("design", X86_DESIGNS)
@settings(PROPERTY_SETTINGS, max_examples=25)
@given(scenario=scenarios(max_ops=12, built_in=True))
def test_every_design_keeps_the_cpus_privilege_rules(design: str, scenario: Scenario) -> None:
    """Random programs (every preset, CPL 0-3) end with a value per operation under each
    design, and every privileged operation outside ring 0 faults as on the CPU."""
    results = run_guest(_program(scenario.ops), preset=scenario.preset, design=design)
    assert len(results) == len(scenario.ops)
    assert _privilege_faults(scenario.ops, results) == []


@pytest.mark.parametrize("design", X86_DESIGNS)
@pytest.mark.parametrize("cpl", [1, 2])
def test_rings_1_and_2_are_user_mode_for_the_pmu(design: str, cpl: int) -> None:
    """CPL 1 and 2 are valid rings (no ValueError anywhere): RDMSR faults there and RDPMC too
    until CR4.PCE is set at CPL 0 (then it reads the counter, which ``none`` has not got)."""
    ops = (SetCpl(cpl), Rdmsr(0x186), Rdpmc(0), SetCpl(0), SetCr4Pce(True), SetCpl(cpl),
           Rdpmc(0), SetCpl(0))
    results = run_guest(_program(ops), preset="intel-icx", design=design)
    assert results[1] is Fault.GP and results[2] is Fault.GP
    assert isinstance(results[6], int) if design != "none" else results[6] is Fault.GP


def test_a_ring_outside_0_to_3_cannot_be_made() -> None:
    """A selector's RPL is two bits: SetCpl(4) is refused when the operation is built."""
    with pytest.raises(ValueError, match="ring 0-3"):
        SetCpl(4)
