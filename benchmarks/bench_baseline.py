"""What the baselines cost: CPU time and peak RSS of ``vpmu run examples/seed-001.toml`` and of
``vpmu compare examples/guest-and-host-profiling.toml -d none -d emulated -d mediated``, each
with its baselines (the default: one unprofiled run per design, two bare-metal runs per
scenario) and with ``--no-baseline``, measured in the same process tree one after the other
so that the ratio, not the absolute time, is the figure. Each command runs in a child
process; its CPU time (user + system) and peak RSS come from ``resource.getrusage`` of the
children. Figures go to ``benchmarks/results/baseline.json``.

Run (about two minutes): ``python benchmarks/bench_baseline.py [--output PATH]``.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "run seed-001": ["run", "examples/seed-001.toml"],
    "compare guest-and-host-profiling": ["compare", "examples/guest-and-host-profiling.toml",
                                         "-d", "none", "-d", "emulated", "-d", "mediated"],
}


def measure(args: list[str]) -> dict[str, float]:
    """CPU seconds and peak RSS (MiB) of one ``vpmu`` command in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    code = "import sys; from vpmu.cli.main import app; sys.argv[0] = 'vpmu'; app()"
    subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of the children is the largest child's so far: each command is measured in
    # order from the smallest expected, so a later command's figure is its own
    return {"cpu_s": round(cpu, 2), "peak_rss_mib": round(after.ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/baseline.json")
    out: dict[str, Any] = {"date": datetime.date.today().isoformat(),
                           "python": platform.python_version(), "commands": {}}
    for name, args in COMMANDS.items():
        without = measure([*args, "--no-baseline"])
        with_ = measure(args)
        out["commands"][name] = {"no_baseline": without, "baseline": with_,
                                 "cpu_ratio": round(with_["cpu_s"] / without["cpu_s"], 3)}
        print(name, out["commands"][name])
    args_out: Path = ap.parse_args().output
    args_out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
