"""The HTML report of one or more runs (``vpmu run --html``, ``vpmu compare --html``).

One self-contained page: plotly.js is embedded once in the head, packed (gzip and base64,
``vpmu.report.html_js``), and every chart is a plotly figure with a fixed div id, so the page
needs no network and the same runs give the same bytes (no timestamps, no random ids).
Sections, in order: the header (scenario, preset, duration, seed, designs), the summary (per
run what profiling costs the guest and what the host loses, ``vpmu.report.headline``, then the
rows of ``vpmu.report.tables``), VM-exits by reason, MSR exits, the guest PMI latency distribution,
the per-design comparison (a table of the headline figures for a single run) and one PMU
ownership timeline per run, which covers the whole run (``vpmu.report.html_timeline``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vpmu.report.charts import (
    color,
    compared,
    comparison_figure,
    exits_figure,
    figure_div,
    msr_figure,
    pmi_figure,
)
from vpmu.report.headline import headlines
from vpmu.report.html_js import DETAIL_ITEMS, LOADER_JS, blob, plotly_js_packed
from vpmu.report.html_timeline import NO_CPU, timeline_div, timeline_payload
from vpmu.report.tables import fmt, merged_order, summary_rows, top_msrs
from vpmu.trace import GuestPmi, Record

TIMELINE_ITEMS = 600_000
"""Timeline items (ownership segments and markers) stored one by one on the whole page,
shared by the runs; a run with more is stored in buckets of time. Packed, an item takes about
2 bytes (seed 001's example, docs/sources.md: 178,000 items in 0.3 MB), so with plotly.js (2.0 MB
packed) a page stays near 3 MB at most."""
MIN_RUN_ITEMS = 100_000
"""Each run's timeline keeps at least this many items, however many runs there are."""

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1400px;
       padding: 0 1rem; color: #1d2733; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #d5dbe3; padding-top: 1rem; }
