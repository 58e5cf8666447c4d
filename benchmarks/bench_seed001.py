"""Scenario speed: simulated seconds per wall second and peak memory of examples/seed-001.toml.

Seed 001 (a 4-vCPU guest on intel-icx running ``perf record`` of 4 events in frequency mode
over ``br_instr``, 10 runs of 200 ms) under the ``emulated`` design, and under
``emulated:is_paused=false`` and ``mediated`` as second and third rows. Each measurement
runs in a fresh Python process (this script with ``--child``), so its peak memory is its own:

- wall time of ``build`` + ``run`` (``time.perf_counter``); loading the scenario and
  importing the design's module happen before it;
- simulated time (``outcome.end_ps``), simulation events, guest PMIs and VM-exits (from the
  run's metrics: the trace is not kept), each also per wall second;
- peak RSS: ``ru_maxrss`` of the child after the run minus its ``ru_maxrss`` after the
  imports and the scenario load (KiB on Linux);
- with ``--tracemalloc``, the peak of Python allocations during build + run, from a separate
  child per design (tracemalloc makes the run about 3x slower, so its wall time is not used).

``--quick`` sets ``duration_ms=20`` and ``vm[0].guest[0].runs=2`` (a smoke run of seconds)
and writes no file unless ``--output`` is given, so it never replaces the full-run figures.
The full run writes ``benchmarks/results/seed001.json`` (about a minute per design).

Run: ``python benchmarks/bench_seed001.py [--quick] [--repeat R] [--tracemalloc]
[--output PATH]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vpmu.scenario.load import load_scenario
from vpmu.scenario.run import build, run
from vpmu.vpmu.design import make_design

SCENARIO = Path(__file__).resolve().parents[1] / "examples" / "seed-001.toml"
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "seed001.json"
DESIGNS = ("emulated", "emulated:is_paused=false", "mediated")
QUICK_OVERRIDES = ("duration_ms=20", "vm[0].guest[0].runs=2")


def _maxrss_kib() -> int:
    """This process's peak resident set size so far (ru_maxrss: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(design: str, overrides: Sequence[str], trace_malloc: bool) -> dict[str, Any]:
    """Build and run the scenario once in this process under ``design``; its figures."""
    scenario = load_scenario(SCENARIO, overrides=overrides)
    make_design(design)  # import the design's module outside the measured region
    baseline_kib = _maxrss_kib()
    if trace_malloc:
        import tracemalloc
        tracemalloc.start()
    t0 = time.perf_counter()
    outcome = build(scenario, design)
    t1 = time.perf_counter()
    run(outcome)
    t2 = time.perf_counter()
    tm_peak = None
    if trace_malloc:
        tm_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    peak_kib = _maxrss_kib()
    metrics = outcome.metrics.sections(outcome.end_ps, outcome.vcpu_tasks)
    return {
        "design": outcome.designs[0],
        "duration_ms": scenario.duration_ms,
        "runs": scenario.vm[0].guest[0].runs,
        "build_s": t1 - t0,
        "wall_s": t2 - t0,
        "sim_s": outcome.end_ps / 1e12,
        "events": outcome.events_processed,
        "guest_pmis": metrics["guest_pmi"]["count"],
        "vm_exits": metrics["vm_exits"]["total"],
        "trace_records": outcome.metrics.records,
        "baseline_rss_kib": baseline_kib,
        "peak_rss_kib": peak_kib - baseline_kib,
        "tracemalloc_peak_bytes": tm_peak,
    }


