"""The guest LBR sampler (a kernel module reading the LBR from the timer, no counter): under
emulated it reads its own records at every tick; a guest without LBR runs the workload
unsampled; and the example comparing the save points fills the results' lbr block."""

from __future__ import annotations

from pathlib import Path

from vpmu.guest.linux.lbr_sampler import LbrSamplerResult
from vpmu.report.results import results
from vpmu.scenario import load_scenario
from vpmu.scenario.run import build, run

EXAMPLE = Path(__file__).parents[2] / "examples" / "lbr-save-point.toml"


def _run(design: str, *overrides: str) -> tuple[LbrSamplerResult, dict[str, object]]:
    sc = load_scenario(EXAMPLE, overrides=["duration_ms=20", *overrides])
    outcome = run(build(sc, design))
    (result,) = outcome.guest_results()["guest/vcpu0"]
    assert isinstance(result, LbrSamplerResult)
    return result, results(outcome)


def test_the_sampler_reads_a_stack_at_every_tick() -> None:
    """One sample per 4 kHz guest tick the vCPU takes: at least one per tick period of guest
    time, at most one per period of the whole run (the vCPU shares its CPU with the host
    task, and a tick that fires while it is switched out waits); every one holds records."""
    result, data = _run("emulated")
    end_ms = data["sim"]["end_ms"]  # type: ignore[index]
    guest_ms = data["overhead"]["guest_ns"] / 1e6  # type: ignore[index]
    assert result.supported and result.empty == 0
    assert 4 * guest_ms - 1 <= result.samples <= 4 * end_ms
    assert data["lbr"] is not None


def test_without_guest_lbr_nothing_is_sampled() -> None:
    result, data = _run("emulated:lbr=false")
    assert not result.supported and result.samples == 0
    assert data["lbr"] is None


def test_vm_transition_costs_more_per_guest_second_than_thread_switch() -> None:
    """The example's point: a save at every exit and a restore at every entry against a
    save at each switch of the vCPU thread (whose restores find the stack in place)."""
    _, thread = _run("emulated")
    _, transition = _run("emulated:lbr_save_point=vm-transition")
    t = thread["lbr"]["by_why"]["thread-switch"]          # type: ignore[index]
    v = transition["lbr"]["by_why"]["vm-transition"]      # type: ignore[index]
    assert t["restores"] == 0 < t["saves"]
    assert v["saves"] >= v["restores"] > 10 * t["saves"]
    assert v["cycles_per_guest_s"] > 10 * t["cycles_per_guest_s"]
