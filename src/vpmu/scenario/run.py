"""Build the machine a scenario describes and run it: a translation of the scenario's keys
into ``vpmu.machine.build`` calls, whose refusals become errors naming the key path.

``run_scenario(scenario, design=None)`` builds the host (preset, CPUs, perf with its limits,
the NMI watchdog), its host tasks, and each VM with its design, guest PMU shape, event filter
and guest OSes, then runs until every guest's tools and workload have finished. A design
given here replaces every VM's design; its options go on top of the VM's ``design_options``
when the names match (so a scenario can pin an option the command line does not name).

Time: ``duration_ms`` is the guest work a scenario asks for, measured at bare-metal speed; a
guest slowed by exits takes longer, so the run ends when the guests finish (``end_ps``), not
at ``duration_ms``. Host tasks are sized to ``duration_ms`` from their start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vpmu.arch import events as ev
from vpmu.arch.x86.caps import x86_caps
from vpmu.errors import RunIncompleteError
from vpmu.guest.linux import RunResult
from vpmu.host.machine import Host
from vpmu.host.perf.core import PerfSubsystem
from vpmu.linux.perf import DEFAULT_FREQ
from vpmu.machine.build import (
    build_host,
    event_filter,
    mix_refusal,
    open_perf_tool,
    schedule_perf_tool,
    spawn_counter_reader,
    spawn_load,
)
from vpmu.machine.ffwd import install
from vpmu.machine.vm import Vm, run_until_done
from vpmu.metrics import RunMetrics
from vpmu.scenario.guests import guest_os_for, workload_truth
from vpmu.scenario.load import ScenarioError
from vpmu.scenario.schema import HostTaskSpec, Scenario, VmSpec
from vpmu.trace import Record, Sink
from vpmu.vpmu.design import DesignSpec, enforces_event_filter, make_design
from vpmu.vpmu.filter import (
    KVM_PMU_EVENT_ALLOW,
    KVM_PMU_EVENT_DENY,
    KVM_PMU_EVENT_FLAG_MASKED_EVENTS,
    Errno,
    PmuEventFilter,
)
from vpmu.workloads.table import resolve


def _ms(x: float) -> int:
    """Milliseconds (a scenario's floats) as integer picoseconds."""
    return round(x * 10**9)


def _us(x: float) -> int:
    """Microseconds as integer picoseconds."""
    return round(x * 10**6)


RUN_LIMIT = 20
"""A run that has not finished after this many times ``duration_ms`` is an error."""
RUN_LIMIT_FLOOR_MS = 100
"""...or after this many simulated milliseconds, when that is later: a guest's boot and its
tool's setup take time of their own, so a very short ``duration_ms`` still finishes."""


@dataclass
class RunOutcome:
    """What a run leaves for the results: its metrics (streamed from its trace as it ran),
    the host, the VMs and the end time."""

    scenario: Scenario
    designs: list[str]
    host: Host
    vms: list[Vm]
    end_ps: int
    host_tools: dict[str, Any] = field(default_factory=dict)
    metrics: RunMetrics = field(default_factory=RunMetrics)
    """Every metric section, folded in record by record (``vpmu.metrics.stream``)."""

    @property
    def vcpu_tasks(self) -> list[str]:
        """The vCPU threads' task names."""
        return [v.task.name for vm in self.vms for v in vm.vcpus]

    @property
    def records(self) -> list[Record]:
        """Every trace record of the run, if it was built with ``keep_trace=True``; else
        ``vpmu.trace.TraceNotKeptError`` (the results need none: see ``metrics``)."""
        return self.host.trace.records

    @property
    def events_processed(self) -> int:
        """Simulation events the run took (a measure of its work, deterministic)."""
        return self.host.env.events_processed

    def design_options(self) -> list[dict[str, object]]:
        """Each VM's design options, typed, defaults included."""
        return [dict(vm.design.options) for vm in self.vms]

    def accuracy_rows(self) -> list[dict[str, Any]]:
        """Per vCPU tool event: the count its runs reported and the workload's truth."""
        rows: list[dict[str, Any]] = []
        sc = self.scenario
        workloads = sc.workloads()
        for vm_spec, vm in zip(sc.vm, self.vms, strict=True):
            for v in vm.vcpus:
                truth = workload_truth(vm_spec, v.index, sc.duration_ms, sc.host.preset,
                                       workloads=workloads)
                rows += _tool_rows(v.task.name, v.task.result, truth)
        return rows

    def tool_runs(self) -> list[dict[str, Any]]:
        """Every guest tool run as plain data, in vCPU then run order: ``vcpu`` (task name),
        ``tool``, ``run`` (1-based) and ``events`` (name, supported, count, scaled_count,
        time_enabled_ns, time_running_ns): what ``perf stat -x,`` prints per run."""
        out: list[dict[str, Any]] = []
        for vm in self.vms:
            for v in vm.vcpus:
                result = v.task.result
                if not isinstance(result, list):
                    continue
                out += [{"vcpu": v.task.name, "tool": r.tool, "run": i,
                         "events": [{"name": e.name, "supported": e.supported,
                                     "count": e.count, "scaled_count": e.scaled_count,
                                     "time_enabled_ns": e.time_enabled_ns,
                                     "time_running_ns": e.time_running_ns}
                                    for e in r.events]}
                        for i, r in enumerate(result, 1) if isinstance(r, RunResult)]
        return out

    def guest_end_ps(self) -> tuple[int, ...]:
        """Each VM's guest completion time: when the last of its vCPU threads finished (a
        finished run's have all finished; a vCPU with no guest entry ends at once)."""
        return tuple(max(v.task.exit_ps or 0 for v in vm.vcpus) for vm in self.vms)

    def vm_facts(self) -> list[dict[str, Any]]:
        """Each VM as plain data: name, design and options, vCPU threads, whether an event
        filter was set and whether the design enforces it."""
        return [{"name": vm.name, "design": vm.design.name,
                 "design_options": dict(vm.design.options),
                 "vcpu_tasks": [v.task.name for v in vm.vcpus],
                 "event_filter": {"installed": vm.event_filter is not None,
                                  "enforced": vm.event_filter is not None
                                  and enforces_event_filter(vm.design)},
                 "guest_perf": _guest_perf([v.task.result for v in vm.vcpus])}
                for vm in self.vms]

    def guest_results(self) -> dict[str, Any]:
        """What each vCPU's guest main program returned, by task name."""
        return {v.task.name: v.task.result for vm in self.vms for v in vm.vcpus}


def _guest_perf(vcpu_results: list[Any]) -> dict[str, Any]:
    """What the guests' perf limits did over their tool runs: per-tick throttles
    (PERF_RECORD_THROTTLE), perf_sample_event_took's rate lowerings ("perf: interrupt took
    too long") and the lowest perf_event_max_sample_rate a run ended with (None: no tool)."""
    runs = [r for result in vcpu_results for r in _tool_results(result)]
    return {"throttles": sum(e.throttles for r in runs for e in r.events),
            "rate_lowerings": sum(len(r.rate_lowerings) for r in runs),
            "max_sample_rate": min((r.max_sample_rate for r in runs), default=None)}


PERF_EVENT_KEYS = {
    "cycles": ev.CYCLES, "cpu-cycles": ev.CYCLES, "instructions": ev.INSTRUCTIONS,
    "branches": ev.BRANCHES, "branch-instructions": ev.BRANCHES,
    "branch-misses": ev.BRANCH_MISSES, "cache-references": ev.LLC_REFERENCES,
    "cache-misses": ev.LLC_MISSES, "ref-cycles": ev.REF_CYCLES,
}
"""perf's generic event names and the workload key each counts (for the truth)."""


def _tool_results(result: Any) -> list[RunResult]:
    """A vCPU guest's tool runs: its result when that is a list of RunResult (what a guest
    with a perf tool returns), else none."""
    if isinstance(result, list) and all(isinstance(r, RunResult) for r in result):
        return result
    return []


def _tool_rows(vcpu: str, result: Any, truth: dict[str, int]) -> list[dict[str, Any]]:
    """Sum a guest tool's runs per event; pair each with the truth of its key."""
    # keyed by the event's place in the tool's list too: `-e instructions -e instructions`
    # is two events, each with the whole truth, not one with twice the count
    totals: dict[tuple[str, int, str], int | None] = {}
    for run_result in _tool_results(result):
        for i, e in enumerate(run_result.events):
            key = (run_result.tool, i, e.name)
            prev = totals.get(key, 0)
            totals[key] = None if prev is None or not e.supported else prev + e.scaled_count
    return [{"vcpu": vcpu, "tool": tool, "event": name, "count": count,
             "truth": truth.get(PERF_EVENT_KEYS.get(name, ""))}
            for (tool, _, name), count in totals.items()]


def design_for(vm: VmSpec, override: str | None) -> str:
    """The VM's design spec: the scenario's, or ``override`` (merged as documented above)."""
    if override is None:
        return vm.design_spec
    spec = DesignSpec.parse(override)
    if spec.name != vm.design_name:
        return str(spec)
    merged = dict(DesignSpec.parse(vm.design_spec).options)
    merged.update(spec.options)
    return str(DesignSpec(spec.name, tuple(merged.items())))


def build_filter(vm: VmSpec, host: Host) -> PmuEventFilter | None:
    """The VM's KVM_SET_PMU_EVENT_FILTER, or ValueError with KVM's errno."""
    f = vm.filter
    if f is None:
        return None
    action = KVM_PMU_EVENT_ALLOW if f.action == "allow" else KVM_PMU_EVENT_DENY
    result = event_filter(
        x86_caps(host.preset.caps), action, f.events, fixed_counter_bitmap=f.fixed_counter_bitmap,
        flags=KVM_PMU_EVENT_FLAG_MASKED_EVENTS if f.masked else 0)
    if isinstance(result, Errno):
        raise ValueError(f"KVM_SET_PMU_EVENT_FILTER fails with {result.name}")
    return result


def build(scenario: Scenario, design: str | None = None, *, source: str = "<scenario>",
          keep_trace: bool = False, sinks: Sequence[Sink] = (),
          fast_forward: bool = True) -> RunOutcome:
    """The machine of ``scenario``, ready to run. What the machine refuses (a design or option
    the registry does not know, a filter KVM fails, designs that cannot share a host, a
    host tool perf refuses at build time) is a ScenarioError naming ``source`` (the file) or
    ``--design``, and the key path.

    The run's records stream into ``outcome.metrics`` and each of ``sinks`` (an exporter that
    writes as it goes) and are not kept, so memory does not grow with the simulated time;
    ``keep_trace=True`` also keeps them, for ``outcome.records`` (an exporter or a report
    that needs the whole trace at once)."""
    h = scenario.host
    host, perf = build_host(h.preset, cpus=h.cpus, tick_hz=h.tick_hz, seed=scenario.seed,
                            clear_dirty_counters=h.clear_dirty_counters,
                            max_sample_rate=h.max_sample_rate, nmi_watchdog_on=h.nmi_watchdog,
                            vhe=h.vhe)
    outcome = RunOutcome(scenario, [], host, [], 0)
    host.trace.keep(keep_trace)
    host.trace.subscribe(outcome.metrics)
    for sink in sinks:
        host.trace.subscribe(sink)
    for i, task in enumerate(scenario.host_task):
        _host_task(outcome, perf, i, task)
    workloads = scenario.workloads()
    for i, vm_spec in enumerate(scenario.vm):
        where = source if design is None else f"--design {design}"
        spec = design_for(vm_spec, design)
        refusal = mix_refusal(outcome.designs, spec)
        if refusal is not None:
            raise ScenarioError.one(where, f"vm[{i}].design", refusal)
        outcome.designs.append(spec)
        try:
            vm_design = make_design(spec)
        except ValueError as err:
            raise ScenarioError.one(where, f"vm[{i}].design", str(err)) from None
        _check_guests(vm_spec, i, source)
        guests = [guest_os_for(vm_spec, vcpu, scenario.duration_ms, h.preset,
                               workloads=workloads)
                  for vcpu in range(vm_spec.vcpus)]
        try:
            vm_filter = build_filter(vm_spec, host)
        except ValueError as err:
            raise ScenarioError.one(source, f"vm[{i}].filter", str(err)) from None
        try:
            vm = Vm(host, vm_design, guests, name=vm_spec.name, pin=vm_spec.pin,
                    shape=_shape(vm_spec), event_filter=vm_filter)
        except ValueError as err:
            raise ScenarioError.one(where, f"vm[{i}].design",
                                    f"{spec!r} on VM {vm_spec.name!r}: {err}") from None
        outcome.vms.append(vm)
    if fast_forward:  # exact: the same results, only sooner (vpmu.machine.ffwd)
        install(host, [v for vm in outcome.vms for v in vm.vcpus])
    return outcome


def _check_guests(vm: VmSpec, i: int, source: str) -> None:
    """Each vCPU runs at most one [[vm.guest]] entry."""
    seen: set[int] = set()
    for j, g in enumerate(vm.guest):
        mine = set(range(vm.vcpus)) if g.vcpu == "all" else {g.vcpu}
        if mine & seen:
            raise ScenarioError.one(source, f"vm[{i}].guest[{j}].vcpu",
                                    f"vCPU {min(mine & seen)} already runs an earlier "
                                    f"[[vm.guest]] entry")
        seen |= mine


def _shape(vm: VmSpec) -> dict[str, object]:
    """The [vm.pmu] overrides as X86PmuCaps changes."""
    if vm.pmu is None:
        return {}
    shape: dict[str, object] = {}
    for key, caps_key in (("version", "version"), ("gp_counters", "n_gp"),
                          ("fixed_counters", "n_fixed")):
        value = getattr(vm.pmu, key)
        if value is not None:
            shape[caps_key] = value
    return shape


def _host_task(outcome: RunOutcome, perf: PerfSubsystem, i: int, t: HostTaskSpec) -> None:
    """Open a host tool at its start time, or spawn a host task."""
    host = outcome.host
    cpus = [t.cpu] if t.cpu is not None else list(range(len(host.cpus)))
    name = f"host_task[{i}] {t.kind}"
    start_ps = _ms(t.start_ms)
    if t.kind in ("perf-record", "perf-stat"):
        def open_tool() -> object:
            return open_perf_tool(perf, t.kind, t.events, cpus=cpus,
                                  freq=t.sample_freq or DEFAULT_FREQ, period=t.period,
                                  count_guest=not t.exclude_guest,
                                  branch_stack=t.branch_stack)

        def keep(tool: object) -> None:
            outcome.host_tools[name] = tool
        schedule_perf_tool(host, open_tool, start_ps, keep)
    elif t.kind == "rdpmc-reader":
        rounds = max(int(_ms(outcome.scenario.duration_ms) // _us(t.interval_us)), 1)
        spawn_counter_reader(host, name, interval_ps=_us(t.interval_us), rounds=rounds,
                             cpu=t.cpu, clear_dirty=t.clear_dirty_counters, start_ps=start_ps)
    else:
        # A load lasts the run: its work is its CPU's cycles over that time (the boot CPU's
        # clock for an unpinned load on a host whose clusters' clocks differ).
        mhz = (host.cpus[t.cpu] if t.cpu is not None else host).preset.core_mhz
        cycles = mhz * int(1000 * (outcome.scenario.duration_ms - t.start_ms))
        work = resolve(t.workload, outcome.scenario.workloads())
        spawn_load(host, name, work.streams(cycles), cpu=t.cpu, start_ps=start_ps)


PROGRESS_STEPS = 200
"""A progress callback hears of a run this many times over its ``duration_ms``."""


def run(outcome: RunOutcome, progress: Callable[[int, int], None] | None = None
        ) -> RunOutcome:
    """Run until every guest has finished (at least ``duration_ms``); ``progress(now_ps,
    duration_ps)`` is called as simulated time advances (the run is the same either way)."""
    host, duration = outcome.host, _ms(outcome.scenario.duration_ms)
    limit = max(duration * RUN_LIMIT, _ms(RUN_LIMIT_FLOOR_MS))
    if progress is None:
        host.run(duration)
    else:
        # The steps only report progress, so a fast-forward may pass several (pass_ps), up
        # to just short of duration: the run then goes through duration as without them.
        step = max(duration // PROGRESS_STEPS, 1)
        while host.env.now_ps < duration:
            until = min(host.env.now_ps + step, duration)
            host.run(until, pass_ps=max(until, duration - 1))
            progress(host.env.now_ps, duration)
    if not run_until_done(host, outcome.vms, limit_ps=limit):
        raise RunIncompleteError(f"scenario {outcome.scenario.name!r}: the guests did not "
                            f"finish within {limit / 1e9:g} simulated ms ({RUN_LIMIT} x "
                            f"duration_ms, at least {RUN_LIMIT_FLOOR_MS} ms)")
    outcome.end_ps = host.env.now_ps
    if isinstance(host.perf, PerfSubsystem):
        host.perf.lbr.finish()  # the LBRs' last stretches, as records the metrics fold
    outcome.metrics.finish(outcome.end_ps)
    return outcome


def run_scenario(scenario: Scenario, design: str | None = None) -> RunOutcome:
    """Build and run ``scenario`` (optionally under ``design``)."""
    return run(build(scenario, design))
