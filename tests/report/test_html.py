"""The HTML report: ownership segments and markers from hand-built records, the page's
sections and charts for hand-built and real runs, its determinism and self-containment."""

from __future__ import annotations

import re
from typing import Any

import pytest
from plotly.offline import get_plotlyjs

from vpmu.arch.x86 import msrs
from vpmu.report import html as html_module
from vpmu.report.html import ReportRun, render_html, summary_matrix
from vpmu.report.results import results
from vpmu.report.tables import summary_rows
from vpmu.report.timeline import Segment, markers, ownership, pmu_msr_kind
from vpmu.scenario import load_scenario
from vpmu.scenario.run import build, run
from vpmu.trace import (
    CounterRead,
    GuestPmi,
    ModeChange,
    PerfCall,
    PerfSample,
    PmuContext,
    Record,
    VmExit,
)

from .html_page import blobs, chart_ids, figures, hover_texts, payloads, trace_names, unpack
from .test_results import StubOutcome

END_PS = 100_000_000
"""The hand-built runs end at 100 µs."""
BASE_CHARTS = ("vpmu-exits", "vpmu-msrs", "vpmu-pmi", "vpmu-comparison")
"""The page's charts besides one timeline per run."""


def load(t: int, cost: int, cpu: int = 0, vcpu: int = 0, why: str = "run-loop") -> PmuContext:
    """A load of vm/vcpuN's context."""
    return PmuContext(t, cpu, "guest", "vm", vcpu, cost, why)


def put(t: int, cost: int, cpu: int = 0, vcpu: int = 0, why: str = "run-loop") -> PmuContext:
    """A put of vm/vcpuN's context."""
    return PmuContext(t, cpu, "host", "vm", vcpu, cost, why)


def mediated_records() -> list[Record]:
    """A mediated vCPU on CPU 0 that exits, takes a PMI and leaks to a host reader; CPU 1
    only runs host code."""
    return [
        ModeChange(0, 0, "in-kvm", "vm/vcpu0"), ModeChange(0, 1, "host-user", "task"),
        load(1_000_000, 800_000),
        VmExit(5_000_000, 0, "vm", 0, "MSR_WRITE", msr=msrs.IA32_PERFEVTSEL0, write=True,
               cost_ps=2_000_000, value=0x4300C0),
        put(5_000_000, 900_000),
        GuestPmi(7_000_000, 0, "vm", 0, 6_000_000),
        load(8_000_000, 800_000),
        put(20_000_000, 900_000),
        CounterRead(30_000_000, 0, "reader", 0, 0x1234, origin="vm/vcpu0"),
        CounterRead(31_000_000, 0, "reader", 1, 0, origin="vm/vcpu0"),
        PerfCall(40_000_000, 1, "pause", 3, 500_000),
        PerfSample(41_000_000, 1, 3, "task", "host-user", 10_000),
    ]


def stub_results(records: list[Record], design: str) -> dict[str, Any]:
    """The results of hand-built records."""
    return results(StubOutcome(designs=[design], end_ps=END_PS, records=records))


def stub_run(label: str, records: list[Record]) -> ReportRun:
    """A report run of hand-built records."""
    return ReportRun(label, stub_results(records, label), records, END_PS)


def test_ownership_of_a_mediated_cpu() -> None:
    """Host until the load, switching for its cost, guest until the put, and so on."""
    segs = ownership(mediated_records(), END_PS)
    assert segs[0] == [
        Segment(0, 1_000_000, "host"),
        Segment(1_000_000, 1_800_000, "switching", "vm/vcpu0", "load (run-loop)"),
        Segment(1_800_000, 5_000_000, "guest", "vm/vcpu0"),
        Segment(5_000_000, 5_900_000, "switching", "vm/vcpu0", "put (run-loop)"),
        Segment(5_900_000, 8_000_000, "host"),
        Segment(8_000_000, 8_800_000, "switching", "vm/vcpu0", "load (run-loop)"),
        Segment(8_800_000, 20_000_000, "guest", "vm/vcpu0"),
        Segment(20_000_000, 20_900_000, "switching", "vm/vcpu0", "put (run-loop)"),
        Segment(20_900_000, END_PS, "host"),
    ]
    assert segs[1] == [Segment(0, END_PS, "host")]


