"""The results JSON of a run (docs/scenarios.md, "Results": contract v1).

Top-level keys, in this order: scenario, design, design_options, preset, sim, vm_exits,
msr_exits, perf_calls, guest_pmi, overhead, accuracy, host_profiling, leaks, lbr, arm64,
pollution, vms (appended: keys are only ever added at the end). ``overhead`` also carries the
mediated PMU context switches (``pmu_switch``, and their time as ``by_cause_ns.pmu_switch``)
and the baselines (``vs_unprofiled``, ``vs_bare_metal`` and the completion times they compare,
``baseline``: ``vpmu.scenario.baseline``). ``vms`` describes each VM: design, options, event
filter, exits, PMIs, overhead and baselines.
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
from operator import itemgetter
from typing import Any, Protocol

from vpmu.metrics import RunMetrics
from vpmu.metrics.accuracy import accuracy
from vpmu.metrics.baseline import NO_BASELINE, Baseline, relative


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

    def guest_end_ps(self) -> tuple[int, ...]:
        """Each VM's guest completion time."""
        ...

    def vm_facts(self) -> list[dict[str, Any]]:
        """Each VM's name, design, options, vCPU threads and event filter."""
        ...


RESULT_KEYS = ("scenario", "design", "design_options", "preset", "sim", "vm_exits",
               "msr_exits", "perf_calls", "guest_pmi", "overhead", "accuracy",
               "host_profiling", "leaks", "lbr", "arm64", "pollution", "vms")


def results(outcome: RunOutcome, baseline: Baseline = NO_BASELINE) -> dict[str, Any]:
    """The results of one run as plain JSON data, with its ``baseline`` completion times
    (none measured: the baseline keys are null)."""
    sc, end_ps = outcome.scenario, outcome.end_ps
    metrics = outcome.metrics
    sections = metrics.sections(end_ps, outcome.vcpu_tasks)
    ends = outcome.guest_end_ps()
    sections["overhead"].update(_baseline(_latest(ends), *baseline.pick(_latest)))
    first = outcome.designs[0].partition(":")[0] if outcome.designs else None
    out: dict[str, Any] = {
        "scenario": {"name": sc.name, "file_model": sc.model_dump(mode="json")},
        "design": first,
        "design_options": (outcome.design_options() or [{}])[0],
        "preset": sc.host.preset,
        "sim": {"duration_ms": sc.duration_ms, "end_ms": _ms(end_ps),
                "seed": sc.seed, "events": outcome.events_processed,
                "records": outcome.metrics.records},
        "vm_exits": sections["vm_exits"], "msr_exits": sections["msr_exits"],
        "perf_calls": sections["perf_calls"], "guest_pmi": sections["guest_pmi"],
        "overhead": sections["overhead"],
        "accuracy": accuracy(outcome.accuracy_rows()),
        "host_profiling": sections["host_profiling"], "leaks": sections["leaks"],
        "lbr": sections["lbr"], "arm64": sections["arm64"],
        "pollution": sections["pollution"],
        "vms": _vms(outcome, metrics, ends, baseline),
    }
    assert tuple(out) == RESULT_KEYS
    return out


def _latest(ends: tuple[int, ...]) -> int:
    """The run's completion: its latest VM's."""
    return max(ends, default=0)


def _baseline(end: int, unprofiled: int | None, bare_metal: int | None,
              bare_unprofiled: int | None) -> dict[str, Any]:
    """``vs_unprofiled``, ``vs_bare_metal`` and the completion times they compare (ms), with
    what profiling costs on bare metal (``bare_metal_vs_unprofiled``) beside them."""
    return {"vs_unprofiled": _vs(end, unprofiled), "vs_bare_metal": _vs(end, bare_metal),
            "baseline": {"guest_end_ms": _ms(end), "unprofiled_guest_end_ms": _ms(unprofiled),
                         "bare_metal_guest_end_ms": _ms(bare_metal),
                         "bare_metal_unprofiled_guest_end_ms": _ms(bare_unprofiled),
                         "bare_metal_vs_unprofiled": None if bare_metal is None
                         else _vs(bare_metal, bare_unprofiled)}}


def _vs(end: int, baseline: int | None) -> float | None:
    return None if baseline is None else relative(end, baseline)


def _ms(ps: int | None) -> float | None:
    """ps as the results print ms: to 1e-6 (None stays None)."""
    return None if ps is None else round(ps / 1e9, 6)


def _vms(outcome: RunOutcome, metrics: RunMetrics, ends: tuple[int, ...],
         baseline: Baseline) -> list[dict[str, Any]]:
    """Each VM: its design and options, event filter, exits, PMIs, overhead and baselines."""
    out = []
    for i, facts in enumerate(outcome.vm_facts()):
        tasks = facts.pop("vcpu_tasks")
        over = {k: v for k, v in metrics.overhead(tasks).items() if k in VM_OVERHEAD_KEYS}
        over.update(_baseline(ends[i], *baseline.pick(itemgetter(i))))
        out.append({**facts, "vcpus": len(tasks), **metrics.per_vm.section(facts["name"]),
                    "overhead": over})
    return out


VM_OVERHEAD_KEYS = ("guest_ns", "kvm_ns", "kvm_per_guest_s_ns", "slowdown")
"""The run's overhead keys that a VM has on its own (perf calls and PMU switches are the
host's, not attributed to a VM)."""



def dumps(data: dict[str, Any]) -> str:
    """Canonical JSON text: the same run gives the same bytes."""
    return json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n"


def dumps_list(runs: list[dict[str, Any]]) -> str:
    """Several runs' results (``vpmu compare --json``)."""
    return json.dumps(runs, indent=2, allow_nan=False) + "\n"
