"""Streamed metrics: a run's records fold into ``RunMetrics`` as they are emitted and the trace
is not kept. The sections equal those of the kept trace fed afterwards in time order (what
the pure functions do), and the streamed exports equal the exports of the kept trace."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from vpmu.metrics import RunMetrics
from vpmu.metrics.exposure import MAX_OBSERVATIONS, Leaks
from vpmu.metrics.timeline import RecordOrderError
from vpmu.report.kvm_stat import KvmStat, kvm_stat_report
from vpmu.report.results import dumps, results
from vpmu.scenario import load_scenario
from vpmu.scenario.run import RunOutcome, build, run
from vpmu.trace import CounterRead, ModeChange, Sink, Trace, TraceNotKeptError, VmExit
from vpmu.trace.ftrace import MAX_RUNS, FtraceWriter, ftrace_text

EXAMPLES = Path(__file__).parents[2] / "examples"

RUNS = [
    ("seed-001", "emulated", 5),
    ("seed-001", "mediated", 5),
    ("seed-001", "none", 5),
    ("blind-spot-vcpu-load", None, 12),   # host perf record -C 0 (exclude_guest), mediated
    ("leak-rdpmc-reader", None, 5),       # a host RDPMC reader, mediated
    ("leak-rdpmc-reader", "emulated", 5),
]
"""(example, design or the file's, duration_ms): every design, and host tools."""


def kept_run(example: str, design: str | None, duration_ms: int,
             sinks: Sequence[Sink] = ()) -> RunOutcome:
    """The example, shortened, run with its trace kept (and ``sinks`` subscribed)."""
    sc = load_scenario(EXAMPLES / f"{example}.toml", overrides=[f"duration_ms={duration_ms}"])
    return run(build(sc, design, keep_trace=True, sinks=sinks))


@pytest.fixture(scope="module", params=RUNS, ids=lambda p: f"{p[0]}-{p[1] or 'own'}")
def outcome(request: pytest.FixtureRequest) -> RunOutcome:
    example, design, duration_ms = request.param
    return kept_run(example, design, duration_ms)


def test_streamed_sections_equal_the_kept_traces(outcome: RunOutcome) -> None:
    """Folded as emitted (intervals arrive when they end) or fed sorted by time afterwards,
    every section is the same, and every record was counted."""
    end, tasks = outcome.end_ps, outcome.vcpu_tasks
    streamed = outcome.metrics.sections(end, tasks)
    kept = RunMetrics.of(outcome.records).sections(end, tasks)
    assert json.dumps(streamed) == json.dumps(kept)
    assert outcome.metrics.records == len(outcome.records) > 0


def test_the_runs_exercise_what_they_compare(outcome: RunOutcome) -> None:
    """Not an empty comparison: the mediated runs with host tools measure blind time, leaks
    and pollution; the others exits (or, under none, no PMU at all)."""
    data = results(outcome)
    name, design = outcome.scenario.name, data["design"]
    if name == "blind-spot-vcpu-load":
        assert data["host_profiling"]["blind_ns_total"] > 0
    elif name == "leak-rdpmc-reader" and design == "mediated":
        assert data["leaks"]["count"] > 0 and data["pollution"]["host_ns"] > 0
    elif design != "none":
        assert data["guest_pmi"]["count"] > 0 or data["vm_exits"]["total"] > 0


def test_keeping_the_trace_changes_no_result() -> None:
    """The same run with and without its trace kept gives the same results JSON."""
    sc = load_scenario(EXAMPLES / "seed-001.toml", overrides=["duration_ms=5"])
    streamed, kept = run(build(sc, "mediated")), run(build(sc, "mediated", keep_trace=True))
    assert dumps(results(streamed)) == dumps(results(kept))


def test_a_run_keeps_no_trace_unless_asked() -> None:
    """By default the records are folded and dropped: reading them is a clear error."""
    sc = load_scenario(EXAMPLES / "perf-stat.toml", overrides=["duration_ms=2"])
    outcome = run(build(sc))
    assert outcome.metrics.records > 0
    with pytest.raises(TraceNotKeptError, match="keep_trace=True"):
        _ = outcome.records


def test_streamed_exports_equal_the_kept_traces() -> None:
    """--ftrace-out and --kvm-stat built during the run (the ftrace lines sorted in runs of
    7 spilled to files, merged every MAX_RUNS files) are byte-identical to the exports of
    the kept records."""
    ftrace, stat = FtraceWriter(run_lines=7), KvmStat()
    outcome = kept_run("seed-001", "emulated", 5, sinks=[ftrace, stat])
    assert ftrace.lines > 7 * MAX_RUNS * 2
    streamed = io.StringIO()
    ftrace.write(streamed)
    assert streamed.getvalue() == ftrace_text(outcome.records)
    assert stat.report() == kvm_stat_report(outcome.records)


def test_a_cpu_going_back_in_time_is_an_error() -> None:
    """The sweep relies on each CPU's instants and exits coming in time order (a run's do)."""
    metrics = RunMetrics()
    metrics(ModeChange(100, 0, "in-kvm", "t"))
    metrics(ModeChange(50, 1, "in-kvm", "t"))  # another CPU may be behind
    with pytest.raises(RecordOrderError, match="CPU 0"):
        metrics(ModeChange(99, 0, "host-user", "t"))
    metrics(VmExit(40, 0, "vm", 0, "HLT", cost_ps=60))
    with pytest.raises(RecordOrderError, match="VM-exit"):
        metrics(VmExit(30, 0, "vm", 0, "HLT", cost_ps=70))


def test_leaks_keep_the_first_observations_in_any_arrival_order() -> None:
    """Leaks keep a bounded list: fed 450 reads latest first, the section still lists the
    100 earliest, and counts all."""
    fold = Leaks()
    for t in reversed(range(450)):
        fold.feed(CounterRead(t, t % 3, "reader", 0, t + 1, "vm0/vcpu0"))
        assert len(fold.first) < 2 * MAX_OBSERVATIONS
    section = fold.leaks()
    assert section["count"] == 450 and section["truncated"]
    assert [o["value"] for o in section["observations"]] == list(range(1, 101))


def test_trace_sinks_and_keeping() -> None:
    """A trace hands each record to its sinks and keeps it only while asked to."""
    seen: list[object] = []
    trace = Trace(keep=False)
    trace.emit(ModeChange(0, 0, "idle", "idle"))  # nobody listens: dropped
    trace.subscribe(seen.append)
    trace.emit(first := ModeChange(1, 0, "idle", "idle"))
    assert seen == [first] and not trace.kept
    trace.keep(True)
    trace.emit(second := ModeChange(2, 0, "idle", "idle"))
    assert seen == [first, second] and trace.records == [second]
    trace.keep(False)
    with pytest.raises(TraceNotKeptError):
        _ = trace.records