def in_child(design: str, quick: bool, trace_malloc: bool) -> dict[str, Any]:
    """``measure`` in a fresh interpreter running this script with ``--child``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", design]
    cmd += ["--quick"] * quick + ["--tracemalloc"] * trace_malloc
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{design}: child failed ({done.returncode}):\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def row(runs: list[dict[str, Any]], tm: dict[str, Any] | None) -> dict[str, Any]:
    """One design's row: the fastest run's figures and rates, the largest peak RSS."""
    for key in ("events", "guest_pmis", "vm_exits", "sim_s"):
        if len({r[key] for r in runs}) != 1:
            raise RuntimeError(f"{runs[0]['design']}: {key} differs between repeats: "
                               f"{[r[key] for r in runs]} (the run should be deterministic)")
    best = min(runs, key=lambda r: r["wall_s"])
    wall = best["wall_s"]
    return {
        "design": best["design"],
        "wall_s": round(wall, 4),
        "runs_s": [round(r["wall_s"], 4) for r in runs],
        "build_s": round(best["build_s"], 4),
        "sim_s": best["sim_s"],
        "sim_s_per_wall_s": round(best["sim_s"] / wall, 6),
        "events": best["events"],
        "events_per_wall_s": round(best["events"] / wall),
        "guest_pmis": best["guest_pmis"],
        "guest_pmis_per_wall_s": round(best["guest_pmis"] / wall, 1),
        "vm_exits": best["vm_exits"],
        "vm_exits_per_wall_s": round(best["vm_exits"] / wall, 1),
        "trace_records": best["trace_records"],
        "baseline_rss_kib": best["baseline_rss_kib"],
        "peak_rss_kib": max(r["peak_rss_kib"] for r in runs),
        "tracemalloc_peak_bytes": None if tm is None else tm["tracemalloc_peak_bytes"],
    }


def table(rows: dict[str, dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| design | sim s | wall s | sim s / wall s | events | events/s | guest PMIs/s "
             "| VM-exits/s | peak RSS MiB | tracemalloc peak MiB |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for name, r in rows.items():
        tm = r["tracemalloc_peak_bytes"]
        lines.append(
            f"| {name} | {r['sim_s']:.3f} | {r['wall_s']:.2f} | {r['sim_s_per_wall_s']:.4f} "
            f"| {r['events']:,} | {r['events_per_wall_s']:,} | {r['guest_pmis_per_wall_s']:,.0f} "
            f"| {r['vm_exits_per_wall_s']:,.0f} | {r['peak_rss_kib'] / 1024:.1f} "
            f"| {'-' if tm is None else f'{tm / 2**20:.1f}'} |")
    return "\n".join(lines)


def source() -> dict[str, Any]:
    """The commit measured and the files under src/ that differ from it (None without git)."""
    root = SCENARIO.parents[1]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout
    commit = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "src")
    return {"commit": None if commit is None else commit.strip(),
            "src_modified": None if dirty is None else [ln[3:] for ln in dirty.splitlines()]}


def main(argv: Sequence[str] | None = None) -> None:
    """Measure every design in fresh processes, write the JSON, print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="duration_ms=20, runs=2: a smoke run; writes only with --output")
    parser.add_argument("--repeat", type=int, default=1,
                        help="fresh processes per design, interleaved; the fastest is kept")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also measure the tracemalloc peak (a separate, slower run)")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"default: {DEFAULT_OUTPUT} (none with --quick)")
    parser.add_argument("--child", metavar="DESIGN", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    overrides = list(QUICK_OVERRIDES) if args.quick else []
    if args.child is not None:
        print(json.dumps(measure(args.child, overrides, args.tracemalloc)))
        return
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    runs: dict[str, list[dict[str, Any]]] = {d: [] for d in DESIGNS}
    for _ in range(args.repeat):
        for design in DESIGNS:
            runs[design].append(in_child(design, args.quick, trace_malloc=False))
    tms = {d: in_child(d, args.quick, trace_malloc=True) if args.tracemalloc else None
           for d in DESIGNS}
    rows = {d: row(runs[d], tms[d]) for d in DESIGNS}
    first = runs[DESIGNS[0]][0]
    result: dict[str, Any] = {
        "benchmark": "seed-001 scenario: simulated s per wall s and peak memory, "
                     "one fresh process per measurement, fastest of repeats",
        "date": datetime.date.today().isoformat(),
        "machine": {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "source": source(),
        "parameters": {
            "scenario": "examples/seed-001.toml",
            "quick": args.quick,
            "overrides": overrides,
            "duration_ms": first["duration_ms"],
            "runs": first["runs"],
            "repeat": args.repeat,
            "tracemalloc": args.tracemalloc,
        },
        "designs": rows,
    }
    output = args.output if args.output is not None or args.quick else DEFAULT_OUTPUT
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")
    mode = "quick" if args.quick else "full"
    print(f"seed-001, {mode} (duration_ms={first['duration_ms']}, runs={first['runs']}), "
          f"{result['date']}, Python {result['machine']['python']}, "
          f"{result['machine']['cpu_count']} CPUs")
    print(table(rows))
    print(f"written to {output}" if output is not None else "not written (--quick; see --output)")


if __name__ == "__main__":
    main()