def test_ownership_ignores_redundant_switches_and_clips_overlaps() -> None:
    """A load while loaded and a put while the host owns the PMU change nothing; a load that
    starts before the put ended starts at its end; records need not be sorted."""
    recs: list[Record] = [put(2_000, 100), load(1_000, 500), load(1_200, 500, vcpu=1),
                          put(3_000, 1_000), put(3_500, 100), load(3_900, 300)]
    assert ownership(sorted(recs, key=lambda r: -r.t_ps), 5_000)[0] == [
        Segment(0, 1_000, "host"),
        Segment(1_000, 1_500, "switching", "vm/vcpu0", "load (run-loop)"),
        Segment(1_500, 2_000, "guest", "vm/vcpu0"),
        Segment(2_000, 2_100, "switching", "vm/vcpu0", "put (run-loop)"),
        Segment(2_100, 3_900, "host"),
        Segment(3_900, 4_200, "switching", "vm/vcpu0", "load (run-loop)"),
        Segment(4_200, 5_000, "guest", "vm/vcpu0"),
    ]
    overlap: list[Record] = [load(0, 100), put(1_000, 500), load(1_200, 400)]
    assert [s[:3] for s in ownership(overlap, 2_000)[0]] == [
        (0, 100, "switching"), (100, 1_000, "guest"), (1_000, 1_500, "switching"),
        (1_500, 1_600, "switching"), (1_600, 2_000, "guest")]


def test_ownership_without_pmu_context_is_the_host_s() -> None:
    """Emulated and none: every CPU the records name is the host's for the whole run."""
    recs: list[Record] = [ModeChange(0, 2, "guest-user", "vm/vcpu0"),
                          rdpmc_exit(), ModeChange(5, -1, "idle", "x")]
    assert ownership(recs, 1_000) == {0: [Segment(0, 1_000, "host")],
                                      2: [Segment(0, 1_000, "host")]}


def rdpmc_exit() -> VmExit:
    """An RDPMC exit on CPU 0."""
    return VmExit(10, 0, "vm", 0, "RDPMC", value=7)


def test_pmu_msr_kinds() -> None:
    """Counters, selectors and global registers of both vendors; anything else is None."""
    assert pmu_msr_kind(msrs.IA32_PMC0) == pmu_msr_kind(msrs.IA32_A_PMC0 + 3) == "counter"
    assert pmu_msr_kind(msrs.IA32_FIXED_CTR0 + 1) == "counter"
    assert pmu_msr_kind(msrs.MSR_F15H_PERF_CTR0 + 2) == "counter"
    assert pmu_msr_kind(msrs.IA32_PERFEVTSEL0 + 5) == "selector"
    assert pmu_msr_kind(msrs.IA32_FIXED_CTR_CTRL) == "selector"
    assert pmu_msr_kind(msrs.MSR_F15H_PERF_CTL0) == pmu_msr_kind(msrs.MSR_K7_EVNTSEL0) \
        == "selector"
    assert pmu_msr_kind(msrs.IA32_PERF_GLOBAL_CTRL) == "global"
    assert pmu_msr_kind(msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR) == "global"
    assert pmu_msr_kind(msrs.X2APIC_LVTPC) is None
    assert pmu_msr_kind(msrs.MSR_IA32_TSC_DEADLINE) is None


def test_markers_are_the_counter_events() -> None:
    """PMU MSR exits, RDPMC exits, PMIs, host reads (a guest's non-zero value is a leak),
    perf calls and samples; other exits are not markers."""
    recs = [*mediated_records(), rdpmc_exit(),
            VmExit(50, 0, "vm", 0, "MSR_WRITE", msr=msrs.X2APIC_LVTPC, write=True)]
    assert [m.kind for m in markers(recs)] == [
        "pmu_write", "pmi", "leak", "rdpmc", "perf_call", "perf_sample", "pmu_read"]


def test_summary_matrix_keeps_sub_rows_under_their_heading() -> None:
    """A row only the second run has goes before the row it precedes there."""
    a = stub_results([VmExit(0, 0, "vm", 0, "CPUID")], "emulated")
    b = stub_results([VmExit(0, 0, "vm", 0, "HLT")], "mediated")
    keys = [k for k, _ in summary_matrix([a, b])]
    assert keys[keys.index("VM-exits") + 1: keys.index("VM-exits") + 3] == ["  CPUID", "  HLT"]
    assert dict(summary_matrix([a, b]))["  HLT"] == [None, 1]
    assert {k for k, _ in summary_rows(a)} | {k for k, _ in summary_rows(b)} == set(keys)


