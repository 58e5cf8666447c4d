"""Host tools: ``perf stat``, ``perf record``, the NMI watchdog and an RDPMC reader task.

They drive the perf subsystem the way the real tools and kernel code do. Like the perf tool's
``event_attr_init``, every event gets ``exclude_guest=1`` unless its spec says ``:G`` (count
the guest only) or the tool is asked to count the guest too (``perf kvm``); the NMI watchdog
builds its attr in the kernel and leaves exclude_guest clear, so it counts the guest.

On a host with several core PMUs (big.LITTLE) the tool does what perf v6.6 does
(tools/perf/util/parse-events.c ``parse_events_add_numeric(..., wildcard)``, pmus.c): a
generic event (``cycles``) or a sysfs event several PMUs have is opened once per core PMU,
each on that PMU's CPUs (a generic one with the PMU's type in config bits 63:32), and
``perf stat`` prints one line per PMU, ``armv8_cortex_a53/cycles/``; ``pmu/event/`` opens
only that PMU's; a raw ``rNN`` is opened once, as ``PERF_TYPE_RAW``, and the kernel gives
each CPU event to the PMU of its CPU (a task event to the first PMU).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from vpmu.host.perf.attr import PERF_PMU_TYPE_SHIFT, PERF_TYPE_MAX, PerfEventAttr
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.driver import PerfDriver
from vpmu.host.perf.event import PerfEvent, PmuIdentity
from vpmu.host.perf.tool_events import ParsedEvent, parse_spec, split_pmu_term
from vpmu.host.task import Sleep, Task, TaskOp, UserRdpmc
from vpmu.linux.perf import DEFAULT_FREQ
from vpmu.uapi.perf_event import (
    PERF_COUNT_HW_CPU_CYCLES,
    PERF_RECORD_BRANCH_STACKS,
    PERF_TYPE_HARDWARE,
    PERF_TYPE_RAW,
)

WATCHDOG_THRESH_S = 10
"""kernel.watchdog_thresh default: the hard-lockup detector's period is this many seconds of
cycles (hw_nmi_get_sample_period)."""


def tool_attrs(perf: PerfSubsystem, spec: str, *, count_guest: bool = False,
               **fields: Any) -> list[tuple[str, PerfEventAttr]]:
    """The events the perf tool opens for a spec (``cycles``, ``r1c2:u``, ``branches:G``,
    ``armv8_cortex_a72/cycles/``), each with the name ``perf stat`` prints for it."""
    pmus, several = perf.pmus, len(perf.pmus) > 1
    term = split_pmu_term(spec)
    if term is not None:
        pmu = next((p for p in pmus if p.name == term.pmu), None)
        if pmu is None:
            raise ValueError(f"PMU must be one of {[p.name for p in pmus]}, not {term.pmu!r} "
                             f"(in {spec!r})")
        parsed = parse_spec(_driver(perf, pmu).sysfs_events, term.spec)
        return [(spec, _attr(spec, _on_pmu(parsed, pmu, several), count_guest, fields))]
    parsed = _parse_any(perf, spec)
    name = spec.split(":", 1)[0]
    on: list[tuple[PmuIdentity, ParsedEvent]] = []
    if several and parsed.type == PERF_TYPE_HARDWARE:
        on = [(pmu, parsed) for pmu in pmus]
    elif several and parsed.type == PERF_TYPE_RAW:
        on = [(pmu, parsed._replace(config=_driver(perf, pmu).sysfs_events[name]))
              for pmu in pmus if name in _driver(perf, pmu).sysfs_events]
    if not on:
        return [(spec, _attr(spec, parsed, count_guest, fields))]
    return [(f"{pmu.name}/{spec}/", _attr(f"{pmu.name}/{spec}/", _on_pmu(p, pmu, True),
                                           count_guest, fields)) for pmu, p in on]


def _driver(perf: PerfSubsystem, pmu: PmuIdentity) -> PerfDriver:
    """The driver of a PMU's first CPU (where its sysfs events come from)."""
    return perf.drivers[min(pmu.cpus)]


