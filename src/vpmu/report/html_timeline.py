"""The PMU ownership timeline figure: one row per physical CPU, ownership as thick bars, the
counter events as markers above (guest side) and below (host side) each bar.

A run can have 10^5-10^6 records; the figure shows a window from time 0 that holds at most
a budget of items (segments and markers), so the page stays small and quick to draw, and says
so in its note. Large traces use WebGL (``scattergl``).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import plotly.graph_objects as go

from vpmu.arch.names import names_for
from vpmu.report.timeline import (
    Marker,
    Segment,
    cpus_of,
    markers,
    ownership,
    pmu_msr_kind,
    us,
    window_end,
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
GL_POINTS = 1000
"""Traces with more points than this are drawn with WebGL."""


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
HOVER = "%{x:,.3f} µs<br>%{text}"
"""Hover: the time, then the point's text; plotly adds the trace's name beside it. Texts are
one line (each ``<br>`` costs 12 bytes of escaped JSON per point)."""


def marker_text(m: Marker) -> str:
    """Hover text of a marker (names escaped: plotly renders hover text as HTML)."""
    return _TEXTS[type(m.record)](m.record)


def segment_text(s: Segment) -> str:
    """Hover text at an ownership segment's start (its state is the trace's name)."""
    if s.state == "switching":
        return f"{s.detail} {html.escape(s.guest)}, {_ns(s.end_ps - s.start_ps)}"
    return f"for {(s.end_ps - s.start_ps) / 10**6:,.3f} µs"


def _scatter(n_points: int, **kwargs: Any) -> go.Scatter | go.Scattergl:
    kind = go.Scattergl if n_points > GL_POINTS else go.Scatter
    return kind(hovertemplate=HOVER, **kwargs)


def _add_segments(fig: go.Figure, segs: dict[int, list[Segment]], rows: dict[int, int],
                  stop: int, *, host_only: bool) -> None:
    """One thick-line trace per state (and per guest), broken between segments."""
    traces: dict[tuple[int, str], tuple[list[Any], list[Any], list[Any]]] = {}
    for cpu, ss in segs.items():
        for s in ss:
            if s.start_ps >= stop:
                break
            shown = s._replace(end_ps=min(s.end_ps, stop))
            rank = {"host": 0, "guest": 1, "switching": 2}[s.state]
            x, y, text = traces.setdefault((rank, s.guest if s.state == "guest" else ""),
                                           ([], [], []))
            x += [us(shown.start_ps), us(shown.end_ps), None]
            y += [rows[cpu], rows[cpu], None]
            text += [segment_text(shown), "end", None]
    guests = sorted(g for rank, g in traces if rank == 1)
    for (rank, guest), (x, y, text) in sorted(traces.items()):
        if rank == 0:
            name = "host owns the PMU" + (" (guest counters are host perf events)"
                                          if host_only else "")
            colour = HOST_COLOR
        elif rank == 1:
            name = f"guest {html.escape(guest)} context loaded"
            colour = GUEST_COLORS[guests.index(guest) % len(GUEST_COLORS)]
        else:
            name, colour = "switching (load / put)", SWITCH_COLOR
        fig.add_trace(_scatter(len(x), x=x, y=y, text=text, mode="lines", name=name,
                               line={"color": colour, "width": BAR_PX}))


def _add_markers(fig: go.Figure, marks: Sequence[Marker], rows: dict[int, int],
                 stop: int) -> None:
    """One marker trace per kind, in ``LANES`` order."""
    by_kind: dict[str, list[Marker]] = {k: [] for k in LANES}
    for m in marks:
        if m.t_ps < stop:
            by_kind[m.kind].append(m)
    for kind, ms in by_kind.items():
        if not ms:
            continue
        lane = LANES[kind]
        fig.add_trace(_scatter(
            len(ms), x=[us(m.t_ps) for m in ms], y=[rows[m.cpu] + lane.offset for m in ms],
            text=[marker_text(m) for m in ms], mode="markers", name=lane.name,
            marker={"color": lane.color, "symbol": lane.symbol, "size": lane.size}))


def timeline_figure(records: Sequence[Record], end_ps: int, *,
                    budget: int) -> tuple[go.Figure | None, str]:
    """A run's ownership timeline and a note on what it leaves out ("" if nothing);
    no figure when no record names a CPU."""
    cpus = cpus_of(records)
    if not cpus:
        return None, "No record names a physical CPU: there is no timeline to draw."
    rows = {cpu: i for i, cpu in enumerate(cpus)}
    segs, marks = ownership(records, end_ps), markers(records)
    times = [s.start_ps for ss in segs.values() for s in ss] + [m.t_ps for m in marks]
    stop = window_end(times, budget, end_ps)
    fig = go.Figure()
    host_only = not any(type(r) is PmuContext for r in records)
    _add_segments(fig, segs, rows, stop, host_only=host_only)
    _add_markers(fig, marks, rows, stop)
    fig.update_layout(
        height=ROW_PX * len(cpus) + 190, hovermode="closest",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
        xaxis={"title": "time (µs)", "range": [0, us(stop)]},
        yaxis={"tickvals": list(rows.values()), "ticktext": [f"cpu{c}" for c in cpus],
               "range": [len(cpus) - 0.45, -0.55], "showgrid": False, "zeroline": False})
    if stop == end_ps:
        return fig, ""
    shown = sum(t < stop for t in times)
    return fig, (f"Showing 0–{us(stop):,.3f} µs of {us(end_ps):,.3f} µs: the first "
                 f"{shown:,} of {len(times):,} timeline items (ownership segments and "
                 f"markers); the whole run is in the tables and histograms above.")