def test_page_of_hand_built_runs() -> None:
    """Every section, one chart per histogram and one timeline per run, the labels, the
    leak and ownership traces, nothing loaded from the network, the same bytes twice."""
    runs = [stub_run("mediated:clear_on_put=none", mediated_records()),
            stub_run("emulated", [ModeChange(0, 0, "guest-user", "vm/vcpu0"),
                                  GuestPmi(10, 0, "vm", 0, 3_000_000)])]
    page = render_html(runs, title="stub <compare>")
    for section in ("summary", "exits", "msrs", "pmi", "comparison", "timeline"):
        assert f'<section id="{section}">' in page
    assert chart_ids(page) == [*BASE_CHARTS, "vpmu-timeline-0", "vpmu-timeline-1"]
    assert "<title>stub &lt;compare&gt;</title>" in page
    assert page.count("<code>mediated:clear_on_put=none</code>") == 1
    names = trace_names(page)
    assert {"guest vm/vcpu0 context loaded", "host owns the PMU", "switching (load / put)",
            "host owns the PMU (guest counters are host perf events)"} <= names
    assert "LEAK: host RDPMC read a guest's value" in names
    texts = hover_texts(page)
    assert "reader RDPMC ecx=0x0 → 0x1234 · left by guest vm/vcpu0 (a leak)" in texts
    assert "reader RDPMC ecx=0x1 → 0x0 · left by guest vm/vcpu0 (zero: not a leak)" in texts
    assert "vm/vcpu0 WRMSR MSR_P6_EVNTSEL0 = 0x4300c0 (selector) · exit 2,000.0 ns" in texts
    assert "load (run-loop) vm/vcpu0, 800.0 ns" in texts
    assert "PMI to vm/vcpu0 · handler 6,000.0 ns" in texts
    assert payloads(page)["vpmu-timeline-0"]["rows"] == ["cpu0", "cpu1"]
    assert page.count("vpmu.plot(") == 4 and page.count("vpmu.timeline(") == 2
    assert unpack(blobs(page)["vpmu-plotly-js"]) == get_plotlyjs().encode()  # once, packed
    assert len(figures(page)) == 4
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*\bhref=", page)
    assert render_html(runs, title="stub <compare>") == page


def test_page_without_exits_or_pmis() -> None:
    """Empty histograms are notes, not charts; a run without CPUs has no timeline."""
    page = render_html([stub_run("none", [])], title="empty")
    assert chart_ids(page) == []
    for text in ("No VM-exits in any run.", "No MSR exits in any run.",
                 "No guest PMIs in any run.", "No record names a physical CPU"):
        assert text in page


def test_render_html_checks_its_arguments() -> None:
    """No runs, or a budget below one item, is our caller's bug: one clear error."""
    with pytest.raises(ValueError, match="runs must name at least one run"):
        render_html([], title="x")
    with pytest.raises(ValueError, match="timeline_items must be positive, not 0"):
        render_html([stub_run("none", [])], title="x", timeline_items=0)


def real_run(design: str) -> ReportRun:
    """examples/leak-rdpmc-reader.toml over 5 ms under ``design``."""
    scenario = load_scenario("examples/leak-rdpmc-reader.toml", overrides=["duration_ms=5"])
    outcome = run(build(scenario, design, keep_trace=True))
    return ReportRun(design, results(outcome), outcome.records, outcome.end_ps)


@pytest.fixture(scope="module")
def real_runs() -> list[ReportRun]:
    """The leak example under mediated (its clear_on_put=none kept) and emulated."""
    return [real_run("mediated"), real_run("emulated")]


def test_page_of_real_runs(real_runs: list[ReportRun]) -> None:
    """The mediated run loads guest contexts and leaks; the emulated host owns the PMU."""
    mediated, emulated = real_runs
    seg = ownership(mediated.records, mediated.end_ps)[0]
    assert {s.state for s in seg} == {"host", "guest", "switching"}
    assert ownership(emulated.records, emulated.end_ps) == {
        0: [Segment(0, emulated.end_ps, "host")]}
    assert mediated.results["leaks"]["count"] > 0
    page = render_html(real_runs, title="leak-rdpmc-reader")
    # perf stat in the guest takes no PMIs: a note instead of the latency chart
    assert chart_ids(page) == ["vpmu-exits", "vpmu-msrs", "vpmu-comparison",
                               "vpmu-timeline-0", "vpmu-timeline-1"]
    assert "No guest PMIs in any run." in page
    assert "<h3>mediated</h3>" in page and "<h3>emulated</h3>" in page
    names = trace_names(page)
    assert {"guest vm0/vcpu0 context loaded", "LEAK: host RDPMC read a guest's value",
            "host owns the PMU (guest counters are host perf events)"} <= names
    assert render_html(real_runs, title="leak-rdpmc-reader") == page
    assert len(page.encode()) < 2_500_000


def test_page_budget_is_shared_by_the_runs(real_runs: list[ReportRun],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run's timeline gets the page's budget over the runs (at least MIN_RUN_ITEMS); a
    run with more items is stored in buckets, as many as the budget allows at most."""
    monkeypatch.setattr(html_module, "MIN_RUN_ITEMS", 10)
    page = render_html(real_runs, title="x", timeline_items=100)
    for payload in payloads(page).values():
        assert payload["bucket"] > 0 and payload["items"] > 50
        assert sum(len(t["t"]) for t in payload["segs"] + payload["marks"]) <= 50
    monkeypatch.setattr(html_module, "MIN_RUN_ITEMS", 1_000)
    page = render_html(real_runs, title="x", timeline_items=100)
    assert [p["bucket"] for p in payloads(page).values()] == [0, 0]
