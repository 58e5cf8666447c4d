"""The mypyc-compiled build against the pure-Python sources: CPU time of seed-001, same results.

Each measurement is a fresh Python process running this script with ``--child``: it loads
examples/seed-001.toml, imports the design's module, then measures ``build`` + ``run`` with
``time.process_time`` (CPU time of the process, so the other users of a shared machine count
less than in wall time) and hashes the results JSON exactly as ``vpmu run --json`` writes it.

- **pure**: this interpreter with ``PYTHONPATH=<this checkout>/src`` (the sources, whatever
  build the interpreter has installed);
- **compiled**: ``--compiled-python``, an interpreter with the compiled build installed (by
  default ``$VPMU_COMPILED_PYTHON``), with no ``PYTHONPATH``.

Each child reports whether ``vpmu.hw.engine`` was loaded from a ``.so``; the script refuses a
"pure" child that ran compiled code or a "compiled" one that did not, and a pair whose results
JSON differ. Runs are interleaved (pure, compiled, pure, ... per design and repeat) so a change
in the machine's load hits both builds alike; the fastest run of each is kept and the speedup is
pure over compiled.

``--quick`` sets ``duration_ms=20`` and ``vm[0].guest[0].runs=2``; without it the scenario's
full 10 runs of 200 ms run (about a minute per pure run). The figures go to
``benchmarks/results/compiled.json`` (``--output`` elsewhere); a quick and a full measurement
are kept side by side in it, under ``"quick"`` and ``"full"``.

Run (after ``python -m venv V && V/bin/pip install .``):
``python benchmarks/bench_compiled.py --compiled-python V/bin/python [--quick] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "examples" / "seed-001.toml"
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "compiled.json"
DESIGNS = ("emulated", "mediated")
QUICK_OVERRIDES = ("duration_ms=20", "vm[0].guest[0].runs=2")
BUILDS = ("pure", "compiled")


def measure(design: str, overrides: Sequence[str]) -> dict[str, Any]:
    """Build and run the scenario once in this process; CPU time and the results' hash."""
    import vpmu.hw.engine
    from vpmu.report.results import dumps, results
    from vpmu.scenario.load import load_scenario
    from vpmu.scenario.run import build, run
    from vpmu.vpmu.design import make_design

    scenario = load_scenario(SCENARIO, overrides=overrides)
    make_design(design)  # import the design's module outside the measured region
    t0 = time.process_time()
    outcome = build(scenario, design, source=str(SCENARIO))
    run(outcome)
    cpu_s = time.process_time() - t0
    text = dumps(results(outcome))
    return {
        "cpu_s": cpu_s,
        "compiled": str(vpmu.hw.engine.__file__).endswith(".so"),
        "events": outcome.events_processed,
        "results_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def in_child(build: str, python: str, design: str, quick: bool) -> dict[str, Any]:
    """``measure`` in a fresh interpreter of ``build``; refuses the wrong build."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if build == "pure":
        env["PYTHONPATH"] = str(ROOT / "src")
    cmd = [python, str(Path(__file__).resolve()), "--child", design] + ["--quick"] * quick
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{build} {design}: child failed ({done.returncode}):\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["compiled"] != (build == "compiled"):
        raise RuntimeError(f"{build} {design}: vpmu.hw.engine compiled={figures['compiled']}")
    return figures


def row(design: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One design's row: each build's best CPU time, every run's, and the speedup."""
    hashes = {r["results_sha256"] for b in BUILDS for r in runs[b]}
    events = {r["events"] for b in BUILDS for r in runs[b]}
    if len(hashes) != 1 or len(events) != 1:
        raise RuntimeError(f"{design}: results differ between builds or repeats: {hashes}")
    best = {b: min(r["cpu_s"] for r in runs[b]) for b in BUILDS}
    return {
        "design": design,
        "pure_cpu_s": round(best["pure"], 3),
        "compiled_cpu_s": round(best["compiled"], 3),
        "speedup": round(best["pure"] / best["compiled"], 3),
        "pure_runs_s": [round(r["cpu_s"], 3) for r in runs["pure"]],
        "compiled_runs_s": [round(r["cpu_s"], 3) for r in runs["compiled"]],
        "events": events.pop(),
        "results_sha256": hashes.pop(),
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| design | pure CPU s | compiled CPU s | speedup | events |",
             "|---|--:|--:|--:|--:|"]
    lines += [f"| {r['design']} | {r['pure_cpu_s']:.2f} | {r['compiled_cpu_s']:.2f} "
              f"| {r['speedup']:.2f}x | {r['events']:,} |" for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure both builds, interleaved, in fresh processes; write the JSON, print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compiled-python", default=os.environ.get("VPMU_COMPILED_PYTHON"),
                        help="a python with the compiled build installed "
                             "(default: $VPMU_COMPILED_PYTHON)")
    parser.add_argument("--quick", action="store_true", help="duration_ms=20, runs=2")
    parser.add_argument("--repeat", type=int, default=3,
                        help="fresh processes per build and design, interleaved (default 3)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--child", metavar="DESIGN", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    overrides = list(QUICK_OVERRIDES) if args.quick else []
    if args.child is not None:
        print(json.dumps(measure(args.child, overrides)))
        return
    if not args.compiled_python:
        parser.error("--compiled-python (or $VPMU_COMPILED_PYTHON) is required")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    pythons = {"pure": sys.executable, "compiled": args.compiled_python}
    runs = {d: {b: [] for b in BUILDS} for d in DESIGNS}
    for _ in range(args.repeat):
        for design in DESIGNS:
            for build in BUILDS:
                runs[design][build].append(in_child(build, pythons[build], design, args.quick))
    rows = [row(d, runs[d]) for d in DESIGNS]
    kind = "quick" if args.quick else "full"
    previous = json.loads(args.output.read_text()) if args.output.exists() else {}
    previous[kind] = {
        "scenario": " ".join(["examples/seed-001.toml", *overrides]),
        "date": datetime.date.today().isoformat(),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "method": "CPU time (time.process_time) of build + run in a fresh process per "
                  f"measurement, {args.repeat} interleaved repeats, fastest kept",
        "rows": rows,
    }
    previous["benchmark"] = ("mypyc-compiled build vs pure-Python sources: seed-001 CPU time, "
                             "byte-identical results")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
