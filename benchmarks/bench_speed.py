"""The speed issue's figures, recorded in one run: how fast and how lean the lab simulates.

Every measurement runs in a fresh Python process (this script with ``--child``), so its CPU
time and peak memory are its own:

- **seed 001** (``examples/seed-001.toml`` as it is) under ``emulated`` and ``mediated``:
  simulated seconds per CPU second (``time.process_time`` of build + run; loading the
  scenario and importing the design happen before the clock starts), and per guest PMI and
  per VM-exit the CPU time and the simulation events it took (the run's totals divided by
  the results' ``guest_pmi.count`` and ``vm_exits.total``); events are the model's
  (``sim.events``), entries the queue entries the kernel actually processed (fewer: work
  nothing can interleave with takes none, ``Environment.skip_to``);
- **memory**: peak RSS (``ru_maxrss`` after the run minus after the imports and the load) of
  seed 001 at its duration and at twice it, and their ratio (the target: at most 1.10);
- **the idle hour**: a PMU-idle guest (benchmarks/idle-guest.toml: one vCPU, guest tick
  1000 Hz, host tick 250 Hz, no guest tool) for ``--idle-ms`` simulated ms (an hour by
  default) under both designs; if a probe of ``--probe-ms`` says the hour would take more
  than ``--budget-s`` CPU seconds, the longest run that fits the budget is measured instead
  and the hour is extrapolated (both are recorded, and the table says which);
- **the event kernel** against SimPy and a bare heapq loop (``bench_sim.measure``);
- **the profile**: cProfile self time of the seed-001 quick run (``duration_ms=20``, two
  tool runs) under ``emulated``, grouped by layer, and its top functions. Meaningful on the
  pure build only: cProfile cannot see inside compiled functions, so on the compiled build
  their time lands on the pure caller (the event kernel's resumptions).

Figures go to ``benchmarks/results/speed.json`` with the date, machine and commit; the
README's "Speed" section quotes them. On a shared machine compare ratios from one run.

Run: ``python benchmarks/bench_speed.py [--quick] [--idle-ms N] [--budget-s S]
[--output PATH]``; ``--quick`` runs seed 001 at ``duration_ms=20`` and a 2 s idle run, and
writes nothing unless given ``--output``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vpmu.report.results import results
from vpmu.scenario.load import load_scenario
from vpmu.scenario.run import build, run
from vpmu.vpmu.design import make_design

HERE = Path(__file__).resolve().parent
SEED001 = HERE.parent / "examples" / "seed-001.toml"
IDLE = HERE / "idle-guest.toml"
DEFAULT_OUTPUT = HERE / "results" / "speed.json"
DESIGNS = ("emulated", "mediated")
QUICK = ("duration_ms=20", "vm[0].guest[0].runs=2")
HOUR_MS = 3_600_000
LAYERS = (
    ("event kernel", "vpmu/sim/"),
    ("hardware model", "vpmu/hw/"),
    ("register rules", "vpmu/arch/"),
    ("host perf", "vpmu/host/perf/"),
    ("host CPU and scheduler", "vpmu/host/"),
    ("vCPU and exits", "vpmu/machine/"),
    ("vPMU designs", "vpmu/vpmu/"),
    ("guest OS and tools", "vpmu/guest/"),
    ("trace and metrics", "vpmu/trace/"),
    ("trace and metrics", "vpmu/metrics/"),
    ("workloads", "vpmu/workloads/"),
)
"""Self time is attributed to the first layer whose path the function's file contains."""


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(scenario: Path, design: str, overrides: Sequence[str]) -> dict[str, Any]:
    """Build and run once in this process; CPU time, simulated time, work and memory."""
    sc = load_scenario(scenario, overrides=overrides)
    make_design(design)
    base_kib = _maxrss_kib()
    t0 = time.process_time()
    outcome = build(sc, design)
    run(outcome)
    cpu_s = time.process_time() - t0
    peak_kib = _maxrss_kib() - base_kib
    res = results(outcome)
    return {"scenario": sc.name, "design": design, "overrides": list(overrides),
            "cpu_s": cpu_s, "sim_s": outcome.end_ps / 1e12,
            "events": res["sim"]["events"], "entries": outcome.host.env.entries_processed,
            "guest_pmis": res["guest_pmi"]["count"],
            "vm_exits": res["vm_exits"]["total"], "peak_rss_kib": peak_kib,
            "base_rss_kib": base_kib}


