"""Event kernel vs SimPy: the same workloads on ``vpmu.sim`` and SimPy 4.1.2, in one run.

Why: the kernel's speed bounds every simulation we run, and SimPy is the model we copied, so it is
the yardstick. Both engines order their queues by (time, priority, sequence) and get identical
inputs, so they execute the same interleaving; the script checks that both end at the same time
with the same counts before it trusts any figure.

Workloads (integer delays drawn once from a fixed seed, outside the timed region):

- ``timeouts``: 100 processes, each looping ``yield env.timeout(delay)`` over its list of delays,
  until ``--events`` timeouts in total.
- ``interrupts``: the same, plus one process that every ``INTERRUPT_PERIOD`` time units interrupts
  the next worker in turn if it is still alive; workers catch the interrupt and go on with their
  next delay. Events are worker timeouts, interrupter timeouts and interrupts.

A third engine, ``heapq``, is the floor: a bare heap of (time, seq, process) and a loop that
resumes generators, with nothing else (no events, callbacks or priorities), so the distance to
it is what vpmu.sim's own features cost.

Each (workload, engine) pair is timed ``--repeat`` times, interleaved, and the best is kept.
Usage: ``python benchmarks/bench_sim.py [--events N] [--repeat R] [--output PATH]``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import simpy

from vpmu import sim

PROCESSES = 100
"""Concurrent worker processes."""
SEED = 20_240_501
"""Seed of the delay lists: fixed, so every run of the benchmark does the same work."""
MAX_DELAY = 1_000
"""Delays are uniform integers in [1, MAX_DELAY] time units (ps for vpmu.sim)."""
INTERRUPT_PERIOD = 50
"""The interrupter wakes every 50 units: with 100 workers, each is interrupted every ~5,000
units, about once per 10 of its timeouts (mean delay 500)."""
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "sim_vs_simpy.json"


@dataclass
class Stats:
    """What a workload counted; must be identical for both engines."""

    timeouts: int = 0
    interrupts: int = 0
    wakeups: int = 0
    done: int = 0
    end_time: int = 0

    @property
    def events(self) -> int:
        """Events the workload caused: every timeout and every interrupt delivered."""
        return self.timeouts + self.wakeups + self.interrupts


@dataclass(frozen=True)
class Engine:
    """The few places where the two engines' APIs differ."""

    name: str
    make_env: Callable[[], Any]
    interrupt_type: type[BaseException]
    now: Callable[[Any], int]


class BareInterruptError(Exception):
    """What a bare process receives when interrupted."""


class BareProcess:
    """A generator and the token of its one pending wake-up (an interrupt makes it stale)."""

    __slots__ = ("env", "gen", "is_alive", "token")

    def __init__(self, env: BareEnv, gen: Generator[Any, Any, None]) -> None:
        self.env, self.gen, self.token, self.is_alive = env, gen, 0, True
        env.wake(self, 0, None)

    def interrupt(self, cause: object) -> None:
        """Wake now with an exception; the pending timeout's entry goes stale."""
        self.env.wake(self, 0, BareInterruptError(cause))


class BareEnv:
    """The floor under any event kernel: a heapq of (time, seq, process, token, exception)
    and a loop that resumes generators (what remains if a kernel did nothing else). A
    timeout is its delay; no events, no callbacks, no priorities; an interrupt bumps the
    process's token so its pending entry is skipped."""

    def __init__(self) -> None:
        self.now = 0
        self._queue: list[tuple[int, int, BareProcess, int, BaseException | None]] = []
        self._seq = 0

    def timeout(self, delay: int) -> int:
        """A timeout is just its delay: the loop queues the process when it yields one."""
        return delay

    def process(self, gen: Generator[Any, Any, None]) -> BareProcess:
        """Start ``gen`` now."""
        return BareProcess(self, gen)

    def wake(self, proc: BareProcess, delay: int, exc: BaseException | None) -> None:
        """Queue ``proc``'s next resumption, superseding any pending one."""
        proc.token += 1
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, self._seq, proc, proc.token, exc))

    def run(self) -> None:
        """Resume processes in (time, seq) order until none is queued."""
        queue, pop = self._queue, heapq.heappop
        while queue:
            self.now, _, proc, token, exc = pop(queue)
            if token != proc.token:  # stale, but its time passes, as a kernel's would
                continue
            try:
                delay = proc.gen.throw(exc) if exc is not None else next(proc.gen)
            except StopIteration:
                proc.is_alive = False
                continue
            self.wake(proc, delay, None)


ENGINES = (
    Engine("vpmu.sim", lambda: sim.Environment(seed=0), sim.Interrupt, lambda env: env.now_ps),
    Engine("simpy", simpy.Environment, simpy.Interrupt, lambda env: int(env.now)),
    Engine("heapq", BareEnv, BareInterruptError, lambda env: int(env.now)),
)

