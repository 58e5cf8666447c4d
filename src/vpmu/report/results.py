"""The results JSON of a run (DESIGN.md "Scenario and results", contract v1).

Top-level keys, in this order: scenario, design, design_options, preset, sim, vm_exits,
msr_exits, perf_calls, guest_pmi, overhead, accuracy, host_profiling, leaks, lbr, arm64,
pollution (appended: keys are only ever added at the end). ``overhead`` also carries the
mediated PMU context switches (``pmu_switch``, and their time as ``by_cause_ns.pmu_switch``).
``host_profiling`` is null unless a host CPU-bound exclude_guest event was opened or refused;
``leaks`` and ``pollution`` are always measured (zero when nothing was seen). ``lbr`` is null
unless a guest's LBR stack was saved or restored (``vpmu.metrics.lbr``); ``arm64`` is null
unless an arm64 vCPU was loaded (``vpmu.metrics.arm64``: coverage, migrations, cycle-counter
continuity).
Every number is computed from the run's records (folded into its metrics as they were emitted)
and results; nothing is looked up.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from vpmu.metrics import RunMetrics
from vpmu.metrics.accuracy import accuracy


class RunOutcome(Protocol):
    """What a finished run offers the report (``vpmu.scenario.run.RunOutcome``): its metrics
    and plain data only, so the report never reaches into the model."""

    scenario: Any
    designs: list[str]
    end_ps: int
    metrics: RunMetrics

    @property
    def vcpu_tasks(self) -> list[str]:
        """The vCPU threads' names."""
        ...

    @property
    def events_processed(self) -> int:
        """Simulation events."""
        ...

    def design_options(self) -> list[dict[str, object]]:
        """Each VM's typed design options."""
        ...

    def accuracy_rows(self) -> list[dict[str, Any]]:
        """Guest tool counts with their truths."""
        ...


RESULT_KEYS = ("scenario", "design", "design_options", "preset", "sim", "vm_exits",
               "msr_exits", "perf_calls", "guest_pmi", "overhead", "accuracy",
               "host_profiling", "leaks", "lbr", "arm64", "pollution")


def results(outcome: RunOutcome) -> dict[str, Any]:
    """The results of one run as plain JSON data."""
    sc, end_ps = outcome.scenario, outcome.end_ps
    sections = outcome.metrics.sections(end_ps, outcome.vcpu_tasks)
    first = outcome.designs[0].partition(":")[0] if outcome.designs else None
    out: dict[str, Any] = {
        "scenario": {"name": sc.name, "file_model": sc.model_dump(mode="json")},
        "design": first,
        "design_options": (outcome.design_options() or [{}])[0],
        "preset": sc.host.preset,
        "sim": {"duration_ms": sc.duration_ms, "end_ms": round(end_ps / 1e9, 6),
                "seed": sc.seed, "events": outcome.events_processed,
                "records": outcome.metrics.records},
        "vm_exits": sections["vm_exits"], "msr_exits": sections["msr_exits"],
        "perf_calls": sections["perf_calls"], "guest_pmi": sections["guest_pmi"],
        "overhead": sections["overhead"],
        "accuracy": accuracy(outcome.accuracy_rows()),
        "host_profiling": sections["host_profiling"], "leaks": sections["leaks"],
        "lbr": sections["lbr"], "arm64": sections["arm64"],
        "pollution": sections["pollution"],
    }
    assert tuple(out) == RESULT_KEYS
    return out


def dumps(data: dict[str, Any]) -> str:
    """Canonical JSON text: the same run gives the same bytes."""
    return json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n"


def dumps_list(runs: list[dict[str, Any]]) -> str:
    """Several runs' results (``vpmu compare --json``)."""
    return json.dumps(runs, indent=2, allow_nan=False) + "\n"
