"""Replay: a capture's PMU programming and PMI cadence reconstructed, and the round trip
(a simulated run's --ftrace-out, re-imported and replayed under the same design, gives back
its exit counts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vpmu.report.results import results
from vpmu.scenario import load_scenario
from vpmu.scenario.reconstruct import reconstruct
from vpmu.scenario.replay import fit_phase, observed, replay_scenario
from vpmu.scenario.run import build, run
from vpmu.trace.ftrace import ftrace_text
from vpmu.trace.parse import parse_trace

EXAMPLES = Path(__file__).parents[2] / "examples"
PERIOD = 200_000
SMALL = ["duration_ms=10", "vm[0].guest[0].runs=1", f"vm[0].guest[0].period={PERIOD}",
         "vm[0].guest[0].max_sample_rate=100000"]
"""Seed 001's guest with perf record -c and no throttling, 10 ms."""
NO_CPU_TIME_LIMIT = "vm[0].guest[0].perf_cpu_time_max_percent=0"
"""Seed 001's guest setting, which a capture cannot show: the replay is given it as a user
would with --set (its default is the kernel's 25)."""


def _line(t_us: int, event: str, payload: str, pid: int = 1000, vcpu: int = 0) -> str:
    return (f"       CPU {vcpu}/KVM-{pid:<7} [000] d.... {t_us // 10**6:5d}."
            f"{t_us % 10**6:06d}: {event}: {payload}")


def _exit(t: int, reason: str, **kw: Any) -> str:
    return _line(t, "kvm_exit", f"vcpu 0 reason {reason} rip 0x0 info1 0x0 info2 0x0 "
                                f"intr_info 0x{kw.get('intr', 0):08x} error_code 0x0")


def _msr(t: int, verb: str, index: int, value: int) -> str:
    return _line(t, "kvm_msr", f"msr_{verb} {index:x} = 0x{value:x}")


def _entry(t: int) -> str:
    return _line(t, "kvm_entry", "vcpu 0, rip 0x0")


def _access(t: int, verb: str, index: int, value: int) -> list[str]:
    reason = "MSR_WRITE" if verb == "write" else "MSR_READ"
    return [_exit(t, reason), _msr(t, verb, index, value), _entry(t + 2)]


def _pmi(t: int, status: int, reload: int) -> list[str]:
    """intel_pmu_handle_irq as its MSR exits show it."""
    return [*_access(t, "write", 0x38F, 0), *_access(t + 3, "read", 0x38E, status),
            *_access(t + 6, "write", 0x390, status), *_access(t + 9, "write", 0xC1, reload),
            *_access(t + 12, "read", 0x38E, 0), *_access(t + 15, "write", 0x38F, 0x70000000F),
            *_access(t + 18, "write", 0x834, 0x400)]


def test_programming_and_pmis_are_reconstructed_from_msr_lines() -> None:
    """GP0 = branch instructions (0xc4) at -c 1000 on a 48-bit counter; two PMIs with GP0's
    status bit; a GP7 probe write that is never enabled is not an event."""
    lines = [*_access(0, "write", 0xC8, 0xFFFF),                       # check_hw_exists probe
             *_access(10, "write", 0xC1, (1 << 48) - 1000),             # arm, then enable
             *_access(20, "write", 0x186, 0x5300C4),
             *_pmi(1000, 0x1, (1 << 48) - 1000), *_pmi(2000, 0x1, (1 << 48) - 990)]
    (p,) = reconstruct(parse_trace("\n".join(lines)))
    assert set(p.counters) == {0}
    use = p.counters[0]
    assert (use.event, use.usr, use.os) == ("branches", True, True)
    assert use.periods == [1000, 1000, 990] and use.overflows == 2
    assert p.pmis == [1000 * 10**6, 2000 * 10**6]
    assert p.mode() == ("period", 1000)
    assert len(p.handler_ps) == 2 and p.handler_ps[0] == 20 * 10**6  # disable -> last entry
    assert p.exits["MSR_WRITE"] == 3 + 2 * 5 and p.exits["MSR_READ"] == 4


def test_mediated_pmis_come_from_the_f5_vector() -> None:
    """With counters passed through, a PMI is an EXTERNAL_INTERRUPT exit on vector 0xF5."""
    lines = [_exit(5, "EXTERNAL_INTERRUPT", intr=0x800000F5), _entry(7),
             _exit(9, "EXTERNAL_INTERRUPT", intr=0x800000EC), _entry(10)]
    (p,) = reconstruct(parse_trace("\n".join(lines)))
    assert p.pmis == [5 * 10**6] and p.exits["EXTERNAL_INTERRUPT"] == 2


def test_a_capture_without_pmu_activity_has_nothing_to_replay() -> None:
    """Exits and non-PMU MSRs only: valid input, no scenario, and observed says so."""
    lines = [*_access(0, "write", 0x6E0, 0x1234), _exit(50, "HLT"), _entry(60)]
    rep = replay_scenario(parse_trace("\n".join(lines)))
    assert rep.scenario is None
    obs = observed(rep)
    assert obs["pmu_activity"] is False and obs["vm_exits"]["total"] == 2


def test_phase_fit_picks_the_phase_with_the_same_ratios() -> None:
    """Counts in br_instr's ratios fit br_instr; one event has no ratio to fit."""
    assert fit_phase({"cycles": 2e6, "instructions": 3e6, "branches": 1e6})[0] == "br_instr"
    assert fit_phase({"cycles": 1e6, "instructions": 2.5e6})[0] == "compute"
    assert fit_phase({"cycles": 1e6}) == ("br_instr", None)


def _run(scenario: Any, design: str) -> Any:
    return run(build(scenario, design, keep_trace=True))


@pytest.mark.parametrize("design", ["emulated", "mediated"])
def test_round_trip_reproduces_the_exit_counts(design: str) -> None:
    """Run -> --ftrace-out text -> import -> reconstruct -> replay under the same design: the
    exit counts come back within 2% per reason (a reconstruction, not a re-execution: the
    workload's length is estimated from the guest's time outside exits and handlers)."""
    sc = load_scenario(EXAMPLES / "seed-001.toml", overrides=SMALL)
    first = _run(sc, design)
    original = results(first)["vm_exits"]
    rep = replay_scenario(parse_trace(ftrace_text(first.records), "round-trip.ftrace"),
                          overrides=[NO_CPU_TIME_LIMIT])
    assert rep.scenario is not None
    (guest,) = rep.scenario.vm[0].guest
    assert guest.tool == "perf-record" and guest.workload == "br_instr"
    assert set(guest.events) == {"cycles", "instructions", "branches", "cache-misses"}
    if design == "emulated":
        assert guest.period == PERIOD
    replayed = results(_run(rep.scenario, design))["vm_exits"]
    assert replayed["total"] == pytest.approx(original["total"], rel=0.02)
    for reason, n in original["by_reason"].items():
        if n >= 100:
            assert replayed["by_reason"][reason] == pytest.approx(n, rel=0.02), reason
