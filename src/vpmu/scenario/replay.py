"""Replay a capture: the scenario a trace implies, to run under any design.

``reconstruct`` says what each vCPU's guest did with its PMU; this turns that into a
:class:`~vpmu.scenario.schema.Scenario` the model runs like any other, so one capture from a
production host can be "replayed" under the emulated, mediated or no vPMU and the predictions
compared. What a capture cannot show is filled in and listed in ``Replay.assumptions``:

- the CPU model (``--preset``; default Ice Lake for a VMX capture, Zen 4 for SVM);
- the workload's shape: the named phase whose event ratios are closest to the counts the
  periods imply (a single sampled event shows no ratio: the default phase is kept);
- the guest's ``perf_event_max_sample_rate`` and tick rate (the schema's defaults);
- VMs: vCPU threads are grouped into one VM until a vCPU index repeats (threads in pid order);
- vCPUs without PMU activity run no workload.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vpmu.arch.presets import get_preset
from vpmu.errors import InputError
from vpmu.guest.linux.costs import NMI_ENTRY_CYCLES, NMI_EXIT_CYCLES
from vpmu.linux.perf import DEFAULT_FREQ
from vpmu.scenario.load import Problem, ScenarioError, apply_overrides, validate_scenario
from vpmu.scenario.reconstruct import VcpuProfile, reconstruct
from vpmu.scenario.run import PERF_EVENT_KEYS
from vpmu.scenario.schema import Scenario
from vpmu.trace.parse import (
    Capture,
    CaptureInfo,
    CaptureReader,
    open_trace,
    read_lines,
    require_trace,
)
from vpmu.vpmu.registry import default_design
from vpmu.workloads.phases import PHASES, Phase

DEFAULT_PRESET = {"vmx": "intel-icx", "svm": "amd-zen4"}
DEFAULT_PHASE = "br_instr"


@dataclass
class Replay:
    """A capture, what it shows per vCPU thread, and the scenario it implies (None when the
    capture has no guest PMU activity)."""

    capture: CaptureInfo
    profiles: list[VcpuProfile]
    scenario: Scenario | None
    assumptions: list[str] = field(default_factory=list)
    vm_of: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Thread pid -> (VM index, vCPU index) in the scenario."""


def _counted(p: VcpuProfile) -> dict[str, float]:
    """Events each sampled counter counted: the sum of the periods it armed (each ran to its
    overflow, but the last of a run)."""
    return {c.event: float(sum(c.periods)) for c in p.counters.values() if c.periods}


def fit_phase(counted: dict[str, float]) -> tuple[str, float | None]:
    """The phase whose per-event rates best match ``counted`` (least squared log ratio of each
    event to the first, over the events with a workload key), and its error; None when fewer
    than two such events are left."""
    top = max(counted.values(), default=0.0)
    # A rare event's frequency-mode periods stay tiny and its re-arms after a tick's stop are
    # partial, so its total is unreliable: events under 1% of the largest are left out.
    keyed = {PERF_EVENT_KEYS[n]: v for n, v in counted.items()
             if n in PERF_EVENT_KEYS and v > 0 and v >= top / 100}
    if len(keyed) < 2:
        return DEFAULT_PHASE, None
    best: tuple[float, str] = (math.inf, DEFAULT_PHASE)
    for name, phase in PHASES.items():
        err = _misfit(phase, keyed)
        if err is not None and err < best[0]:
            best = (err, name)
    return best[1], (None if math.isinf(best[0]) else best[0])


def _misfit(phase: Phase, keyed: dict[str, float]) -> float | None:
    truth = phase.stream(instructions=10**9).counts
    pairs = [(k, v) for k, v in keyed.items() if truth.get(k)]
    if len(pairs) < 2:
        return None
    (k0, v0), rest = pairs[0], pairs[1:]
    return sum((math.log(v / v0) - math.log(truth[k] / truth[k0])) ** 2 for k, v in rest)


def _workload_ps(p: VcpuProfile, core_mhz: int) -> int:
    """The workload's time at bare-metal speed: the guest's time outside its PMI handlers'
    visible part, less the NMI entry and exit each PMI costs before its first exit and after
    its last (the guest model's own estimates; a capture cannot show them)."""
    nmi_ps = (NMI_ENTRY_CYCLES + NMI_EXIT_CYCLES) * 10**6 // core_mhz
    return max(p.workload_ps - len(p.pmis) * nmi_ps, 0)


def _vms(profiles: list[VcpuProfile]) -> dict[int, tuple[int, int]]:
    vm_of: dict[int, tuple[int, int]] = {}
    vm, seen = 0, set[int]()
    for p in sorted(profiles, key=lambda p: p.pid):
        if p.vcpu in seen:
            vm, seen = vm + 1, set()
        seen.add(p.vcpu)
        vm_of[p.pid] = (vm, p.vcpu)
    return vm_of


