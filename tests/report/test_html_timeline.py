"""The HTML report's whole-run timeline and its size: buckets and spans from hand-built data,
the payload of a short seed-001 run (it covers [0, end], stored one by one or in buckets),
the page's size bound, its determinism, the comparison only where two runs have a value, and
the summary's opening on the guest's cost.

The full seed-001 size check is a benchmark (benchmarks/bench_html.py), not a test: it takes
about 20 s."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from vpmu.report.charts import comparison_figure
from vpmu.report.html import ReportRun, render_html
from vpmu.report.html_js import DETAIL_ITEMS, plotly_js_packed
from vpmu.report.html_timeline import timeline_payload
from vpmu.report.results import results
from vpmu.report.timeline import Marker, Segment, Span, buckets, markers, spans
from vpmu.scenario import load_scenario
from vpmu.scenario.run import build, run

from .html_page import absolute, chart_ids, payloads

SHORT_MS = 10
"""seed-001 shortened to 10 ms of guest work: its guests end at 42 ms, with about 16,000
timeline items under emulated; 0.5 s to run."""
DATA_BYTES_PER_ITEM = 3
"""Packed timeline bytes per item: seed-001 takes 2.0 over 10 ms and 1.8 over the whole run
(its hover texts repeat); 3 leaves room for runs whose values vary more."""
CHARTS_BYTES = 60_000
"""The page besides plotly.js and the timelines: tables, histograms and the script (25 kB
for seed-001)."""
HOST, GUEST, SWITCH = ("host", ""), ("guest", "vm/vcpu0"), ("switching", "vm/vcpu0")


def seed_run(design: str, duration_ms: int = SHORT_MS) -> ReportRun:
    """examples/seed-001.toml shortened, under ``design``, its trace kept."""
    scenario = load_scenario("examples/seed-001.toml",
                             overrides=[f"duration_ms={duration_ms}"])
    outcome = run(build(scenario, design, keep_trace=True))
    return ReportRun(design, results(outcome), outcome.records, outcome.end_ps)


@pytest.fixture(scope="module")
def seed_runs() -> list[ReportRun]:
    """seed-001 over 10 ms under emulated and mediated."""
    return [seed_run("emulated"), seed_run("mediated")]


def test_buckets_group_markers_by_kind_cpu_and_time() -> None:
    """Each group keeps its first marker and counts the rest, in order of first markers."""
    marks = [Marker(5, 0, "pmi", "a"), Marker(7, 0, "pmi", "b"), Marker(8, 1, "pmi", "c"),
             Marker(9, 0, "perf_call", "d"), Marker(12, 0, "pmi", "e")]
    assert buckets(marks, 10) == [(marks[0], 2), (marks[2], 1), (marks[3], 1), (marks[4], 1)]
    assert buckets(marks, 1) == [(m, 1) for m in marks]


def test_spans_give_each_bucket_to_the_longest_holder() -> None:
    """A bucket goes to the state that held the PMU longest in it; neighbouring buckets of
    one state merge, with every state's share."""
    segs = [Segment(0, 1500, "host"), Segment(1500, 1700, "switching", "vm/vcpu0", "load"),
            Segment(1700, 5000, "guest", "vm/vcpu0")]
    assert spans(segs, 1000) == [
        Span(0, 2000, HOST, ((HOST, 1500), (GUEST, 300), (SWITCH, 200))),
        Span(2000, 5000, GUEST, ((GUEST, 3000),))]
    assert spans(segs, 1) == [Span(s.start_ps, s.end_ps, (s.state, s.guest),
                                   (((s.state, s.guest), s.end_ps - s.start_ps),))
                              for s in segs]


def test_spans_of_a_long_segment_skip_its_buckets() -> None:
    """A segment over 10^12 buckets is one span at once (the work is per segment)."""
    assert spans([Segment(0, 10**12, "host")], 1) == [Span(0, 10**12, HOST, ((HOST, 10**12),))]


def covered(payload: dict[str, Any]) -> dict[int, list[tuple[int, int]]]:
    """Each row's drawn segments, [start, end) in ns, in time order."""
    rows: dict[int, list[tuple[int, int]]] = {}
    for trace in payload["segs"]:
        for t, dur, row in zip(absolute(trace["t"]), trace["dur"], trace["row"], strict=True):
            rows.setdefault(row, []).append((t, t + dur))
    return {row: sorted(spans_) for row, spans_ in rows.items()}


