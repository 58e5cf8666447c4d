"""A/B: the same scenario under two source trees, CPU time and function calls, interleaved.

For a refactor that must not cost speed: each round runs every design once under tree A and
once under tree B, each in a fresh process (``PYTHONPATH=<tree>/src``), so both see the same
machine load; the ratio of their CPU times (``time.process_time`` of build + run) is what
this script reports, median and best of the rounds. It also counts the function calls of one
profiled run per tree and design (``cProfile``): a deterministic figure that noise on a shared
machine cannot move.

Default: ``examples/seed-001.toml`` at ``duration_ms=20`` and two tool runs (the
``bench_seed001.py --quick`` size) under the default ``emulated``, ``emulated`` with
``is_paused=false`` and ``mediated``, 4 rounds. A tree is a checkout's root (``git worktree add
/tmp/base REV``). Figures go to ``benchmarks/results/ab.json``.

Run: ``python benchmarks/bench_ab.py --a /tmp/base --b . [--rounds N] [--output PATH]``.
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
from pathlib import Path
from typing import Any

DESIGNS = ("emulated:emulated_instructions=false",
           "emulated:emulated_instructions=false,is_paused=false", "mediated")
"""As bench_seed001.py runs them (the scenario's own design is emulated without emulated
instructions)."""
OVERRIDES = ("duration_ms=20", "vm[0].guest[0].runs=2")
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "ab.json"

CHILD = """
import cProfile, json, pstats, sys, time
from vpmu.scenario.load import load_scenario
from vpmu.scenario.run import build, run
from vpmu.vpmu.design import make_design
design, scenario, profile = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
make_design(design)
sc = load_scenario(scenario, overrides=sys.argv[4:])
prof = cProfile.Profile() if profile else None
t0 = time.process_time()
if prof:
    prof.enable()
out = run(build(sc, design))
if prof:
    prof.disable()
cpu = time.process_time() - t0
calls = pstats.Stats(prof).total_calls if prof else None
print(json.dumps({"cpu_s": cpu, "calls": calls, "events": out.events_processed}))
"""


def child(tree: Path, design: str, scenario: Path, profile: bool) -> dict[str, Any]:
    """One build + run of ``scenario`` under ``design`` with ``tree``'s sources."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    done = subprocess.run([sys.executable, "-c", CHILD, design, str(scenario),
                           "1" if profile else "0", *OVERRIDES],
                          env=env, cwd=tree, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def commit_of(tree: Path) -> str:
    """The tree's commit, if it is a git checkout."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree,
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="tree A (the baseline)")
    parser.add_argument("--b", type=Path, default=Path("."), help="tree B (the change)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    trees = {"a": args.a.resolve(), "b": args.b.resolve()}
    scenario = trees["b"] / "examples" / "seed-001.toml"
    cpu: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for design in DESIGNS:
            for side, tree in trees.items():
                cpu.setdefault((design, side), []).append(
                    child(tree, design, scenario, False)["cpu_s"])
    rows = {}
    for design in DESIGNS:
        calls = {side: child(tree, design, scenario, True) for side, tree in trees.items()}
        a, b = cpu[(design, "a")], cpu[(design, "b")]
        rows[design] = {
            "cpu_s_a": [round(x, 3) for x in a], "cpu_s_b": [round(x, 3) for x in b],
            "median_b_over_a": round(statistics.median(b) / statistics.median(a), 3),
            "best_b_over_a": round(min(b) / min(a), 3),
            "calls_a": calls["a"]["calls"], "calls_b": calls["b"]["calls"],
            "calls_b_over_a": round(calls["b"]["calls"] / calls["a"]["calls"], 4),
            "same_events": calls["a"]["events"] == calls["b"]["events"],
        }
        print(f"{design}: CPU b/a median {rows[design]['median_b_over_a']}, best "
              f"{rows[design]['best_b_over_a']}; calls b/a {rows[design]['calls_b_over_a']}")
    result = {
        "benchmark": "A/B of seed-001 (quick size): CPU time interleaved, calls profiled",
        "date": datetime.date.today().isoformat(),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpu_count": os.cpu_count()},
        "a": {"tree": str(trees["a"]), "commit": commit_of(trees["a"])},
        "b": {"tree": str(trees["b"]), "commit": commit_of(trees["b"])},
        "rounds": args.rounds, "overrides": list(OVERRIDES), "designs": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
