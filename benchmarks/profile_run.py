"""Where a seed-001 run spends its time: cProfile of build + run, by own time.

The profile that chose the modules mypyc compiles (``[tool.vpmu.mypyc] modules`` in
pyproject.toml): seed-001 at ``duration_ms=20``, ``vm[0].guest[0].runs=2`` under one design.
cProfile slows the run several times over and weighs calls more than a plain run does, so it
ranks modules; bench_compiled.py measures.

Run from the repository root: ``python benchmarks/profile_run.py DESIGN [OVERRIDE ...]
[--top N]`` (overrides replace the quick ones, e.g. ``duration_ms=200``).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
from collections.abc import Sequence
from pathlib import Path

from vpmu.scenario.load import load_scenario
from vpmu.scenario.run import build, run
from vpmu.vpmu.design import make_design

SCENARIO = Path(__file__).resolve().parents[1] / "examples" / "seed-001.toml"
QUICK_OVERRIDES = ("duration_ms=20", "vm[0].guest[0].runs=2")


def main(argv: Sequence[str] | None = None) -> None:
    """Profile build + run of seed-001 under the design; print the top functions."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("design")
    parser.add_argument("overrides", nargs="*", default=list(QUICK_OVERRIDES))
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args(argv)
    scenario = load_scenario(SCENARIO, overrides=args.overrides)
    make_design(args.design)  # import the design's module outside the profile
    profile = cProfile.Profile()
    profile.enable()
    run(build(scenario, args.design))
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
