"""The PMU ownership timeline: one row per physical CPU, ownership as thick bars, the counter
events as markers above (guest side) and below (host side) each bar.

The chart covers the whole run at every zoom. The page embeds the run's ownership segments and
markers, packed (``timeline_payload``), and its script (``vpmu.report.html_js``) draws the x
range shown: every item when few fall in it, buckets of them otherwise. A run with more items
than its budget is stored in buckets already (the finest power-of-two width that fits the
budget): zooming in then stops at that width, and the chart's note says so.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import plotly.graph_objects as go
from plotly.io.json import to_json_plotly

from vpmu.arch.names import names_for
from vpmu.report.charts import CONFIG, TEMPLATE
from vpmu.report.html_js import blob, pack_json
from vpmu.report.timeline import (
    Marker,
    Segment,
    buckets,
    cpus_of,
    markers,
    ownership,
    pmu_msr_kind,
    spans,
    us,
)
from vpmu.trace import CounterRead, GuestPmi, PerfCall, PerfSample, PmuContext, Record, VmExit


class Lane(NamedTuple):
    """How a marker kind is drawn: legend name, offset from its CPU's bar, marker style."""

    name: str
    offset: float
    color: str
    symbol: str
    size: int


LANES = {
    "pmi": Lane("guest PMI (handler latency)", -0.4, "#c2185b", "star", 9),
    "pmu_write": Lane("guest PMU MSR write (exit)", -0.28, "#1a237e", "triangle-up", 7),
    "pmu_read": Lane("guest PMU MSR read / RDPMC (exit)", -0.18, "#7986cb", "circle-open", 6),
    "perf_call": Lane("host perf call", 0.18, "#424242", "diamond", 5),
    "perf_sample": Lane("host perf sample", 0.28, "#8d6e63", "circle", 5),
    "rdpmc": Lane("host RDPMC read", 0.4, "#00897b", "square", 6),
    "leak": Lane("LEAK: host RDPMC read a guest's value", 0.4, "#ff0000", "x", 12),
}
"""Marker kinds in legend order; negative offsets are drawn above the bar."""
HOST_COLOR, SWITCH_COLOR = "#b0bec5", "#ff9800"
GUEST_COLORS = ("#2e7d32", "#1565c0", "#6a1b9a", "#00838f", "#9e9d24", "#4e342e")
BAR_PX, ROW_PX = 14, 90


def _ns(ps: int) -> str:
    return f"{ps / 1000:,.1f} ns"


def _exit_text(r: VmExit) -> str:
    who = html.escape(f"{r.vm}/vcpu{r.vcpu}")
    if r.msr < 0:
        return f"{who} {r.reason} exit → {r.value:#x} · exit {_ns(r.cost_ps)}"
    name, kind = names_for().name(r.msr), pmu_msr_kind(r.msr)
    access = f"WRMSR {name} = {r.value:#x}" if r.write else f"RDMSR {name} → {r.value:#x}"
    return f"{who} {access} ({kind}){' #GP' if r.fault else ''} · exit {_ns(r.cost_ps)}"


def _read_text(r: CounterRead) -> str:
    text = f"{html.escape(r.task)} RDPMC ecx={r.ecx:#x} → {r.value:#x}"
    if r.origin:
        leak = "a leak" if r.value else "zero: not a leak"
        text += f" · left by guest {html.escape(r.origin)} ({leak})"
    return text


_TEXTS: dict[type[Record], Callable[[Any], str]] = {
    VmExit: _exit_text,
    CounterRead: _read_text,
    GuestPmi: lambda r: (f"PMI to {html.escape(f'{r.vm}/vcpu{r.vcpu}')} · "
                         f"handler {_ns(r.latency_ps)}"),
    PerfCall: lambda r: f"perf {html.escape(r.api)} event {r.event} · {_ns(r.cost_ps)}",
    PerfSample: lambda r: (f"sample of event {r.event}, period {r.period:,} · "
                           f"{html.escape(r.task)} ({html.escape(r.mode)})"),
}