@pytest.mark.parametrize("budget", [10**6, 500], ids=["one-by-one", "buckets"])
def test_payload_covers_the_whole_run(seed_runs: list[ReportRun], budget: int) -> None:
    """Every CPU's bars run from 0 to the end without a gap, and the last markers are near
    the end, whether items are stored one by one or in buckets."""
    for r in seed_runs:
        payload = timeline_payload(r.records, r.end_ps, budget=budget)
        assert payload is not None and payload["end"] == r.end_ps // 1000
        assert (payload["bucket"] > 0) == (payload["items"] > budget)
        for row, segs in covered(payload).items():
            assert segs[0][0] == 0 and segs[-1][1] == payload["end"], row
            assert all(a[1] == b[0] for a, b in itertools.pairwise(segs)), row
        last = max(absolute(trace["t"])[-1] for trace in payload["marks"])
        assert last > 0.95 * payload["end"]
        drawn = sum(len(t["t"]) for t in payload["segs"] + payload["marks"])
        assert drawn <= budget
        counts = [n for t in payload["marks"] for n in t.get("n", [1] * len(t["t"]))]
        assert sum(counts) == len(markers(r.records))


def test_short_seed_page_is_small_and_deterministic(seed_runs: list[ReportRun]) -> None:
    """The page is plotly.js packed, the charts and a few bytes per timeline item; the same
    runs give the same bytes; the emulated run has more than one screen of detail, so the
    page opens on buckets."""
    for runs in ([seed_runs[0]], seed_runs):
        page = render_html(runs, title="seed-001")
        items = sum(p["items"] for p in payloads(page).values())
        bound = len(plotly_js_packed()) + CHARTS_BYTES + DATA_BYTES_PER_ITEM * items
        assert len(page.encode()) < bound
        assert render_html(copy.deepcopy(runs), title="seed-001") == page
    assert payloads(render_html(seed_runs, title="x"))["vpmu-timeline-0"]["items"] \
        > DETAIL_ITEMS


def test_a_single_run_draws_no_comparison(seed_runs: list[ReportRun]) -> None:
    """One run: its headline figures are a table, not one-bar charts."""
    page = render_html([seed_runs[0]], title="x")
    assert "vpmu-comparison" not in chart_ids(page)
    assert "<h2>Headline figures</h2>" in page and '<table class="headline">' in page
    assert "<td>VM-exits per guest PMI</td>" in page
    assert "vpmu-comparison" in chart_ids(render_html(seed_runs, title="x"))


def test_comparison_draws_only_what_two_runs_have() -> None:
    """A metric one run lacks is listed with its value, not drawn; one no run has (or zero
    in every run) is listed as such; none drawn without two runs to compare."""
    base = {"vm_exits": {"total": 10}, "guest_pmi": {"count": 2},
            "overhead": {"slowdown": 1.2}}
    other = {"vm_exits": {"total": 30}, "guest_pmi": {"count": 0},
             "overhead": {"slowdown": None, "pmu_switch": {"switches": 5}}}
    cmp = comparison_figure(["a", "b"], [base, other])
    assert cmp.figure is not None
    titles = [a.text for a in cmp.figure.layout.annotations]
    assert titles == ["VM-exits"]
    assert ("vCPU slowdown", 0, 1.2) in cmp.one and ("VM-exits per guest PMI", 0, 5.0) in cmp.one
    assert ("PMU context switches", 1, 5) in cmp.one
    assert "perf calls" in cmp.none
    assert comparison_figure(["a", "b"], [base, {}]).figure is None


def test_summary_opens_with_the_guest_s_cost(seed_runs: list[ReportRun]) -> None:
    """overhead.vs_unprofiled / vs_bare_metal lead the summary when measured; null or
    absent, the page says they were not measured and renders all the same."""
    r = seed_runs[0]
    data = copy.deepcopy(r.results)
    data["overhead"].update(vs_unprofiled=0.05, vs_bare_metal=0.012)
    page = render_html([ReportRun("emulated", data, r.records, r.end_ps)], title="x")
    lead = page[page.index('<section id="summary">'):page.index("<table")]
    assert "profiling costs the guest +5.0% time" in lead and "+1.2%" in lead
    for value in (None, "absent"):
        data = copy.deepcopy(r.results)
        for key in ("vs_unprofiled", "vs_bare_metal"):
            if value is None:
                data["overhead"][key] = None
            else:
                data["overhead"].pop(key, None)
        page = render_html([ReportRun("emulated", data, r.records, r.end_ps)], title="x")
        assert "not measured" in page[page.index('<section id="summary">'):]
