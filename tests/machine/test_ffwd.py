"""The idle fast-forward gives exactly the results step-by-step execution gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpmu.machine.ffwd import IdleFastForward
from vpmu.report.results import dumps, results
from vpmu.scenario.load import load_scenario
from vpmu.scenario.run import RunOutcome, build, run

ROOT = Path(__file__).resolve().parents[2]
IDLE = ROOT / "benchmarks" / "idle-guest.toml"


def _both(path: Path, design: str, overrides: list[str]) -> tuple[RunOutcome, RunOutcome]:
    scenario = load_scenario(path, overrides=overrides)
    slow = run(build(scenario, design, fast_forward=False))
    fast = run(build(scenario, design, fast_forward=True))
    return slow, fast


@pytest.mark.parametrize("design", ["emulated", "mediated", "none"])
def test_idle_guest_fast_forward_matches_step_by_step(design: str) -> None:
    slow, fast = _both(IDLE, design, ["duration_ms=200"])
    assert isinstance(fast.host.ffwd, IdleFastForward) and fast.host.ffwd.periods_skipped > 0
    assert fast.records == slow.records
    assert fast.host.sched.tasks[0].truth == slow.host.sched.tasks[0].truth
    assert dumps(results(fast)) == dumps(results(slow))


def test_pmu_active_scenario_is_not_fast_forwarded() -> None:
    slow, fast = _both(ROOT / "examples" / "seed-001.toml", "emulated",
                       ["duration_ms=10", "vm[0].guest[0].runs=1"])
    ffwd = fast.host.ffwd
    assert not isinstance(ffwd, IdleFastForward) or ffwd.periods_skipped == 0
    assert dumps(results(fast)) == dumps(results(slow))
