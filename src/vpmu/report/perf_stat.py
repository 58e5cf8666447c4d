"""The guest's ``perf stat -x,`` output: CSV that ``toplev --import`` and scripts read.

Field order (perf-stat(1), CSV FORMAT) without ``-I``, ``-a -A`` or ``-r``: value, unit, event,
run time (ns the counter ran), percentage of the enabled time it ran, metric value, metric unit.
A value perf could not read is ``<not supported>`` (the open failed) or ``<not counted>`` (it
never ran). perf prints the multiplexing-scaled count. Of perf's shadow metrics, the two that
need only the events of the same run are printed: ``insn per cycle`` on instructions and
``of all branches`` on branch-misses; the others (GHz, CPUs utilized) need task-clock, which
the model's tool does not count, and stay empty as perf leaves them when it lacks the input.

Each tool run is one block preceded by a ``#`` comment naming the vCPU and the run, as perf
stat writes ``# started on ...`` to an output file; readers skip ``#`` lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _metric(name: str, value: int, counts: dict[str, int]) -> tuple[str, str]:
    cycles = counts.get("cycles", counts.get("cpu-cycles", 0))
    branches = counts.get("branches", counts.get("branch-instructions", 0))
    if name == "instructions" and cycles:
        return f"{value / cycles:.2f}", "insn per cycle"
    if name == "branch-misses" and branches:
        return f"{100 * value / branches:.2f}", "of all branches"
    return "", ""


def perf_stat_line(event: dict[str, Any], counts: dict[str, int]) -> str:
    """One event's CSV line."""
    name, enabled, running = event["name"], event["time_enabled_ns"], event["time_running_ns"]
    if not event["supported"]:
        return f"<not supported>,,{name},0,100.00,,"
    if running == 0:
        return f"<not counted>,,{name},0,0.00,,"
    value = event["scaled_count"]
    pct = 100 * running / enabled if enabled else 100.0
    metric, unit = _metric(name, value, counts)
    return f"{value},,{name},{running},{pct:.2f},{metric},{unit}"


def perf_stat_csv(runs: Sequence[dict[str, Any]], *, tool: str = "stat") -> str:
    """The CSV of every ``tool`` run (``RunOutcome.tool_runs()`` rows); "" if there is none."""
    blocks: list[str] = []
    for run in runs:
        if run["tool"] != tool:
            continue
        counts = {e["name"]: e["scaled_count"] for e in run["events"]
                  if e["supported"] and e["time_running_ns"]}
        lines = [f"# perf {tool} on {run['vcpu']}, run {run['run']}"]
        lines += [perf_stat_line(e, counts) for e in run["events"]]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)