def _guest(p: VcpuProfile, vcpu: int, core_mhz: int) -> dict[str, Any] | None:
    events = [c.event for _, c in sorted(p.counters.items())]
    if not p.pmis:
        return ({"vcpu": vcpu, "tool": "perf-stat", "events": events, "workload": DEFAULT_PHASE}
                if events else None)
    if not p.sampling:  # counters pass through: the selectors and the PMIs show, no periods
        events = events or ["cycles"]
        return {"vcpu": vcpu, "tool": "perf-record", "events": events,
                "period": _cadence_period(p, events, core_mhz), "workload": DEFAULT_PHASE}
    mode, value = p.mode()
    guest: dict[str, Any] = {"vcpu": vcpu, "tool": "perf-record", "events": events,
                             "workload": fit_phase(_counted(p))[0]}
    if mode == "period":
        guest["period"] = value
    else:  # the target -F does not show in periods that are still adapting: perf's default
        guest["runs"] = max(p.runs, 1)
    return guest


def _cadence_period(p: VcpuProfile, events: list[str], core_mhz: int) -> int:
    """The one period (``-c``) at which ``events`` over the default workload overflow as often
    as the capture's PMIs came (an event without a workload key counts like cycles)."""
    cycles = max(_workload_ps(p, core_mhz) * core_mhz // 10**6, 1)
    counts = PHASES[DEFAULT_PHASE].stream_for_cycles(cycles).counts
    total = sum(counts.get(PERF_EVENT_KEYS.get(e, ""), cycles) for e in events)
    return max(total // len(p.pmis), 1)


def replay_scenario(capture: Capture, *, preset: str | None = None,
                    overrides: Iterable[str] = ()) -> Replay:
    """The scenario ``capture`` implies (see the module docstring), with ``--set`` overrides
    applied last."""
    return _replay(capture.info, reconstruct(capture), preset, overrides)


def replay_file(path: str | os.PathLike[str], *, preset: str | None = None,
                overrides: Iterable[str] = ()) -> Replay:
    """``replay_scenario`` of a capture file, read as a stream (memory does not grow with
    the number of lines). A file with no trace text, or no KVM event, is an InputError
    naming it; a bad event line a TraceParseError naming its line and column."""
    reader = CaptureReader(os.fspath(path))
    with open_trace(path) as f:
        profiles = reconstruct(reader.events(read_lines(f)))
    require_trace(reader)
    info = reader.info()
    if not info.counts:
        seen = ", ".join(f"{k} x{n}" for k, n in sorted(info.skipped.items())[:5])
        raise InputError(info.source, "has no kvm_entry, kvm_exit or kvm_msr event to replay "
                                      f"(read {info.lines} lines: {seen})")
    return _replay(info, profiles, preset, overrides)


def _replay(capture: CaptureInfo, profiles: list[VcpuProfile], preset: str | None,
            overrides: Iterable[str]) -> Replay:
    isa = capture.isa
    replay = Replay(capture, profiles, None, vm_of=_vms(profiles))
    active = [p for p in profiles if p.counters or p.pmis]
    if not active:
        return replay
    preset = preset or DEFAULT_PRESET[isa]
    core_mhz = get_preset(preset).core_mhz
    by_vm: dict[int, list[VcpuProfile]] = {}
    for p in profiles:
        by_vm.setdefault(replay.vm_of[p.pid][0], []).append(p)
    vms = []
    for i, members in sorted(by_vm.items()):
        vcpus = max(p.vcpu for p in members) + 1
        pin = [0] * vcpus
        for p in members:
            pin[p.vcpu] = p.cpu
        guests = [g for p in members if (g := _guest(p, p.vcpu, core_mhz)) is not None]
        if guests:
            vms.append({"name": f"vm{i}", "vcpus": vcpus, "pin": pin, "design": default_design(),
                        "guest": guests})
    duration_ps = max(_workload_ps(p, core_mhz) for p in active)
    data = {"name": f"replay of {capture.source}",
            "description": f"reconstructed from {capture.format} capture {capture.source}",
            "duration_ms": max(round(duration_ps / 1e9, 3), 0.001), "seed": 0,
            "host": {"preset": preset, "cpus": max(p.cpu for p in profiles) + 1},
            "vm": vms}
    scenario = _validate(data, replay)
    replay.scenario = apply_overrides(scenario, overrides) if overrides else scenario
    replay.assumptions = _assumptions(replay, preset, isa)
    return replay


def _validate(data: dict[str, Any], replay: Replay) -> Scenario:
    """The reconstructed scenario, checked; a problem in it is reported at the capture line
    whose thread implied it (the user never wrote the scenario's key paths)."""
    try:
        return validate_scenario(data, source=replay.capture.source)
    except ScenarioError as err:
        raise ScenarioError([_at_line(p, replay) for p in err.problems]) from None


def _at_line(problem: Problem, replay: Replay) -> Problem:
    """``problem`` moved to the line of the thread that implied it: the VM's highest vCPU for
    a ``vm[i]`` key, the thread on the highest CPU for ``host.cpus``."""
    m = re.match(r"vm\[(\d+)\]", problem.path)
    if m:
        members = [p for p in replay.profiles if replay.vm_of[p.pid][0] == int(m[1])]
    elif problem.path == "host.cpus":
        members = [max(replay.profiles, key=lambda p: p.cpu)]
    else:
        return problem
    thread = max(members, key=lambda p: p.vcpu)
    return Problem(f"{replay.capture.source}:{thread.line}", "",
                   f"vCPU thread {thread.comm}-{thread.pid} (vCPU {thread.vcpu}, CPU "
                   f"{thread.cpu}) implies {problem.path} of the replayed scenario: "
                   f"{problem.message}")


def _assumptions(replay: Replay, preset: str, isa: str) -> list[str]:
    out = [f"CPU model: {preset} (a capture does not name it; --preset changes it)",
           f"frequency-mode sampling: perf's default -F {DEFAULT_FREQ} (the periods of a short "
           "run are still adapting and do not give the target; --set vm[0].guest[0].freq=N)",
           "guest perf_event_max_sample_rate, perf_cpu_time_max_percent and tick rate: the "
           "scenario defaults (not visible in a capture; --set changes them)"]
    if isa == "svm":
        out.append("AMD capture: PMU programming is decoded for Intel's MSRs only")
    for p in replay.profiles:
        out += [f"vCPU thread {p.pid} ({p.comm}): {c} is enabled but not modelled; left out"
                for c in sorted(p.unmodelled)]
        if p.pmis and not p.sampling:
            out.append(f"vCPU thread {p.pid} ({p.comm}): counter writes do not exit "
                       f"(a mediated vPMU); its events share one period set from the PMI "
                       f"cadence over the default workload")
        if p.sampling:
            phase, err = fit_phase(_counted(p))
            fit = "no event ratio to fit: default" if err is None else f"fit error {err:.3g}"
            out.append(f"vCPU thread {p.pid} ({p.comm}): workload {phase} ({fit})")
    return out


def _counter_name(idx: int) -> str:
    return f"FIXED{idx - 32}" if idx >= 32 else f"GP{idx}"


def _ms(ps: int) -> float:
    return round(ps / 1e9, 6)


def observed(replay: Replay) -> dict[str, Any]:
    """What the capture itself shows, as plain data (the ``observed`` section of a replay)."""
    cap = replay.capture
    by_reason: dict[str, int] = {}
    for p in replay.profiles:
        for reason, n in p.exits.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    return {
        "source": cap.source, "format": cap.format, "lines": cap.lines,
        "events": dict(cap.counts),
        "skipped": dict(cap.skipped),
        "pmu_activity": any(p.counters or p.pmis for p in replay.profiles),
        "vm_exits": {"total": sum(by_reason.values()),
                     "by_reason": dict(sorted(by_reason.items(), key=lambda kv: -kv[1]))},
        "vcpus": [_vcpu_row(p, replay.vm_of[p.pid]) for p in replay.profiles],
        "assumptions": replay.assumptions,
    }


def _vcpu_row(p: VcpuProfile, where: tuple[int, int]) -> dict[str, Any]:
    guest_s = p.guest_ps / 1e12
    mode, value = p.mode() if p.sampling else (
        "counting" if p.counters else "pmi-only" if p.pmis else "none", 0)
    handler = sorted(p.handler_ps)
    return {
        "thread": f"{p.comm}-{p.pid}", "vm": f"vm{where[0]}", "vcpu": p.vcpu, "cpu": p.cpu,
        "wall_ms": _ms(p.end_ps - p.start_ps), "guest_ms": _ms(p.guest_ps),
        "exits": sum(p.exits.values()),
        "exits_by_reason": dict(sorted(p.exits.items(), key=lambda kv: -kv[1])),
        "msr_exits": dict(sorted(p.msrs.items(), key=lambda kv: -kv[1])),
        "pmu_msr_accesses": p.pmu_accesses, "pmis": len(p.pmis),
        "pmi_rate_hz": round(len(p.pmis) / guest_s, 1) if guest_s else 0.0,
        "exits_per_pmi": round(sum(p.exits.values()) / len(p.pmis), 3) if p.pmis else None,
        "handler_ns": ({"count": len(handler), "mean": round(sum(handler) / len(handler) / 1e3, 1),
                        "p50": round(handler[len(handler) // 2] / 1e3, 1)} if handler else None),
        "mode": mode, "period": value if mode == "period" else None,
        "overflow_rate_hz": value if mode == "freq" else None, "runs": p.runs,
        "events": [{"counter": _counter_name(i), "event": c.event, "usr": c.usr, "os": c.os,
                    "overflows": c.overflows, "periods_armed": len(c.periods)}
                   for i, c in sorted(p.counters.items())],
    }