nav a { margin-right: 1rem; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { padding: 0.15rem 0.7rem; border-bottom: 1px solid #e6eaf0; }
td.num, th.run { text-align: right; font-variant-numeric: tabular-nums; }
tr.sub td:first-child { padding-left: 1.8rem; color: #4a5868; }
.swatch { display: inline-block; width: 0.8rem; height: 0.8rem; margin-right: 0.3rem; }
p.note { color: #8a4b00; background: #fff6e5; padding: 0.3rem 0.6rem; }
p.lead { font-size: 1.05rem; margin: 0.3rem 0; } p.status { color: #4a5868; font-size: 0.85rem; }
.failed { color: #b00020; }
"""


@dataclass(frozen=True)
class ReportRun:
    """One run on the page: its label (the design spec), results, records and end time."""

    label: str
    results: dict[str, Any]
    records: Sequence[Record]
    end_ps: int


def render_html(runs: Sequence[ReportRun], *, title: str,
                timeline_items: int = TIMELINE_ITEMS) -> str:
    """The page of ``runs`` (one column, series and timeline each), titled ``title``."""
    if not runs:
        raise ValueError(f"runs must name at least one run, not {list(runs)!r}")
    if timeline_items < 1:
        raise ValueError(f"timeline_items must be positive, not {timeline_items!r}")
    body = [_header(runs, title), _summary(runs), *_charts(runs), _comparison(runs),
            _timelines(runs, max(MIN_RUN_ITEMS, timeline_items // len(runs)))]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n"
            f"{blob('vpmu-plotly-js', plotly_js_packed())}\n<script>{LOADER_JS}</script>\n"
            "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


SECTIONS = (("summary", "Summary"), ("exits", "VM-exits"), ("msrs", "MSR exits"),
            ("pmi", "Guest PMI latency"), ("comparison", "Per-design comparison"),
            ("timeline", "PMU ownership timeline"))
"""Section ids and headings, in page order."""
SINGLE_HEADINGS = {"comparison": "Headline figures"}
"""Headings of a page of one run, where they differ."""


def _heading(key: str, n_runs: int) -> str:
    return (SINGLE_HEADINGS.get(key) if n_runs == 1 else None) or dict(SECTIONS)[key]


def _section(key: str, *content: str, heading: str | None = None) -> str:
    return (f"<section id=\"{key}\">\n<h2>{heading or dict(SECTIONS)[key]}</h2>\n"
            + "\n".join(c for c in content if c) + "\n</section>")


def _header(runs: Sequence[ReportRun], title: str) -> str:
    """Title, the scenario's facts and the designs with their colours."""
    first = runs[0].results
    model = first["scenario"].get("file_model") or {}
    sim = first["sim"]
    facts = [("scenario", first["scenario"]["name"]), ("description", model.get("description")),
             ("preset", first["preset"]), ("duration", f"{fmt(sim['duration_ms'])} ms"),
             ("seed", sim["seed"])]
    meta = "".join(f"<dt>{k}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts if v)
    designs = "".join(
        f"<li><span class=\"swatch\" style=\"background:{color(i)}\"></span>"
        f"<code>{html.escape(r.label)}</code>: simulated end {fmt(r.results['sim']['end_ms'])}"
        f" ms, {fmt(len(r.records))} records</li>" for i, r in enumerate(runs))
    nav = "".join(f"<a href=\"#{key}\">{_heading(key, len(runs))}</a>" for key, _ in SECTIONS)
    return (f"<header>\n<h1>{html.escape(title)}</h1>\n<dl class=\"meta\">{meta}</dl>\n"
            f"<p>Designs:</p><ul>{designs}</ul>\n<nav>{nav}</nav>\n</header>")


def summary_matrix(datas: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """The summary table's rows (``vpmu.report.tables``: the same MSR rows for every run, a
    later run's extra row kept under its heading) with a value per run (None if absent)."""
    names = top_msrs(datas)
    per_run = [summary_rows(d, names) for d in datas]
    values = [dict(rows) for rows in per_run]
    return [(key, [v.get(key) for v in values]) for key in merged_order(per_run)]


def _lead(runs: Sequence[ReportRun]) -> str:
    """The summary's opening: per run, what profiling costs the guest and what the host
    loses (``vpmu.report.headline``, the sentences ``vpmu run`` prints)."""
    lines = headlines([r.results for r in runs], [r.label for r in runs])
    return "\n".join(f"<p class=\"lead\">{html.escape(line)}</p>" for line in lines)


def _summary(runs: Sequence[ReportRun]) -> str:
    head = "".join(f"<th class=\"run\">{html.escape(r.label)}</th>" for r in runs)
    rows = []
    for key, values in summary_matrix([r.results for r in runs]):
        cells = "".join(f"<td class=\"num\">{html.escape(fmt(v))}</td>" for v in values)
        sub = " class=\"sub\"" if key.startswith(" ") else ""
        rows.append(f"<tr{sub}><td>{html.escape(key.strip())}</td>{cells}</tr>")
    rows_html = "\n".join(rows)
    return _section("summary", _lead(runs),
                    f"<table class=\"summary\"><thead><tr><th>metric</th>{head}"
                    f"</tr></thead>\n<tbody>\n{rows_html}\n</tbody></table>")


def _charts(runs: Sequence[ReportRun]) -> list[str]:
    """The histogram and latency sections."""
    labels, datas = [r.label for r in runs], [r.results for r in runs]
    lats = [[p.latency_ps for p in r.records if type(p) is GuestPmi] for r in runs]
    out = []
    for key, fig, empty in (
            ("exits", exits_figure(labels, datas), "No VM-exits in any run."),
            ("msrs", msr_figure(labels, datas), "No MSR exits in any run."),
            ("pmi", pmi_figure(labels, lats), "No guest PMIs in any run.")):
        out.append(_section(key, figure_div(fig, f"vpmu-{key}") if fig is not None
                            else f"<p class=\"note\">{empty}</p>"))
    return out


def _comparison(runs: Sequence[ReportRun]) -> str:
    """Bars of the headline metrics that two or more runs have; a table for one run."""
    labels, datas = [r.label for r in runs], [r.results for r in runs]
    if len(runs) == 1:
        values = compared(datas)
        rows = "".join(f"<tr><td>{html.escape(t)}</td><td class=\"num\">{html.escape(fmt(v))}"
                       f"</td></tr>" for t, (v,) in values if v is not None)
        missing = [t for t, (v,) in values if v is None]
        note = (f"<p>Not measured in this run: {html.escape(', '.join(missing))}.</p>"
                if missing else "")
        return _section("comparison", f"<table class=\"headline\"><tbody>{rows}</tbody></table>"
                        if rows else "", note, heading=_heading("comparison", 1))
    cmp = comparison_figure(labels, datas)
    one = "; ".join(f"{title}: {fmt(value)} in {labels[i]}" for title, i, value in cmp.one)
    return _section(
        "comparison", figure_div(cmp.figure, "vpmu-comparison") if cmp.figure else "",
        f"<p>Null or zero in every run (not drawn): {html.escape(', '.join(cmp.none))}.</p>"
        if cmp.none else "",
        f"<p>In one run only (not drawn): {html.escape(one)}.</p>" if one else "")


TIMELINE_INTRO = f"""<p>One row per physical CPU. The bar says who owns the CPU's PMU: the
host's perf context (grey), a mediated guest's context loaded (from the end of its load to
its put), or a switch in progress (the load's or put's own time, orange). Under
<code>emulated</code> and <code>none</code> the host owns every PMU for the whole run: the
guest's counters are host perf events, and the VM-exits that touched PMU MSRs are the
markers. Under <code>mediated</code> the guest's counter accesses run on the hardware without
an exit, so only its exits (selectors, LVTPC, global registers when not passed through) are
markers. Guest-side events are drawn above a bar, host-side ones below.</p>
<p>Each chart covers the whole run. Zoomed out, time is cut into buckets: a bar shows the
state that held the PMU longest in each bucket and a marker stands for every event of its
kind on that CPU in the bucket (hover for the shares and counts). Drag across a chart to zoom
in: once at most {DETAIL_ITEMS:,} items fall in the range, each is drawn with its own hover text
(values in hex). Double-click for the whole run again. The line under each chart says which it
shows.</p>"""


def _timelines(runs: Sequence[ReportRun], budget: int) -> str:
    parts = [TIMELINE_INTRO]
    for i, r in enumerate(runs):
        payload = timeline_payload(r.records, r.end_ps, budget=budget)
        parts.append(f"<h3>{html.escape(r.label)}</h3>")
        parts.append(timeline_div(payload, f"vpmu-timeline-{i}") if payload is not None
                     else f"<p class=\"note\">{html.escape(NO_CPU)}</p>")
    return _section("timeline", *parts)
