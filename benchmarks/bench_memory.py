"""Memory against simulated duration: does a run's peak memory stay flat as it runs longer?

A run streams its trace records into its metrics and keeps none (``vpmu.metrics.stream``), so
its memory should not grow with the simulated time. This runs examples/seed-001.toml (a
4-vCPU guest on intel-icx running ``perf record`` of 4 events over ``br_instr``, 10 runs)
under ``emulated`` and ``mediated`` at ``duration_ms`` D and 2D (default 200 and 400), each
build + run + results (what ``vpmu run --json`` does) in a fresh Python process, and
reports:

- peak RSS: ``ru_maxrss`` after the results minus ``ru_maxrss`` after the imports and the
  scenario load (KiB on Linux), the median of the repeats (each is listed too); the target
  is 2D within +10% of D. At a couple of MiB it moves in steps of 128 KiB from one process
  to the next (the allocator's arenas), hence
- with ``--tracemalloc``, the peak of Python allocations during build + run + results
  (``tracemalloc``, in a separate child: it makes the run about 3x slower), which is exact
  and the same every time for a deterministic run;
- CPU time of build + run + results (``time.process_time``), the smallest of the repeats,
  and the simulated time reached.

``--src`` runs the same measurement on another source tree (e.g. an earlier commit's
``src/``), for a before/after comparison: the child uses only ``build``, ``run``,
``results`` and ``end_ps``, which every version has. Results go to
``benchmarks/results/memory.json`` (``--output``).

Run: ``python benchmarks/bench_memory.py [--durations 200 400] [--repeat R] [--tracemalloc]
[--src PATH] [--output PATH]`` (about 3 minutes per repeat at the default durations on an
idle machine, and 8 more with ``--tracemalloc``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "examples" / "seed-001.toml"
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "memory.json"
DESIGNS = ("emulated", "mediated")
TARGET = 1.10
"""The peak at 2D may be at most this times the peak at D."""

CHILD = """
import json, resource, sys, time, tracemalloc
from vpmu.report.results import results
from vpmu.scenario.load import load_scenario
from vpmu.scenario.run import build, run
from vpmu.vpmu.design import make_design
design, scenario, duration_ms, trace = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
sc = load_scenario(scenario, overrides=[f"duration_ms={duration_ms}"])
make_design(design)
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if trace == "1":
    tracemalloc.start()
t0 = time.process_time()
out = run(build(sc, design))
data = results(out)
cpu = time.process_time() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
traced = tracemalloc.get_traced_memory()[1] if trace == "1" else None
print(json.dumps({"cpu_s": cpu, "sim_s": out.end_ps / 1e12, "baseline_kib": baseline,
                  "peak_kib": peak - baseline, "tracemalloc_peak": traced}))
"""


def child(src: Path, design: str, duration_ms: int, trace: bool = False) -> dict[str, Any]:
    """One build + run + results in a fresh interpreter on ``src``'s sources (``trace``:
    under tracemalloc)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", CHILD, design, str(SCENARIO),
                           str(duration_ms), "1" if trace else "0"], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{design} at {duration_ms} ms failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def row(runs: list[dict[str, Any]], traced: dict[str, Any] | None) -> dict[str, Any]:
    """One (design, duration): the median peak, the smallest CPU time, the traced peak."""
    if len({r["sim_s"] for r in runs}) != 1:
        raise RuntimeError(f"simulated time differs between repeats: {runs}")
    return {"sim_s": runs[0]["sim_s"], "cpu_s": round(min(r["cpu_s"] for r in runs), 3),
            "peak_rss_kib": statistics.median(r["peak_kib"] for r in runs),
            "peak_rss_kib_runs": [r["peak_kib"] for r in runs],
            "baseline_rss_kib": runs[0]["baseline_kib"],
            "tracemalloc_peak_bytes": None if traced is None else traced["tracemalloc_peak"]}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a / b, 3)


def table(rows: dict[str, dict[str, dict[str, Any]]], durations: Sequence[int]) -> str:
    """The rows as a Markdown table, each against the first duration's."""
    lines = ["| design | duration_ms | sim s | CPU s | peak RSS MiB (runs) | vs first "
             "| tracemalloc peak MiB | vs first |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for design, by_duration in rows.items():
        first = by_duration[str(durations[0])]
        for d, r in by_duration.items():
            tm = r["tracemalloc_peak_bytes"]
            tm_ratio = _ratio(tm, first["tracemalloc_peak_bytes"])
            runs = ", ".join(f"{k / 1024:.2f}" for k in r["peak_rss_kib_runs"])
            lines.append(
                f"| {design} | {d} | {r['sim_s']:.3f} | {r['cpu_s']:.2f} "
                f"| {r['peak_rss_kib'] / 1024:.2f} ({runs}) "
                f"| {r['peak_rss_kib'] / first['peak_rss_kib']:.3f} "
                f"| {'-' if tm is None else f'{tm / 2**20:.2f}'} "
                f"| {'-' if tm_ratio is None else f'{tm_ratio:.3f}'} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure every design at every duration in fresh processes; write and print."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--durations", type=int, nargs="+", default=[200, 400],
                        help="duration_ms values, shortest first (default 200 400)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="fresh processes per (design, duration), interleaved")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also measure the tracemalloc peak (a separate, slower child)")
    parser.add_argument("--src", type=Path, default=ROOT / "src",
                        help="the source tree to measure (default this checkout's src/)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.repeat < 1 or len(args.durations) < 2:
        parser.error("--repeat must be at least 1 and --durations name at least two")

    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(args.repeat):
        for design in DESIGNS:
            for d in args.durations:
                runs.setdefault((design, d), []).append(child(args.src, design, d))
    traced = {(design, d): child(args.src, design, d, trace=True) if args.tracemalloc else None
              for design in DESIGNS for d in args.durations}
    rows = {design: {str(d): row(runs[(design, d)], traced[(design, d)])
                     for d in args.durations} for design in DESIGNS}
    short, long = str(args.durations[0]), str(args.durations[-1])
    result = {
        "benchmark": "seed-001: peak RSS (ru_maxrss after build + run + results minus after "
                     "imports and load; median of repeats) and tracemalloc peak against "
                     "duration_ms, one fresh process per measurement",
        "date": datetime.date.today().isoformat(),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpu_count": os.cpu_count()},
        "src": str(args.src),
        "parameters": {"scenario": "examples/seed-001.toml", "durations_ms": args.durations,
                       "repeat": args.repeat, "tracemalloc": args.tracemalloc,
                       "target": TARGET},
        "designs": rows,
        "growth": {design: {key: _ratio(rows[design][long][key], rows[design][short][key])
                            for key in ("peak_rss_kib", "tracemalloc_peak_bytes")}
                   for design in DESIGNS},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"seed-001 memory against duration ({args.src}), {result['date']}, "
          f"Python {result['machine']['python']}")
    print(table(rows, args.durations))
    print(f"growth {short} -> {long} ms (target at most {TARGET}): {result['growth']}")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
