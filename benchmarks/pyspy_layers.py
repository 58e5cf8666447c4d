"""The sampling profile of the seed-001 quick run, by layer: py-spy's view beside cProfile's.

cProfile (``bench_speed.py``) counts every call and adds its own cost to each, which inflates
small functions; py-spy samples the running interpreter from outside, so its shares are
those of the unprofiled run. This script runs ``py-spy record --format raw`` over the quick
run (``duration_ms=20``, two tool runs) under a design, attributes each sample to the layer
of its innermost vpmu frame (``bench_speed.LAYERS``; samples with no vpmu frame are "other":
the interpreter's start and the imports, included since py-spy samples the whole process),
and prints the shares and the top innermost functions. py-spy comes from PyPI
(``pip install py-spy``) and needs ptrace rights; on a compiled build add ``--native`` to see
inside the compiled functions.

Run: ``python benchmarks/pyspy_layers.py [--design D] [--rate HZ] [--native]``.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import LAYERS, QUICK, SEED001  # a sibling script, not a package

CHILD = ("import sys; from vpmu.scenario.load import load_scenario; "
         "from vpmu.scenario.run import build, run; "
         "run(build(load_scenario(sys.argv[1], overrides=sys.argv[3:]), sys.argv[2]))")


def layer_of(frame: str) -> str | None:
    """The layer of a raw py-spy frame (``function (path:line)``), None outside vpmu."""
    return next((name for name, path in LAYERS if path in frame), None)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", default="emulated")
    parser.add_argument("--rate", type=int, default=1000, help="samples per second")
    parser.add_argument("--duration-ms", type=int, default=20,
                        help="the scenario's duration_ms (the quick run's by default)")
    parser.add_argument("--native", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.txt"
        cmd = ["py-spy", "record", "--format", "raw", "-o", str(raw), "-r", str(args.rate),
               *(["--native"] if args.native else []), "--", sys.executable, "-c", CHILD,
               str(SEED001), args.design, *QUICK, f"duration_ms={args.duration_ms}"]
        subprocess.run(cmd, check=True, capture_output=True)
        lines = raw.read_text().splitlines()
    layers: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for line in lines:
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        inner = next((f for f in reversed(frames) if layer_of(f)), None)
        layers[(layer_of(inner) if inner else None) or "other"] += int(count)
        leaves[inner or frames[-1]] += int(count)
    total = sum(layers.values())
    print(f"{total} samples, design {args.design}")
    for name, n in layers.most_common():
        print(f"  {name:<24}{n / total:6.1%}")
    print("innermost vpmu frames:")
    for frame, n in leaves.most_common(12):
        print(f"  {n / total:6.1%}  {frame}")


if __name__ == "__main__":
    main()