def child(scenario: Path, design: str, overrides: Sequence[str]) -> dict[str, Any]:
    """``measure`` in a fresh interpreter."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(scenario), design,
           *overrides]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{scenario.name} {design} {overrides}: child failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def seed001(quick: bool) -> dict[str, Any]:
    """Seed 001 at 1x and 2x its duration under each design: rates, per-PMI and per-exit
    costs, and the memory ratio."""
    base = list(QUICK) if quick else []
    ms = 20 if quick else load_scenario(SEED001).duration_ms
    out: dict[str, Any] = {}
    for design in DESIGNS:
        one = child(SEED001, design, base)
        two = child(SEED001, design, [*base, f"duration_ms={2 * ms}"])
        cpu, pmis, exits = one["cpu_s"], one["guest_pmis"], one["vm_exits"]
        out[design] = {
            **one,
            "sim_s_per_cpu_s": round(one["sim_s"] / cpu, 5),
            "cpu_ms_per_pmi": round(1e3 * cpu / pmis, 4) if pmis else None,
            "events_per_pmi": round(one["events"] / pmis, 2) if pmis else None,
            "entries_per_pmi": round(one["entries"] / pmis, 2) if pmis else None,
            "cpu_us_per_exit": round(1e6 * cpu / exits, 2) if exits else None,
            "events_per_exit": round(one["events"] / exits, 3) if exits else None,
            "entries_per_exit": round(one["entries"] / exits, 3) if exits else None,
            "at_2x": two,
            "peak_rss_ratio_2x": round(two["peak_rss_kib"] / max(one["peak_rss_kib"], 1), 3),
        }
    return out


def idle(target_ms: int, probe_ms: int, budget_s: float) -> dict[str, Any]:
    """The idle guest for ``target_ms``, or for what fits ``budget_s`` (extrapolated)."""
    out: dict[str, Any] = {}
    for design in DESIGNS:
        probe = child(IDLE, design, [f"duration_ms={probe_ms}"])
        rate = probe["cpu_s"] / probe["sim_s"]
        ms = target_ms if rate * target_ms / 1e3 <= budget_s else \
            max(probe_ms, int(budget_s / rate * 1e3) // 1000 * 1000)
        measured = probe if ms == probe_ms else child(IDLE, design, [f"duration_ms={ms}"])
        per_sim_s = measured["cpu_s"] / measured["sim_s"]
        out[design] = {"measured": measured, "cpu_s_per_sim_s": round(per_sim_s, 5),
                       "target_sim_s": target_ms / 1e3,
                       "target_cpu_s": round(per_sim_s * target_ms / 1e3, 2),
                       "extrapolated": ms != target_ms}
    return out


def kernel(events: int) -> dict[str, Any]:
    """vpmu.sim against SimPy and a bare heapq loop (bench_sim's workloads)."""
    sys.path.insert(0, str(HERE))
    import bench_sim  # a sibling script, not a package
    delays = bench_sim.make_delays(events)
    return {"timeouts": bench_sim.measure(delays, interrupts=False, repeat=3),
            "interrupts": bench_sim.measure(delays, interrupts=True, repeat=3)}


def profile() -> dict[str, Any]:
    """cProfile self time of the seed-001 quick run under emulated, by layer and function."""
    sc = load_scenario(SEED001, overrides=QUICK)
    make_design("emulated")
    prof = cProfile.Profile()
    prof.enable()
    run(build(sc, "emulated"))
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    layers: dict[str, float] = {name: 0.0 for name, _ in LAYERS}
    layers["other (stdlib, builtins)"] = 0.0
    rows = []
    for (path, line, func), (_, ncalls, tottime, _, _) in stats.items():
        layer = next((n for n, p in LAYERS if p in path), "other (stdlib, builtins)")
        layers[layer] += tottime
        rows.append((tottime, ncalls, f"{path.split('src/')[-1]}:{line}({func})"))
    rows.sort(reverse=True)
    return {"total_self_s": round(total, 3),
            "calls": sum(v[1] for v in stats.values()),
            "by_layer": {k: round(v / total, 4) for k, v in
                         sorted(layers.items(), key=lambda kv: -kv[1])},
            "top": [{"self_share": round(t / total, 4), "calls": n, "function": f}
                    for t, n, f in rows[:15]]}


def machine() -> dict[str, Any]:
    """Where and on what the figures were measured."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(HERE.parent), *args], capture_output=True,
                              text=True, check=False)
        return done.stdout.strip()
    from vpmu.hw import engine  # the build measured: a compiled module is a .so
    compiled = not engine.__file__.endswith(".py") if engine.__file__ else False
    return {"date": datetime.date.today().isoformat(), "python": sys.version.split()[0],
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "load_avg": os.getloadavg(), "commit": git("rev-parse", "--short", "HEAD"),
            "src_modified": git("status", "--porcelain", "--", "src").splitlines(),
            "compiled_build": compiled}


def summary(res: dict[str, Any]) -> str:
    """The figures as the README quotes them."""
    lines = ["| design | sim s | CPU s | sim s per CPU s | CPU ms per PMI | events (entries) "
             "per PMI | CPU µs per exit | events (entries) per exit | peak RSS 1x MiB "
             "| 2x/1x |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for d, r in res["seed001"].items():
        lines.append(f"| {d} | {r['sim_s']:.3f} | {r['cpu_s']:.2f} | {r['sim_s_per_cpu_s']:.4f} "
                     f"| {r['cpu_ms_per_pmi']} | {r['events_per_pmi']} ({r['entries_per_pmi']}) "
                     f"| {r['cpu_us_per_exit']} | {r['events_per_exit']} "
                     f"({r['entries_per_exit']}) | {r['peak_rss_kib'] / 1024:.1f} "
                     f"| {r['peak_rss_ratio_2x']} |")
    if "idle" in res:
        lines += ["", "| idle guest | measured sim s | CPU s per sim s | the hour, CPU s |",
                  "|---|--:|--:|--:|"]
        for d, r in res["idle"].items():
            note = " (extrapolated)" if r["extrapolated"] else ""
            lines.append(f"| {d} | {r['measured']['sim_s']:.1f} | {r['cpu_s_per_sim_s']} "
                         f"| {r['target_cpu_s']}{note} |")
    if "kernel" in res:
        lines += ["", "| kernel workload | vpmu.sim events/s | SimPy | heapq floor "
                  "| vs SimPy | vpmu.sim / floor |", "|---|--:|--:|--:|--:|--:|"]
        for w, r in res["kernel"].items():
            lines.append(f"| {w} | {r['vpmu.sim']['events_per_s']:,} "
                         f"| {r['simpy']['events_per_s']:,} | {r['heapq']['events_per_s']:,} "
                         f"| {r['speedup_vs_simpy']}x | {r['heapq_floor_ratio']}x |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run every measurement, write the JSON, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--idle-ms", type=int, default=HOUR_MS)
    parser.add_argument("--probe-ms", type=int, default=2000)
    parser.add_argument("--budget-s", type=float, default=120.0,
                        help="CPU seconds an idle run may take before it is extrapolated")
    parser.add_argument("--kernel-events", type=int, default=400_000)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        scenario, design, *overrides = args.child
        print(json.dumps(measure(Path(scenario), design, overrides)))
        return
    idle_ms = 2000 if args.quick else args.idle_ms
    res: dict[str, Any] = {"benchmark": "the speed issue's figures (benchmarks/bench_speed.py)",
                           "machine": machine(), "quick": args.quick,
                           "seed001": seed001(args.quick),
                           "idle": idle(idle_ms, min(args.probe_ms, idle_ms), args.budget_s),
                           "kernel": kernel(args.kernel_events // (10 if args.quick else 1)),
                           "profile": profile()}
    text = summary(res)
    print(text)
    print("profile by layer:", json.dumps(res["profile"]["by_layer"], indent=1))
    output = args.output or (None if args.quick else DEFAULT_OUTPUT)
    if output is None:
        print("not written (--quick; see --output)")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    tmp.replace(output)
    print(f"written to {output}")


if __name__ == "__main__":
    main()
