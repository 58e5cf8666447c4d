"""Bare-metal runner: the port contract, determinism and errors."""

import pytest

import vpmu
from vpmu.arch.x86 import msrs
from vpmu.guest import Cpuid, Execute, Fault, Rdmsr, Rdpmc, WaitPmi, Wrmsr
from vpmu.machine import BareMetal
from vpmu.workloads import get_phase


def _sampling_program():  # type: ignore[no-untyped-def]
    """Sample instructions every 10,000 over a user/kernel phase, re-arming on each PMI."""
    stream = get_phase("syscall-heavy").stream(instructions=50_000)

    def program():  # type: ignore[no-untyped-def]
        yield Wrmsr(msrs.X2APIC_LVTPC, 0x20)
        yield Wrmsr(msrs.IA32_PERFEVTSEL0, 1 << 22 | 3 << 16 | 1 << 20 | 0xC0)
        seen = []
        for _ in range(20):
            yield Wrmsr(msrs.IA32_A_PMC0, (1 << 48) - 10_000)
            yield Execute(stream)
            seen.append((yield WaitPmi(0)))
            yield Wrmsr(msrs.X2APIC_LVTPC, 0x20)
            seen.append((yield Rdpmc(0)))
        return seen
    return program


def test_same_program_same_seed_same_run() -> None:
    """Two runs of one program give identical results, PMI times and kernel event counts."""
    runs = []
    for _ in range(2):
        m = BareMetal("intel-spr", seed=7)
        runs.append((m.run(_sampling_program()), m.pmis, m.env.now_ps, m.env.events_processed))
    assert runs[0] == runs[1]
    assert len(runs[0][1]) == 20


def test_port_results_have_the_contract_types() -> None:
    """Rdmsr/Rdpmc give int or Fault.GP, Wrmsr None or Fault.GP, Cpuid a 4-tuple."""
    def program():  # type: ignore[no-untyped-def]
        return ((yield Rdmsr(msrs.IA32_PERF_GLOBAL_CTRL)), (yield Rdmsr(0x1234)),
                (yield Wrmsr(msrs.IA32_PERF_GLOBAL_STATUS, 0)), (yield Rdpmc(0)),
                (yield Cpuid(0xA)), (yield WaitPmi(10)))
    ctrl, missing, status_write, pmc, leaf, pmi = vpmu.run_guest(program, preset="intel-icx")
    assert isinstance(ctrl, int) and isinstance(pmc, int)
    assert missing is Fault.GP and status_write is Fault.GP
    assert isinstance(leaf, tuple) and len(leaf) == 4
    assert pmi is False


def test_bad_yield_and_unknown_design_are_clear_errors() -> None:
    """Yielding a non-operation is a TypeError naming it, on bare metal and in a VM; an
    unknown design name is refused with the registered ones."""
    def program():  # type: ignore[no-untyped-def]
        yield "wrmsr"
    with pytest.raises(TypeError, match="port operation, not 'wrmsr'"):
        vpmu.run_guest(program)
    with pytest.raises(TypeError, match="port operation, not 'wrmsr'"):
        vpmu.run_guest(program, design="emulated")
    with pytest.raises(ValueError, match=r"design must be one of .*'emulated'.*not 'bogus'"):
        vpmu.run_guest(program, design="bogus")
