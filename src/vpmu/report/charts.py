"""Plotly figures of the HTML report from the results and records: the VM-exit and MSR
histograms, the guest PMI latency distribution and the per-design comparison (drawn only for
metrics that two or more runs have).

Every figure is built from plain data in a fixed order, so the same runs give the same page.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import plotly.graph_objects as go
from plotly.io.json import to_json_plotly
from plotly.subplots import make_subplots

from vpmu.metrics.results import ns, percentile
from vpmu.report.tables import fmt

PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692",
           "#b6e880", "#ff97ff", "#fecb52")
"""One colour per run, in run order (plotly's default colourway)."""
TEMPLATE = go.layout.Template(layout={
    "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#2a3f5f"},
    "paper_bgcolor": "white", "plot_bgcolor": "#f4f6fa", "hovermode": "closest",
    "hoverlabel": {"align": "left"}, "colorway": list(PALETTE),
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "xaxis": {"gridcolor": "white", "automargin": True},
    "yaxis": {"gridcolor": "white", "automargin": True},
})
"""A small template (plotly's default one adds ~8 kB of JSON to every figure)."""
CONFIG = {"displaylogo": False, "responsive": True}
"""plotly.js options: no link to plotly's site (the page works offline)."""
MSR_TOP = 20
"""MSR-access histogram: the most frequent (direction, MSR) pairs shown."""
LATENCY_BINS = 40
"""PMI latency histogram bins, shared by every run, up to the largest p99."""


def color(i: int) -> str:
    """Run ``i``'s colour."""
    return PALETTE[i % len(PALETTE)]


def figure_div(fig: go.Figure, div_id: str) -> str:
    """A figure as a ``<div>`` with a fixed id and the script that draws it once the page
    has unpacked plotly.js (``vpmu.plot``, ``vpmu.report.html_js``)."""
    fig.update_layout(template=TEMPLATE)
    spec = fig.to_plotly_json()
    data, layout = to_json_plotly(spec["data"]), to_json_plotly(spec["layout"])
    return (f'<div id="{div_id}" class="plotly-graph-div" style="height:{fig.layout.height}px;'
            f' width:100%;"></div>\n<script>vpmu.plot("{div_id}", {data}, {layout}, '
            f'{json.dumps(CONFIG)});</script>')


def _ranked(counts: Sequence[dict[str, int]]) -> list[str]:
    """Keys by total over the runs, most first, ties by name."""
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return [k for k, _ in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))]


def _grouped(labels: Sequence[str], counts: Sequence[dict[str, int]], keys: Sequence[str], *,
             horizontal: bool) -> go.Figure:
    """Grouped bars: one series per run over ``keys``."""
    fig = go.Figure()
    for i, (label, c) in enumerate(zip(labels, counts, strict=True)):
        values = [c.get(k, 0) for k in keys]
        xy = {"x": values, "y": list(keys)} if horizontal else {"x": list(keys), "y": values}
        fig.add_trace(go.Bar(name=html.escape(label), marker_color=color(i),
                             orientation="h" if horizontal else "v", **xy))
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return fig


def exits_figure(labels: Sequence[str], datas: Sequence[dict[str, Any]]) -> go.Figure | None:
    """VM-exits by VMX reason, one series per run; None when no run exited."""
    counts = [d["vm_exits"]["by_reason"] for d in datas]
    keys = _ranked(counts)
    if not keys:
        return None
    fig = _grouped(labels, counts, keys, horizontal=False)
    fig.update_layout(height=420, yaxis_title="VM-exits", xaxis_title="exit reason")
    return fig


def msr_figure(labels: Sequence[str], datas: Sequence[dict[str, Any]], *,
               top: int = MSR_TOP) -> go.Figure | None:
    """MSR exits by (direction, MSR name): the ``top`` most frequent; None without any."""
    counts = [d["msr_exits"]["by_msr"] for d in datas]
    keys = _ranked(counts)[:top]
    if not keys:
        return None
    fig = _grouped(labels, counts, keys, horizontal=True)
    fig.update_layout(height=140 + len(keys) * (8 + 10 * len(labels)), xaxis_title="MSR exits",
                      yaxis={"autorange": "reversed"})
    return fig


