"""Idle fast-forward: CPU time of an hour of PMU-idle guest compute (benchmarks/idle-guest.toml).

One vCPU computing (phase ``compute``, no tool), guest tick 1000 Hz, host tick 250 Hz, on
intel-icx, under ``emulated`` and ``mediated``. Each measurement is a fresh process (this
script with ``--child``) timing ``build`` + ``run`` with ``time.process_time`` (CPU seconds),
peak RSS from ``ru_maxrss``; with the fast-forward (the default) and, over a shorter run,
without it (``--step-ms``, extrapolated linearly to the hour, since step by step costs the
same per tick). The records are not expanded (a report would expand them on first read).
Each child hashes its results JSON; a fast-forwarded run as long as the step-by-step one is
measured too, and the script refuses to write figures if the two results differ.

Run: ``python benchmarks/bench_idle.py [--hour-ms MS] [--step-ms MS] [--output PATH]``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vpmu.report.results import dumps, results
from vpmu.scenario.load import load_scenario
from vpmu.scenario.run import build, run
from vpmu.vpmu.design import make_design

SCENARIO = Path(__file__).parent / "idle-guest.toml"
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "idle.json"
DESIGNS = ("emulated", "mediated")
HOUR_MS = 3_600_000


def measure(design: str, duration_ms: int, fast_forward: bool) -> dict[str, Any]:
    """Build and run the scenario once in this process; its figures."""
    scenario = load_scenario(SCENARIO, overrides=[f"duration_ms={duration_ms}"])
    make_design(design)
    t0 = time.process_time()
    outcome = run(build(scenario, design, fast_forward=fast_forward))
    cpu_s = time.process_time() - t0
    ffwd = outcome.host.ffwd
    sim_s = outcome.end_ps / 1e12
    return {"design": design, "fast_forward": fast_forward, "duration_ms": duration_ms,
            "sim_s": sim_s, "cpu_s": round(cpu_s, 3),
            "cpu_s_per_sim_s": round(cpu_s / sim_s, 6),
            "events": outcome.events_processed, "records": outcome.metrics.records,
            "skips": getattr(ffwd, "skips", 0),
            "periods_skipped": getattr(ffwd, "periods_skipped", 0),
            "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "results_sha256": hashlib.sha256(dumps(results(outcome)).encode()).hexdigest()}


def _child(design: str, duration_ms: int, fast_forward: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", design, str(duration_ms), str(int(fast_forward))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def main() -> None:
    """Measure each design with and without the fast-forward; write the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=3)
    ap.add_argument("--hour-ms", type=int, default=HOUR_MS)
    ap.add_argument("--step-ms", type=int, default=10_000)
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = ap.parse_args()
    if args.child:
        design, ms, ff = args.child
        print(json.dumps(measure(design, int(ms), ff == "1")))
        return
    rows = []
    for design in DESIGNS:
        fast = _child(design, args.hour_ms, True)
        step = _child(design, args.step_ms, False)
        same = _child(design, args.step_ms, True)
        if same["results_sha256"] != step["results_sha256"]:
            raise RuntimeError(f"{design}: {args.step_ms} ms fast-forwarded differs from step "
                               "by step")
        step["fast_forward_results_identical"] = True
        step["extrapolated_cpu_s_for_fast_run"] = round(step["cpu_s_per_sim_s"] * fast["sim_s"], 1)
        rows += [fast, step]
        print(json.dumps(fast), json.dumps(step), sep="\n")
    data = {"benchmark": "idle", "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}",
            "date": datetime.date.today().isoformat(), "rows": rows}
    args.output.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
