"""Assembling a machine: the host with its perf and host tasks, and VMs with their designs,
guest PMU shapes and event filters, as the scenario runner (and any script) asks for them.

What the machine refuses is a ValueError saying why (a design the registry does not know or
that cannot share the host, a filter KVM fails with its errno, a perf tool perf refuses);
the caller says where in its input the request came from.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from vpmu.arch.presets import host_layout
from vpmu.arch.x86.caps import X86PmuCaps
from vpmu.host.machine import Host
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.guest import PerfOpenError
from vpmu.host.task import Run, Task
from vpmu.host.tools import PerfRecord, PerfStat, nmi_watchdog, rdpmc_reader
from vpmu.vpmu import registry
from vpmu.vpmu.design import DesignSpec
from vpmu.vpmu.filter import Errno, PmuEventFilter, set_pmu_event_filter
from vpmu.vpmu.x86.ops import ops_for
from vpmu.workloads.streams import Stream


def build_host(preset: str, *, cpus: int, tick_hz: int, seed: int,
               clear_dirty_counters: bool, max_sample_rate: int,
               nmi_watchdog_on: bool, vhe: bool = True) -> tuple[Host, PerfSubsystem]:
    """A host of ``preset`` with perf (its sysctls) and, if asked, the NMI watchdog;
    ``vhe`` False boots an arm64 host's kernel at EL1 (nVHE)."""
    host = Host(host_layout(preset), cpus=cpus, tick_hz=tick_hz, seed=seed, vhe=vhe)
    perf = PerfSubsystem(host, clear_dirty_counters=clear_dirty_counters,
                         max_sample_rate=max_sample_rate)
    if nmi_watchdog_on:
        nmi_watchdog(perf)
    return host, perf


def event_filter(host_caps: X86PmuCaps, action: int, events: Sequence[int], *,
                 fixed_counter_bitmap: int = 0, flags: int = 0,
                 nevents: int | None = None) -> PmuEventFilter | Errno:
    """KVM_SET_PMU_EVENT_FILTER on a VM of a host with ``host_caps``: the filter, or KVM's
    errno. Events are matched on the vendor's ``EVENTSEL_EVENT`` (8-bit event select on
    Intel, 12-bit on AMD); the ioctl is x86's (arm64 filters with
    KVM_ARM_VCPU_PMU_V3_FILTER)."""
    return set_pmu_event_filter(action, list(events), fixed_counter_bitmap=fixed_counter_bitmap,
                                flags=flags, nevents=nevents,
                                eventsel_event=ops_for(host_caps).EVENTSEL_EVENT)


def mix_refusal(earlier: Sequence[str], spec: str) -> str | None:
    """Why a VM of design ``spec`` cannot share the host with VMs of the designs ``earlier``
    (the registry's ``host_mode``: KVM's enable_mediated_pmu is a module parameter, so every
    PMU-enabled VM of a host is mediated or none is), or None."""
    conflict = registry.mix_conflict([DesignSpec.parse(s).name for s in earlier],
                                     DesignSpec.parse(spec).name)
    if conflict is None:
        return None
    other, reason = conflict
    return f"{spec!r} cannot run beside a VM with design {other!r}: {reason}"


def open_perf_tool(perf: PerfSubsystem, kind: str, events: Sequence[str], *, cpus: list[int],
                   freq: int, period: int | None, count_guest: bool,
                   branch_stack: str = "none") -> PerfRecord | PerfStat:
    """``perf record`` or ``perf stat`` system-wide on ``cpus`` (PerfOpenError if refused)."""
    if kind == "perf-record":
        return PerfRecord(perf, list(events), freq=freq, period=period, cpus=cpus,
                          count_guest=count_guest, branch_stack=branch_stack)
    return PerfStat(perf, list(events), cpus=cpus, count_guest=count_guest)


def schedule_perf_tool(host: Host, open_tool: Callable[[], object], start_ps: int,
                       done: Callable[[object], None]) -> None:
    """Open a perf tool at ``start_ps``; ``done`` gets the tool, or the errno name perf
    refused it with (kept as a PerfOpen record; the run goes on)."""
    def fire() -> None:
        try:
            done(open_tool())
        except PerfOpenError as err:
            done(err.errno_name)
    host.env.schedule(fire, delay_ps=start_ps)


def spawn_counter_reader(host: Host, name: str, *, interval_ps: int, rounds: int,
                         cpu: int | None, clear_dirty: bool | None, start_ps: int) -> None:
    """A self-monitoring task that reads every counter of the host's PMU from user mode
    (x86: RDPMC of each index) every ``interval_ps``, ``rounds`` times."""
    task = rdpmc_reader(name, list(host.preset.caps.user_read_indices), interval_ps=interval_ps,
                        rounds=rounds, affinity=frozenset({cpu}) if cpu is not None else None)
    task.clear_dirty = clear_dirty
    host.env.schedule(lambda: host.spawn(task), delay_ps=start_ps)


def spawn_load(host: Host, name: str, streams: Sequence[Stream], *, cpu: int | None,
               start_ps: int) -> None:
    """A host task running ``streams`` one after the other (a workload's phases)."""
    def load() -> Generator[Run, Any, None]:
        for stream in streams:
            yield Run(stream)
    task = Task(name, load, affinity=frozenset({cpu}) if cpu is not None else None)
    host.env.schedule(lambda: host.spawn(task), delay_ps=start_ps)