def pmi_figure(labels: Sequence[str], latencies_ps: Sequence[Sequence[int]]) -> go.Figure | None:
    """Guest PMI handler latency: a histogram (shared bins; the last holds everything above
    the largest p99) and a box per run (min, quartiles, max, mean). None without PMIs."""
    lats = [sorted(run) for run in latencies_ps]
    if not any(lats):
        return None
    lo = min(run[0] for run in lats if run) / 1000
    hi = max(percentile(run, 0.99) for run in lats if run) / 1000
    width = max(hi - lo, 1.0) / LATENCY_BINS
    fig = make_subplots(rows=1, cols=2, column_widths=[0.66, 0.34], horizontal_spacing=0.08,
                        subplot_titles=("handler latency histogram", "per run"))
    for i, (label, run) in enumerate(zip(labels, lats, strict=True)):
        if not run:
            continue
        bins = Counter(min(int((v / 1000 - lo) / width), LATENCY_BINS - 1) for v in run)
        left = [round(lo + b * width, 1) for b in sorted(bins)]
        fig.add_trace(go.Bar(
            x=[round(x + width / 2, 1) for x in left], y=[bins[b] for b in sorted(bins)],
            width=width, name=html.escape(label), marker_color=color(i), opacity=0.6,
            legendgroup=str(i), hovertext=[f"{x:,.1f}–{x + width:,.1f} ns" for x in left]),
            row=1, col=1)
        fig.add_trace(go.Box(
            x=[html.escape(label)], q1=[ns(percentile(run, 0.25))],
            median=[ns(percentile(run, 0.5))], q3=[ns(percentile(run, 0.75))],
            lowerfence=[ns(run[0])], upperfence=[ns(run[-1])], mean=[ns(sum(run) / len(run))],
            name=html.escape(label), marker_color=color(i), legendgroup=str(i),
            showlegend=False), row=1, col=2)
    fig.update_layout(height=420, barmode="overlay", bargap=0,
                      legend={"orientation": "h", "y": 1.08, "yanchor": "bottom"})
    fig.update_xaxes(title_text="latency (ns; last bin: above)", row=1, col=1)
    fig.update_yaxes(title_text="guest PMIs", row=1, col=1)
    fig.update_yaxes(title_text="latency (ns)", row=1, col=2)
    return fig


def _get(*path: str) -> Callable[[dict[str, Any]], Any]:
    """A getter of ``data[path[0]][path[1]]...``, None where a level is missing or null."""
    def get(data: dict[str, Any]) -> Any:
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value
    return get


def _exits_per_pmi(data: dict[str, Any]) -> float | None:
    pmis, exits = _get("guest_pmi", "count")(data), _get("vm_exits", "total")(data)
    return round(exits / pmis, 3) if pmis and exits is not None else None


COMPARED: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("VM-exits", _get("vm_exits", "total")),
    ("VM-exits per guest PMI", _exits_per_pmi),
    ("PMU/APIC MSR exits", _get("msr_exits", "total")),
    ("PMI handler latency mean (ns)", _get("guest_pmi", "handler_latency_ns", "mean")),
    ("PMI handler latency p99 (ns)", _get("guest_pmi", "handler_latency_ns", "p99")),
    ("vCPU slowdown", _get("overhead", "slowdown")),
    ("KVM time per guest second (ns)", _get("overhead", "kvm_per_guest_s_ns")),
    ("perf calls", _get("perf_calls", "total")),
    ("perf-call time (ns)", _get("overhead", "by_cause_ns", "perf_calls")),
    ("PMU switch time (ns)", _get("overhead", "by_cause_ns", "pmu_switch")),
    ("PMU context switches", _get("overhead", "pmu_switch", "switches")),
    ("host events blind (ns)", _get("host_profiling", "blind_ns_total")),
    ("leaked guest values seen", _get("leaks", "count")),
    ("host time with guest selectors on (ns)", _get("pollution", "host_ns")),
    ("accuracy: worst |error|", _get("accuracy", "worst_abs_error")),
)
"""The per-design comparison: (title, value of one run's results)."""


def compared(datas: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """Each metric of ``COMPARED`` with its value in every run (None where a run lacks it)."""
    return [(title, [get(d) for d in datas]) for title, get in COMPARED]


class Comparison(NamedTuple):
    """The comparison chart (None when no metric has two runs to compare) and what it leaves
    out: metrics null or zero in every run, and metrics only one run has (title, run index,
    value)."""

    figure: go.Figure | None
    none: list[str]
    one: list[tuple[str, int, Any]]


def comparison_figure(labels: Sequence[str], datas: Sequence[dict[str, Any]]) -> Comparison:
    """One small bar chart per metric of ``COMPARED`` that at least two runs have (a run
    without it has no bar) and that is not zero in all of them."""
    shown: list[tuple[str, list[Any]]] = []
    none: list[str] = []
    one: list[tuple[str, int, Any]] = []
    for title, values in compared(datas):
        have = [i for i, v in enumerate(values) if v is not None]
        if not any(values[i] for i in have):
            none.append(title)
        elif len(have) == 1:
            one.append((title, have[0], values[have[0]]))
        else:
            shown.append((title, values))
    return Comparison(_comparison_bars(labels, shown) if shown else None, none, one)


def _comparison_bars(labels: Sequence[str], shown: Sequence[tuple[str, list[Any]]],
                     ) -> go.Figure:
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[t for t, _ in shown],
                        vertical_spacing=0.5 / rows, horizontal_spacing=0.08)
    names = [html.escape(label) for label in labels]
    for k, (title, values) in enumerate(shown):
        fig.add_trace(go.Bar(
            x=names, y=values, marker_color=[color(i) for i in range(len(labels))],
            name=title, showlegend=False,
            text=["" if v is None else fmt(v) for v in values],
            textposition="auto"), row=k // cols + 1, col=k % cols + 1)
    fig.update_layout(height=260 * rows + 40)
    fig.update_annotations(font_size=12)
    return fig