def _parse_any(perf: PerfSubsystem, spec: str) -> ParsedEvent:
    """Parse with the first PMU's sysfs events, else any other's (the error: the first's)."""
    errors = []
    for pmu in perf.pmus:
        try:
            return parse_spec(_driver(perf, pmu).sysfs_events, spec)
        except ValueError as err:
            errors.append(err)
    raise errors[0]


def _on_pmu(parsed: ParsedEvent, pmu: PmuIdentity, extended: bool) -> ParsedEvent:
    """The event opened on one PMU: a generic one with the PMU's type in config bits 63:32
    (where the kernel has several core PMUs), any other with the PMU's own type."""
    if parsed.type == PERF_TYPE_HARDWARE:
        return parsed._replace(config=parsed.config | (pmu.type << PERF_PMU_TYPE_SHIFT
                                                       if extended else 0))
    return parsed._replace(type=pmu.type)


def _attr(label: str, parsed: ParsedEvent, count_guest: bool,
          fields: dict[str, Any]) -> PerfEventAttr:
    """The attr for a parsed event, with the tool's exclude_guest default."""
    m = parsed.modifiers
    explicit_host_guest = m.exclude_host or m.exclude_guest
    exclude_guest = m.exclude_guest or (not count_guest and not explicit_host_guest)
    return PerfEventAttr(type=parsed.type, config=parsed.config, exclude_user=m.exclude_user,
                         exclude_kernel=m.exclude_kernel, exclude_hv=m.exclude_hv,
                         exclude_host=m.exclude_host, exclude_guest=exclude_guest,
                         precise_ip=m.precise_ip, name=label, **fields)


def _open_all(perf: PerfSubsystem, attr: PerfEventAttr, cpus: Sequence[int] | None,
              task: Task | None) -> list[PerfEvent]:
    """One event per CPU (only the CPUs of the PMU the attr names, as the tool's evsel cpu
    map is), or one for the task."""
    if cpus is None:
        return [perf.open(attr, task=task)]
    named = attr.extended_type or (attr.type if attr.type >= PERF_TYPE_MAX else 0)
    pmu = next((p for p in perf.pmus if p.type == named), None) if named else None
    return [perf.open(attr, cpu=c) for c in cpus if pmu is None or c in pmu.cpus]


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
        """The opened events by the name perf stat prints (the spec, or ``pmu/spec/``)."""
        for spec in self.specs:
            for label, attr in tool_attrs(perf, spec, count_guest=count_guest):
                opened = _open_all(perf, attr, cpus, task)
                if opened:  # a PMU with none of the CPUs asked for is dropped, as perf does
                    self.events[label] = opened

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
            for label, attr in tool_attrs(perf, spec, count_guest=count_guest, **sampling):
                opened = _open_all(perf, attr, cpus, task)
                if opened:
                    self.events[label] = opened

    def __repr__(self) -> str:
        return f"PerfRecord(events={list(self.events)!r})"

    def samples(self) -> dict[str, int]:
        """Samples written per event."""
        return {spec: sum(ev.samples for ev in evs) for spec, evs in self.events.items()}


def nmi_watchdog(perf: PerfSubsystem) -> list[PerfEvent]:
    """The hard-lockup detector: one pinned cycles event per CPU that counts the guest too,
    its period this CPU's clock (arm64's ``hw_nmi_get_sample_period`` is per CPU; on arm64
    the kernel arms it only with pseudo-NMIs, which the model does not boot)."""
    return [perf.open(PerfEventAttr(type=PERF_TYPE_HARDWARE, config=PERF_COUNT_HW_CPU_CYCLES,
                                    pinned=True, name="nmi_watchdog",
                                    sample_period=cpu.preset.core_mhz * 1_000_000
                                    * WATCHDOG_THRESH_S),
                      cpu=cpu.index, overflow_handler=lambda ev, c: None)
            for cpu in perf.host.cpus]


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