def marker_text(m: Marker) -> str:
    """Hover text of a marker (names escaped: plotly renders hover text as HTML)."""
    return _TEXTS[type(m.record)](m.record)


def segment_text(s: Segment) -> str:
    """Hover text at an ownership segment's start (its state is the trace's name)."""
    if s.state == "switching":
        return f"{s.detail} {html.escape(s.guest)}, {_ns(s.end_ps - s.start_ps)}"
    return f"for {(s.end_ps - s.start_ps) / 10**6:,.3f} µs"


def _to_ns(ps: int) -> int:
    """Picoseconds as whole nanoseconds, the payload's unit."""
    return round(ps / 1000)


def _deltas(times: Sequence[int]) -> list[int]:
    """Sorted times as differences from the one before (they pack smaller)."""
    return [t - prev for prev, t in zip([0, *times], times, strict=False)]


def share_text(shares: Sequence[tuple[tuple[str, str], int]], start_ps: int,
               end_ps: int) -> str:
    """Hover text of a bucketed bar: every state's share (as the page's script writes it)."""
    total = sum(ps for _, ps in shares)
    parts = ", ".join(f"{_short(*key)} {100 * ps / total:.1f}%" for key, ps in shares)
    return f"{parts} of {us(start_ps):,.3f}–{us(end_ps):,.3f} µs"


def _short(state: str, guest: str) -> str:
    return f"guest {html.escape(guest)}" if state == "guest" else state


def _seg_traces(segs: dict[int, list[Segment]], rows: dict[int, int], bucket_ps: int, *,
                host_only: bool) -> list[dict[str, Any]]:
    """One trace per state (and per guest) in legend order: host, the guests, switching."""
    items: dict[tuple[int, str], list[tuple[int, int, int, str]]] = {}
    for cpu, ss in segs.items():
        drawn = ([(s.start_ps, s.end_ps, (s.state, s.guest), segment_text(s)) for s in ss]
                 if not bucket_ps else
                 [(p.start_ps, p.end_ps, p.key, share_text(p.shares, p.start_ps, p.end_ps))
                  for p in spans(ss, bucket_ps)])
        for start, end, (state, guest), text in drawn:
            rank = {"host": 0, "guest": 1, "switching": 2}[state]
            items.setdefault((rank, guest if state == "guest" else ""), []).append(
                (_to_ns(start), _to_ns(end), rows[cpu], text))
    guests = sorted(g for rank, g in items if rank == 1)
    out = []
    for (rank, guest), its in sorted(items.items()):
        its.sort()
        short = _short(("host", "guest", "switching")[rank], guest)
        if rank == 0:
            name = "host owns the PMU" + (" (guest counters are host perf events)"
                                          if host_only else "")
            colour = HOST_COLOR
        elif rank == 1:
            name = f"{short} context loaded"
            colour = GUEST_COLORS[guests.index(guest) % len(GUEST_COLORS)]
        else:
            name, colour = "switching (load / put)", SWITCH_COLOR
        out.append({"name": name, "short": short, "color": colour, "width": BAR_PX,
                    "t": _deltas([i[0] for i in its]), "dur": [i[1] - i[0] for i in its],
                    "row": [i[2] for i in its], "text": [i[3] for i in its]})
    return out