Gen = Generator[Any, Any, None]


def worker(env: Any, delays: Sequence[int], stats: Stats, interrupt: type[BaseException]) -> Gen:
    """Wait out each delay in turn; an interrupt cuts the current wait short."""
    for delay in delays:
        try:
            yield env.timeout(delay)
            stats.timeouts += 1
        except interrupt:
            stats.interrupts += 1
    stats.done += 1


def interrupter(env: Any, procs: Sequence[Any], stats: Stats) -> Gen:
    """Every INTERRUPT_PERIOD, interrupt the next worker in turn, until all workers are done."""
    turn = 0
    while stats.done < len(procs):
        yield env.timeout(INTERRUPT_PERIOD)
        stats.wakeups += 1
        proc = procs[turn % len(procs)]
        turn += 1
        if proc.is_alive:
            proc.interrupt(turn)


def run_workload(engine: Engine, delays: Sequence[Sequence[int]], interrupts: bool) -> Stats:
    """Build the processes on a fresh environment of ``engine`` and run to completion."""
    env = engine.make_env()
    stats = Stats()
    procs = [env.process(worker(env, ds, stats, engine.interrupt_type)) for ds in delays]
    if interrupts:
        env.process(interrupter(env, procs, stats))
    env.run()
    stats.end_time = engine.now(env)
    return stats


def make_delays(events: int) -> list[list[int]]:
    """Split ``events`` timeouts over the workers, with delays from the fixed seed."""
    rng = random.Random(SEED)
    per_process = events // PROCESSES
    return [[rng.randint(1, MAX_DELAY) for _ in range(per_process)] for _ in range(PROCESSES)]


def measure(delays: list[list[int]], interrupts: bool, repeat: int) -> dict[str, Any]:
    """Time every engine ``repeat`` times, interleaved, and check they did the same work."""
    seconds: dict[str, list[float]] = {engine.name: [] for engine in ENGINES}
    stats: dict[str, Stats] = {}
    for _ in range(repeat):
        for engine in ENGINES:
            start = time.perf_counter()
            stats[engine.name] = run_workload(engine, delays, interrupts)
            seconds[engine.name].append(time.perf_counter() - start)
    first, *others = stats.values()
    for other in others:
        if other != first:
            raise AssertionError(f"engines diverged: {stats}")
    result: dict[str, Any] = {"events": first.events, "end_time": first.end_time}
    if interrupts:
        result["interrupts"] = first.interrupts
    for name, runs in seconds.items():
        result[name] = {
            "best_s": round(min(runs), 4),
            "runs_s": [round(s, 4) for s in runs],
            "events_per_s": round(first.events / min(runs)),
        }
    result["speedup_vs_simpy"] = round(min(seconds["simpy"]) / min(seconds["vpmu.sim"]), 2)
    result["heapq_floor_ratio"] = round(min(seconds["vpmu.sim"]) / min(seconds["heapq"]), 2)
    return result


def machine() -> dict[str, Any]:
    """Describe where the figures were measured."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "simpy": simpy.__version__,
    }


def print_table(results: dict[str, Any]) -> None:
    """Print one row per (workload, engine). Ratio: on the vpmu.sim row, SimPy's time over
    vpmu.sim's (its speed-up); on the heapq row, vpmu.sim's time over the bare loop's (what
    the kernel costs above the floor)."""
    print(f"{'workload':<12}{'engine':<10}{'events':>11}{'best s':>9}{'events/s':>12}{'ratio':>8}")
    for workload, r in results["workloads"].items():
        for engine in ENGINES:
            e = r[engine.name]
            ratio = {"vpmu.sim": f"{r['speedup_vs_simpy']:.2f}x",
                     "heapq": f"{r['heapq_floor_ratio']:.2f}x"}.get(engine.name, "")
            print(
                f"{workload:<12}{engine.name:<10}{r['events']:>11,}{e['best_s']:>9.3f}"
                f"{e['events_per_s']:>12,}{ratio:>8}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse options, run both workloads on both engines, write JSON and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="worker timeouts in total")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per engine (best kept)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    args = parser.parse_args(argv)
    if args.events < PROCESSES or args.repeat < 1:
        parser.error(f"--events must be >= {PROCESSES} and --repeat >= 1")
    delays = make_delays(args.events)
    results = {
        "benchmark": "vpmu.sim vs SimPy: same workload, same interleaving, best of repeats",
        "machine": machine(),
        "parameters": {
            "events": args.events,
            "processes": PROCESSES,
            "seed": SEED,
            "max_delay": MAX_DELAY,
            "interrupt_period": INTERRUPT_PERIOD,
            "repeat": args.repeat,
        },
        "workloads": {
            "timeouts": measure(delays, interrupts=False, repeat=args.repeat),
            "interrupts": measure(delays, interrupts=True, repeat=args.repeat),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
