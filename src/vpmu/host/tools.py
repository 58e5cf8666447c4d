"""Host tools: ``perf stat``, ``perf record``, the NMI watchdog and an RDPMC reader task.

They drive the perf subsystem the way the real tools and kernel code do. Like the perf tool's
``event_attr_init``, every event gets ``exclude_guest=1`` unless its spec says ``:G`` (count
the guest only) or the tool is asked to count the guest too (``perf kvm``); the NMI watchdog
builds its attr in the kernel and leaves exclude_guest clear, so it counts the guest.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from vpmu.host.machine import Host
from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.event import PerfEvent
from vpmu.host.perf.x86.events_map import parse_event
from vpmu.host.task import Sleep, Task, TaskOp, UserRdpmc
from vpmu.linux.perf import DEFAULT_FREQ
from vpmu.uapi.perf_event import (
    PERF_COUNT_HW_CPU_CYCLES,
    PERF_RECORD_BRANCH_STACKS,
    PERF_TYPE_HARDWARE,
)

WATCHDOG_THRESH_S = 10
"""kernel.watchdog_thresh default: the hard-lockup detector's period is this many seconds of
cycles (hw_nmi_get_sample_period)."""


def tool_attr(host: Host, spec: str, *, count_guest: bool = False, **fields: Any) -> PerfEventAttr:
    """The attr the perf tool builds for an event spec (``cycles``, ``r1c2:u``, ``branches:G``)."""
    parsed = parse_event(host.preset.caps, spec)
    m = parsed.modifiers
    explicit_host_guest = m.exclude_host or m.exclude_guest
    exclude_guest = m.exclude_guest or (not count_guest and not explicit_host_guest)
    return PerfEventAttr(type=parsed.type, config=parsed.config, exclude_user=m.exclude_user,
                         exclude_kernel=m.exclude_kernel, exclude_hv=m.exclude_hv,
                         exclude_host=m.exclude_host, exclude_guest=exclude_guest,
                         precise_ip=m.precise_ip, name=spec, **fields)


@dataclass(frozen=True, slots=True)
class StatRow:
    """One line of ``perf stat``: the raw count, its times and the scaled estimate."""

    event: str
    count: int
    time_enabled_ps: int
    time_running_ps: int

    @property
    def running_fraction(self) -> float:
        """time_running / time_enabled (perf prints it as a percentage when < 100%)."""
        return self.time_running_ps / self.time_enabled_ps if self.time_enabled_ps else 0.0

    @property
    def scaled(self) -> int | None:
        """count x enabled / running, as perf_counts_values__scale does; None: never ran."""
        if self.time_running_ps == 0:
            return None
        return self.count * self.time_enabled_ps // self.time_running_ps


class PerfStat:
    """``perf stat -e ... [-a | -C cpus | -p task]``: counting events, aggregated per event."""

    def __init__(self, perf: PerfSubsystem, events: Sequence[str], *,
                 cpus: Sequence[int] | None = None, task: Task | None = None,
                 count_guest: bool = False) -> None:
        if (cpus is None) == (task is None):
            raise ValueError("perf stat needs exactly one of cpus (-a / -C) or task (-p)")
        self.perf = perf
        self.specs = list(events)
        self.events: dict[str, list[PerfEvent]] = {}
        for spec in self.specs:
            attr = tool_attr(perf.host, spec, count_guest=count_guest)
            targets = [perf.open(attr, cpu=c) for c in cpus] if cpus is not None else \
                [perf.open(attr, task=task)]
            self.events[spec] = targets

    def __repr__(self) -> str:
        return f"PerfStat(events={self.specs!r})"

    def rows(self) -> list[StatRow]:
        """Read every event; per-CPU instances are summed before scaling, as perf does."""
        rows = []
        for spec, evs in self.events.items():
            count = enabled = running = 0
            for ev in evs:
                c, e, r = self.perf.read(ev)
                count, enabled, running = count + c, enabled + e, running + r
            rows.append(StatRow(spec, count, enabled, running))
        return rows

    def format(self) -> str:
        """The table perf stat prints (counts scaled; the running percentage when < 100%)."""
        lines = []
        for r in self.rows():
            value = f"{r.scaled:,}" if r.scaled is not None else "<not counted>"
            pct = f"  ({100 * r.running_fraction:.2f}%)" if r.running_fraction < 1 else ""
            lines.append(f"{value:>20}      {r.event}{pct}")
        return "\n".join(lines)


class PerfRecord:
    """``perf record -e ... [-F freq | -c period] [-b | --call-graph lbr] [-a | -p task]``:
    sampling events, optionally with the LBR's branch stack in each sample."""

    def __init__(self, perf: PerfSubsystem, events: Sequence[str], *, freq: int = DEFAULT_FREQ,
                 period: int | None = None, cpus: Sequence[int] | None = None,
                 task: Task | None = None, count_guest: bool = False,
                 branch_stack: str = "none") -> None:
        if (cpus is None) == (task is None):
            raise ValueError("perf record needs exactly one of cpus (-a / -C) or task (-p)")
        if branch_stack not in PERF_RECORD_BRANCH_STACKS:
            raise ValueError(f"branch_stack must be one of {tuple(PERF_RECORD_BRANCH_STACKS)}, "
                             f"not {branch_stack!r}")
        sampling: dict[str, Any] = ({"sample_period": period} if period else
                                    {"freq": True, "sample_freq": freq})
        sampling["branch_sample_type"] = PERF_RECORD_BRANCH_STACKS[branch_stack]
        self.perf = perf
        self.events: dict[str, list[PerfEvent]] = {}
        for spec in events:
            attr = tool_attr(perf.host, spec, count_guest=count_guest, **sampling)
            self.events[spec] = ([perf.open(attr, cpu=c) for c in cpus] if cpus is not None
                                 else [perf.open(attr, task=task)])

    def __repr__(self) -> str:
        return f"PerfRecord(events={list(self.events)!r})"

    def samples(self) -> dict[str, int]:
        """Samples written per event."""
        return {spec: sum(ev.samples for ev in evs) for spec, evs in self.events.items()}


def nmi_watchdog(perf: PerfSubsystem) -> list[PerfEvent]:
    """The hard-lockup detector: one pinned cycles event per CPU that counts the guest too."""
    host = perf.host
    period = host.preset.core_mhz * 1_000_000 * WATCHDOG_THRESH_S
    attr = PerfEventAttr(type=PERF_TYPE_HARDWARE, config=PERF_COUNT_HW_CPU_CYCLES, pinned=True,
                         sample_period=period, name="nmi_watchdog")
    return [perf.open(attr, cpu=cpu.index, overflow_handler=lambda ev, c: None)
            for cpu in host.cpus]


def rdpmc_reader(name: str, ecxs: Sequence[int], *, interval_ps: int, rounds: int,
                 affinity: frozenset[int] | None = None) -> Task:
    """A task that may use RDPMC (its mm has cap_user_rdpmc) and reads the given counters
    every ``interval_ps``; every value it sees is in the trace (``CounterRead``)."""
    def program() -> Generator[TaskOp, Any, list[Any]]:
        seen: list[Any] = []
        for _ in range(rounds):
            for ecx in ecxs:
                seen.append((yield UserRdpmc(ecx)))
            yield Sleep(interval_ps)
        return seen
    return Task(name, program, affinity=affinity, rdpmc=True)
