"""A repeated period added at once (``RunMetrics.repeat``) gives every section exactly what
folding each copy gives, on real record streams: any window of a run's records, repeated one
period apart after the run, is a periodic input. Where the window changes what is not a sum
(a host event's blind gaps, pollution stretches, leak observations) the copies are folded
one by one, and the sections still match."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from vpmu.metrics import RunMetrics
from vpmu.scenario import load_scenario
from vpmu.scenario.run import build, run
from vpmu.trace import Record, VmExit
from vpmu.trace.records import shifted

EXAMPLES = Path(__file__).parents[2] / "examples"
RUNS = [("seed-001", "emulated", 4), ("seed-001", "mediated", 4),
        ("blind-spot-vcpu-load", None, 12), ("leak-rdpmc-reader", None, 5)]
"""(example, design or the file's, duration_ms): exits and PMIs under both designs, mediated
contexts, a host exclude_guest event's blind time, RDPMC leaks."""


@cache
def records(i: int) -> tuple[list[Record], int, tuple[str, ...]]:
    """Run ``RUNS[i]`` with its trace kept: its records, end and vCPU tasks."""
    example, design, ms = RUNS[i]
    sc = load_scenario(EXAMPLES / f"{example}.toml", overrides=[f"duration_ms={ms}"])
    outcome = run(build(sc, design, keep_trace=True))
    return outcome.records, outcome.end_ps, tuple(outcome.vcpu_tasks)


def _end(r: Record) -> int:
    return r.t_ps + r.cost_ps if isinstance(r, VmExit) else r.t_ps


def state(m: RunMetrics) -> tuple[object, ...]:
    """What a later record meets: every timeline's and fastpath bookkeeping's state."""
    return ({cpu: (tl.mark(), tl.loaded) for cpu, tl in m.timelines.cpus.items()},
            {cpu: fp.mark() for cpu, fp in m.host_profiling.fastpath.items()})


def both(run_index: int, start: int, length: int, times: int) -> tuple[RunMetrics, str, str]:
    """The run's records, then the window ``[start, start + length)`` repeated ``times``
    times one period apart (the window's span, and more), then the whole run again after
    them (what follows must find the state the copies left): the sections with the copies
    added by ``repeat`` and folded one by one."""
    recs, end, tasks = records(run_index)
    block = recs[start:start + length]
    period = max(map(_end, recs)) - min(r.t_ps for r in block) + 1
    last = max(map(_end, block)) + times * period
    bulk, folded = RunMetrics(), RunMetrics()
    for r in recs:
        bulk(r)
        folded(r)
    bulk.repeat(block, times, period)
    for r in shifted(block, times, period):
        folded(r)
    assert state(bulk) == state(folded)
    for r in shifted(recs, 1, last + 1):
        bulk(r)
        folded(r)
    sections = [json.dumps(m.sections(end + last + 1, tasks)) for m in (bulk, folded)]
    assert bulk.records == folded.records
    return bulk, sections[0], sections[1]


@settings(max_examples=60, deadline=None)
@given(run_index=st.integers(0, len(RUNS) - 1), start=st.floats(0, 1),
       length=st.integers(1, 400), times=st.integers(1, 50))
def test_a_repeat_added_at_once_equals_folding_every_copy(
        run_index: int, start: float, length: int, times: int) -> None:
    recs = records(run_index)[0]
    first = int(start * (len(recs) - 1))
    _, bulk, folded = both(run_index, first, length, times)
    assert bulk == folded


def test_an_idle_period_is_added_at_once() -> None:
    """A window of guest compute under each design (no host event, no leak) takes the bulk
    path: all but two copies are added without folding."""
    for i in (0, 1):
        metrics, bulk, folded = both(i, 0, 300, 1000)
        assert bulk == folded
        assert metrics.periods_added == 998


def test_a_window_with_a_blind_host_event_folds_every_copy() -> None:
    """A host exclude_guest event's blind gaps are maxima, not sums: its copies are folded."""
    recs = records(2)[0]
    metrics, bulk, folded = both(2, len(recs) // 2, 300, 10)
    assert bulk == folded
    assert metrics.periods_added == 0
    assert json.loads(bulk)["host_profiling"]["events"]
