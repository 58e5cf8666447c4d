"""The idle fast-forward gives exactly the results step-by-step execution gives."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from vpmu.machine.ffwd import IdleFastForward
from vpmu.machine.vm import run_until_done
from vpmu.report.results import dumps, results
from vpmu.scenario.load import load_scenario
from vpmu.scenario.run import RunOutcome, build, run

ROOT = Path(__file__).resolve().parents[2]
IDLE = ROOT / "benchmarks" / "idle-guest.toml"


def _both(path: Path, design: str, overrides: list[str]) -> tuple[RunOutcome, RunOutcome]:
    scenario = load_scenario(path, overrides=overrides)
    slow = run(build(scenario, design, fast_forward=False, keep_trace=True))
    fast = run(build(scenario, design, fast_forward=True, keep_trace=True))
    return slow, fast


def _results(outcome: RunOutcome) -> str:
    """The results JSON, ``sim.events`` included (a skipped period counts the events it
    would have taken)."""
    data: dict[str, Any] = results(outcome)
    return dumps(data)


def _assert_same(slow: RunOutcome, fast: RunOutcome) -> None:
    """Records, every task's ground truth and the results are those of step by step."""
    assert fast.records == slow.records
    assert [t.truth for t in fast.host.sched.tasks] == [t.truth for t in slow.host.sched.tasks]
    assert _results(fast) == _results(slow)


@pytest.mark.parametrize("design", ["emulated", "mediated", "none"])
def test_idle_guest_fast_forward_matches_step_by_step(design: str) -> None:
    slow, fast = _both(IDLE, design, ["duration_ms=200"])
    assert isinstance(fast.host.ffwd, IdleFastForward) and fast.host.ffwd.periods_skipped > 0
    _assert_same(slow, fast)


def test_a_long_skip_matches_step_by_step() -> None:
    """Thousands of 4 ms periods in one skip: the main stream's per-slice rounding flips
    many times over them, which the replay must reproduce."""
    slow, fast = _both(IDLE, "emulated", ["duration_ms=9000"])
    ffwd = fast.host.ffwd
    assert isinstance(ffwd, IdleFastForward)
    assert ffwd.periods_skipped >= 2000
    _assert_same(slow, fast)


def test_a_skip_passes_the_polls_of_run_until_done() -> None:
    """Polled from the start in 1 ms steps (as the tail of every run is), the guest is
    skipped across hundreds of polls, and the run still ends at the step step by step
    ends at, with the same records."""
    scenario = load_scenario(IDLE, overrides=["duration_ms=2000"])
    slow = run(build(scenario, "emulated", fast_forward=False, keep_trace=True))
    fast = build(scenario, "emulated", fast_forward=True, keep_trace=True)
    assert run_until_done(fast.host, fast.vms, limit_ps=2 * slow.end_ps)
    fast.end_ps = fast.host.env.now_ps
    ffwd = fast.host.ffwd
    assert isinstance(ffwd, IdleFastForward) and ffwd.periods_skipped > 400
    _assert_same(slow, fast)


def test_progress_steps_do_not_bound_a_skip() -> None:
    """A run that reports progress (200 steps, as the CLI's) skips across its steps and
    gives step by step's results."""
    scenario = load_scenario(IDLE, overrides=["duration_ms=2000"])
    slow = run(build(scenario, "emulated", fast_forward=False, keep_trace=True))
    seen: list[int] = []
    fast = run(build(scenario, "emulated", fast_forward=True, keep_trace=True),
               lambda now, _: seen.append(now))
    ffwd = fast.host.ffwd
    assert isinstance(ffwd, IdleFastForward) and ffwd.skips == 1
    step = 2 * 10**12 // 200  # the progress step: duration / PROGRESS_STEPS
    assert max(b - a for a, b in itertools.pairwise(seen)) > 100 * step
    assert seen[-1] == 2 * 10**12
    _assert_same(slow, fast)


def test_pmu_active_scenario_is_not_fast_forwarded() -> None:
    slow, fast = _both(ROOT / "examples" / "seed-001.toml", "emulated",
                       ["duration_ms=10", "vm[0].guest[0].runs=1"])
    ffwd = fast.host.ffwd
    assert not isinstance(ffwd, IdleFastForward) or ffwd.periods_skipped == 0
    assert _results(fast) == _results(slow)


@pytest.mark.parametrize("design", ["emulated", "mediated"])
def test_streamed_metrics_of_a_fast_forward_match_step_by_step(design: str) -> None:
    """Without a kept trace the skipped periods' records reach the run's metrics through
    ``Trace.repeat``: the results are step by step's, byte for byte."""
    scenario = load_scenario(IDLE, overrides=["duration_ms=300"])
    slow = run(build(scenario, design, fast_forward=False))
    fast = run(build(scenario, design, fast_forward=True))
    assert isinstance(fast.host.ffwd, IdleFastForward) and fast.host.ffwd.periods_skipped > 0
    assert _results(fast) == _results(slow)
