"""Reports and traces: how fast the exports, the importer and replay are, and how big.

One run of examples/seed-001.toml (emulated, ``duration_ms`` 20 by default, the full 200 with
``--full``) is exported in every format; then its ftrace text is parsed back, reconstructed
and replayed. Per step: wall time (``time.perf_counter``, best of ``--repeat``), and for the
exports their size in bytes. The importer's rate is given in lines per second, the exports'
in records per second. Figures go to ``benchmarks/results/trace.json``.

Run: ``python benchmarks/bench_trace.py [--full] [--repeat R] [--output PATH]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vpmu.report.html import ReportRun, render_html
from vpmu.report.kvm_stat import kvm_stat_report
from vpmu.report.results import results
from vpmu.scenario.load import load_scenario
from vpmu.scenario.replay import replay_scenario
from vpmu.scenario.run import build, run
from vpmu.trace.ftrace import ftrace_text
from vpmu.trace.parse import parse_trace
from vpmu.trace.perfetto import dumps_chrome_trace

ROOT = Path(__file__).resolve().parents[1]


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The fastest of ``repeat`` calls and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--full", action="store_true", help="the full 200 ms scenario")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/trace.json")
    args = ap.parse_args()
    overrides = [] if args.full else ["duration_ms=20"]
    sc = load_scenario(ROOT / "examples/seed-001.toml", overrides=overrides)
    t_run, out = best(lambda: run(build(sc, "emulated", keep_trace=True)), 1)
    recs, data = out.records, results(out)
    rows: dict[str, Any] = {"run": {"s": round(t_run, 3), "records": len(recs)}}
    exports = {
        "ftrace": lambda: ftrace_text(recs),
        "perfetto": lambda: dumps_chrome_trace(recs, end_ps=out.end_ps),
        "kvm_stat": lambda: kvm_stat_report(recs),
        "html": lambda: render_html([ReportRun("emulated", data, recs, out.end_ps)],
                                    title="seed-001"),
    }
    texts: dict[str, str] = {}
    for name, fn in exports.items():
        t, texts[name] = best(fn, args.repeat)
        rows[name] = {"s": round(t, 3), "bytes": len(texts[name].encode()),
                      "records_per_s": round(len(recs) / t)}
    lines = texts["ftrace"].count("\n")
    t_parse, capture = best(lambda: parse_trace(texts["ftrace"], "seed001.ftrace"), args.repeat)
    rows["parse"] = {"s": round(t_parse, 3), "lines": lines,
                     "lines_per_s": round(lines / t_parse)}
    t_rec, rep = best(lambda: replay_scenario(capture), args.repeat)
    rows["reconstruct"] = {"s": round(t_rec, 3)}
    assert rep.scenario is not None
    t_replay, _ = best(lambda: run(build(rep.scenario, "emulated")), 1)
    rows["replay_run_emulated"] = {"s": round(t_replay, 3)}
    report = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
              "machine": platform.machine(), "scenario": "seed-001",
              "overrides": overrides, "steps": rows}
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for k, v in rows.items():
        print(f"{k:>22}: {v}")


if __name__ == "__main__":
    main()