def _mark_traces(marks: Sequence[Marker], rows: dict[int, int], bucket_ps: int,
                 end_ps: int) -> list[dict[str, Any]]:
    """One trace per marker kind present, in ``LANES`` order; bucketed markers carry their
    counts (``n``)."""
    grouped = [(m, 1) for m in marks] if not bucket_ps else buckets(marks, bucket_ps)
    by_kind: dict[str, list[tuple[int, int, int, str]]] = {k: [] for k in LANES}
    for m, n in grouped:
        if n == 1:
            item = (_to_ns(m.t_ps), rows[m.cpu], n, marker_text(m))
        else:
            start = m.t_ps // bucket_ps * bucket_ps
            stop = min(start + bucket_ps, end_ps)
            item = (_to_ns((start + stop) // 2), rows[m.cpu], n,
                    f"{n:,} in {us(start):,.3f}–{us(stop):,.3f} µs")
        by_kind[m.kind].append(item)
    out = []
    for kind, its in by_kind.items():
        if not its:
            continue
        its.sort()
        lane = LANES[kind]
        trace: dict[str, Any] = {
            "name": lane.name, "color": lane.color, "symbol": lane.symbol, "size": lane.size,
            "offset": lane.offset, "t": _deltas([i[0] for i in its]),
            "row": [i[1] for i in its], "text": [i[3] for i in its]}
        if bucket_ps:
            trace["n"] = [i[2] for i in its]
        out.append(trace)
    return out


def _bucket_ps(segs: dict[int, list[Segment]], marks: Sequence[Marker], budget: int,
               end_ps: int) -> int:
    """The finest power-of-two ns bucket that brings the items within ``budget`` (or one
    as long as the run)."""
    width = 1000 << max(0, (end_ps // 1000 // budget).bit_length() - 1)
    while width < end_ps:
        n = len(buckets(marks, width)) + sum(len(spans(ss, width)) for ss in segs.values())
        if n <= budget:
            break
        width *= 2
    return width


def timeline_payload(records: Sequence[Record], end_ps: int, *,
                     budget: int) -> dict[str, Any] | None:
    """What the page's script draws a run's timeline from: the rows (CPUs), the end (ns),
    the number of items, the bucket width the items are stored in (ns; 0: one by one),
    the segment traces and the marker traces, each with its times (ns, as differences),
    rows and hover texts. None when no record names a CPU."""
    cpus = cpus_of(records)
    if not cpus:
        return None
    rows = {cpu: i for i, cpu in enumerate(cpus)}
    segs, marks = ownership(records, end_ps), markers(records)
    items = sum(len(ss) for ss in segs.values()) + len(marks)
    bucket_ps = 0 if items <= budget else _bucket_ps(segs, marks, budget, end_ps)
    host_only = not any(type(r) is PmuContext for r in records)
    return {"end": _to_ns(end_ps), "rows": [f"cpu{c}" for c in cpus], "items": items,
            "bucket": _to_ns(bucket_ps),
            "segs": _seg_traces(segs, rows, bucket_ps, host_only=host_only),
            "marks": _mark_traces(marks, rows, bucket_ps, end_ps)}


def timeline_div(payload: dict[str, Any], div_id: str) -> str:
    """The chart's ``<div>``, its status line, its packed payload and the script that draws
    it (``vpmu.timeline``)."""
    rows = payload["rows"]
    height = ROW_PX * len(rows) + 190
    fig = go.Figure()
    fig.update_layout(
        template=TEMPLATE, height=height, hovermode="closest",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
        xaxis={"title": "time (µs)", "range": [0, payload["end"] / 1000]},
        yaxis={"tickvals": list(range(len(rows))), "ticktext": rows, "fixedrange": True,
               "range": [len(rows) - 0.45, -0.55], "showgrid": False, "zeroline": False})
    layout = to_json_plotly(fig.to_plotly_json()["layout"])
    return (f'<div id="{div_id}" class="plotly-graph-div" style="height:{height}px; '
            f'width:100%;"></div>\n<p class="status" id="{div_id}-status"></p>\n'
            f'{blob(f"{div_id}-data", pack_json(payload))}\n'
            f'<script>vpmu.timeline("{div_id}", "{div_id}-data", {layout}, '
            f'{json.dumps(CONFIG)});</script>')


NO_CPU = "No record names a physical CPU: there is no timeline to draw."
