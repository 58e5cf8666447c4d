"""The HTML report's size: seed 001 in full (`vpmu run examples/seed-001.toml --html`), seed
001 compared under emulated and mediated, and examples/arm64-partitioned.toml alone and
compared with emulated. Per page: bytes, the packed plotly.js and timeline payloads in it,
the timeline items and whether they are stored one by one, and the time to render.

The page of seed 001 must stay under ``LIMIT_BYTES`` (issue 18); the script exits 1 if it
does not. ``BEFORE`` holds the sizes of the same pages before the whole-run timeline (plotly.js
inlined raw, the timeline cut at 60,000 items). Figures go to
``benchmarks/results/html_size.json``.

Run (about a minute): ``python benchmarks/bench_html.py [--output PATH]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

from vpmu.report.html import ReportRun, render_html
from vpmu.report.html_js import plotly_js_packed
from vpmu.report.html_timeline import timeline_payload
from vpmu.report.results import results
from vpmu.scenario.load import load_scenario
from vpmu.scenario.run import build, run

ROOT = Path(__file__).resolve().parents[1]
LIMIT_BYTES = 3_000_000
"""The seed-001 page's bound (issue 18)."""
BEFORE = {"seed-001": 8_948_554, "seed-001 emulated vs mediated": 9_199_536,
          "arm64-partitioned": 4_912_693, "arm64-partitioned partitioned vs emulated": 6_508_389}
"""Bytes of the same pages from commit 25cf269 (plotly.js 4,815,814 bytes inlined, timeline
cut at 60,000 items: seed 001's showed 0-174 ms of 522 ms)."""
PAGES = {
    "seed-001": ("examples/seed-001.toml", [None]),
    "seed-001 emulated vs mediated": ("examples/seed-001.toml", [None, "mediated"]),
    "arm64-partitioned": ("examples/arm64-partitioned.toml", [None]),
    "arm64-partitioned partitioned vs emulated": ("examples/arm64-partitioned.toml",
                                                  [None, "emulated"]),
}
"""Page name: scenario and designs (None: the scenario's own)."""


def report_run(path: str, design: str | None, cache: dict[tuple[str, str | None], ReportRun],
               ) -> ReportRun:
    """The scenario's run under ``design`` with its trace, run once per pair."""
    if (path, design) not in cache:
        scenario = load_scenario(ROOT / path)
        outcome = run(build(scenario, design, keep_trace=True))
        label = design or scenario.vm[0].design_spec
        cache[path, design] = ReportRun(label, results(outcome), outcome.records,
                                        outcome.end_ps)
    return cache[path, design]


def measure(name: str, runs: list[ReportRun]) -> dict[str, Any]:
    """One page's figures."""
    t0 = time.perf_counter()
    page = render_html(runs, title=name)
    seconds = time.perf_counter() - t0
    blobs = dict(re.findall(r'id="([^"]+)">([A-Za-z0-9+/=]*)</script>', page))
    size = len(page.encode())
    timelines = []
    for r in runs:
        payload = timeline_payload(r.records, r.end_ps, budget=10**9)
        assert payload is not None
        timelines.append({"label": r.label, "end_ms": round(r.end_ps / 1e9, 3),
                          "items": payload["items"]})
    return {"bytes": size, "before_bytes": BEFORE.get(name),
            "plotly_js_packed_bytes": len(blobs.pop("vpmu-plotly-js")),
            "timeline_packed_bytes": sum(len(v) for v in blobs.values()),
            "rest_bytes": size - sum(len(v) for v in blobs.values())
            - len(plotly_js_packed()),
            "timelines": timelines, "render_s": round(seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/html_size.json")
    args = ap.parse_args()
    cache: dict[tuple[str, str | None], ReportRun] = {}
    pages = {}
    for name, (path, designs) in PAGES.items():
        pages[name] = measure(name, [report_run(path, d, cache) for d in designs])
        print(f"{name}: {pages[name]['bytes']:,} bytes (before {BEFORE[name]:,})",
              file=sys.stderr)
    report = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
              "machine": platform.machine(), "limit_bytes": LIMIT_BYTES,
              "within_limit": pages["seed-001"]["bytes"] < LIMIT_BYTES, "pages": pages}
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    sys.exit(0 if report["within_limit"] else 1)


if __name__ == "__main__":
    main()
