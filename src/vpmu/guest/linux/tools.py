"""perf record and perf stat as the guest runs them, and what they report.

A tool opens its events (perf_event_open, disabled with enable_on_exec; a group ``{a,b}``
with its first event as the others' group_fd), lets the workload start (the enable
reschedules the context: counters armed and enabled inside one perf_pmu_disable/enable
pair), runs it at CPL 3, and at the workload's exit schedules the events out (disable,
RDPMC), reads and closes them. perf record's user-space side (draining
the ring buffer, writing perf.data) is not modelled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from vpmu.guest.linux.event import PerfEvent, PerfEventAttr, Sample
from vpmu.guest.linux.event_map import EventGroup, parse_event, parse_group
from vpmu.guest.linux.pmu import Gen
from vpmu.guest.port import Execute, GuestGen, SetCpl
from vpmu.linux.perf import DEFAULT_FREQ, DEFAULT_MAX_SAMPLE_RATE, RateLowering
from vpmu.uapi.perf_event import PERF_RECORD_BRANCH_STACKS

if TYPE_CHECKING:
    from vpmu.guest.linux.kernel import LinuxGuest

Workload = Callable[[], GuestGen]
"""A user-mode guest program (the command perf runs)."""


@dataclass(frozen=True, slots=True)
class EventResult:
    """One event of one run, as perf reports it."""

    name: str
    supported: bool
    """False: the open failed (perf prints ``<not supported>``)."""
    count: int = 0
    time_enabled_ns: int = 0
    time_running_ns: int = 0
    samples: tuple[Sample, ...] = ()
    """What perf.data would hold: every sample, if the tool keeps them (``PerfRecord``)."""
    sample_period: int = 0
    """The event's period when the run ended (converged value in frequency mode)."""
    throttles: int = 0
    """PERF_RECORD_THROTTLE records: times the event was throttled."""
    unthrottles: int = 0
    """PERF_RECORD_UNTHROTTLE records: times it was restarted after a throttle."""

    @property
    def scaled_count(self) -> int:
        """perf stat's estimate for a multiplexed event: count * enabled / running."""
        if not self.time_running_ns or self.time_running_ns >= self.time_enabled_ns:
            return self.count
        return round(Fraction(self.count * self.time_enabled_ns, self.time_running_ns))

    @property
    def running_fraction(self) -> Fraction:
        """time_running / time_enabled (1 when not multiplexed)."""
        if not self.time_enabled_ns:
            return Fraction(0)
        return Fraction(self.time_running_ns, self.time_enabled_ns)


@dataclass(frozen=True, slots=True)
class RunResult:
    """One tool run: its events, and the guest clock (x86: the TSC; arm64: CNTVCT_EL0, the
    generic timer at ``tsc_mhz``) at the workload's start and end."""

    tool: str
    events: tuple[EventResult, ...]
    start_tsc: int
    end_tsc: int
    tsc_mhz: int
    rate_lowerings: tuple[RateLowering, ...] = ()
    """What perf_sample_event_took lowered during the run (each a "perf: interrupt took too
    long" message of the kernel log)."""
    max_sample_rate: int = 0
    """kernel.perf_event_max_sample_rate when the run ended."""

    def __getitem__(self, name: str) -> EventResult:
        for e in self.events:
            if e.name == name:
                return e
        raise KeyError(f"event must be one of {[e.name for e in self.events]}, not {name!r}")

    @property
    def duration_ns(self) -> int:
        """Workload wall time on the guest clock."""
        return (self.end_tsc - self.start_tsc) * 1000 // self.tsc_mhz


def _result(name: str, e: PerfEvent | None) -> EventResult:
    if e is None:
        return EventResult(name, False)
    return EventResult(name, True, e.count, e.total_time_enabled, e.total_time_running,
                       tuple(e.samples), e.hw.sample_period, e.throttles, e.unthrottles)


class _PerfTool:
    """What perf record and perf stat share: open, enable on exec, run, exit, read, close."""

    tool = ""
    keep_samples = True
    """Whether a run's result keeps its events' samples (a counting tool writes none)."""

    def __init__(self, events: Sequence[str]) -> None:
        if isinstance(events, str) or not events:
            raise ValueError(f"events must be a non-empty list of event names, not {events!r}")
        # a bad name or group is refused here, not inside the guest
        self.groups = tuple(parse_group(text) for text in events)
        """Each -e argument: one event, or a group."""
        self.events = tuple(events)
        """The -e arguments as given."""
        self.names = tuple(name for g in self.groups for name in g.members)
        """Every event, group members in order: the run's results, one each."""

    def attrs(self, group: EventGroup, k: LinuxGuest) -> list[PerfEventAttr]:
        """The perf_event_attr of each event of ``group``, leader first."""
        raise NotImplementedError

    def setup(self, k: LinuxGuest) -> None:
        """The sysctls written before the runs (perf_event_max_sample_rate)."""

    def open_groups(self, k: LinuxGuest) -> Gen[list[PerfEvent | None]]:
        """perf_event_open of every event, a group's members with its leader as group_fd;
        a member of a group whose leader failed is not opened (get_group_fd: EINVAL)."""
        opened: list[PerfEvent | None] = []
        for group in self.groups:
            leader: PerfEvent | None = None
            for i, attr in enumerate(self.attrs(group, k)):
                if i and leader is None:
                    opened.append(None)
                    continue
                e = yield from k.syscall(k.perf.open(attr, leader))
                leader = e if i == 0 else leader
                opened.append(e)
        return opened

    def run(self, k: LinuxGuest, workload: Workload) -> Gen[RunResult]:
        """One run of ``perf <tool> -e ... -- workload``."""
        perf = k.perf
        lowered = len(perf.rate_lowerings)
        opened = yield from self.open_groups(k)
        live = [e for e in opened if e is not None]
        for e in live:
            e.keep_samples = self.keep_samples
        start = yield from perf.clock.read()
        if live:
            yield from k.syscall(perf.enable(live))
        yield SetCpl(3)
        yield from workload()
        yield SetCpl(0)
        if live:
            yield from k.syscall(perf.exit_task())
        end = yield from perf.clock.read()
        results = tuple(_result(n, e) for n, e in zip(self.names, opened, strict=True))
        for e in live:
            yield Execute(perf.costs.work("read", perf.costs.table.syscall_cycles))
            yield from k.syscall(perf.close(e))
        return RunResult(self.tool, results, int(start), int(end), perf.tsc_mhz,
                         tuple(perf.rate_lowerings[lowered:]), perf.max_sample_rate)


class PerfRecord(_PerfTool):
    """``perf record -e E1 -e E2 ... [-F freq | -c period] [-b | --call-graph lbr]``: sampling
    events, with the LBR's branch stack in each sample if ``branch_stack`` says so.

    An event may be a group ``{a,b,...}`` (each member samples) or ``{a,b,...}:S`` (only the
    leader samples, each sample reading the group: PERF_SAMPLE_READ).
    ``max_sample_rate`` is kernel.perf_event_max_sample_rate (seed 001, docs/sources.md, sets
    10,000; the kernel default is 100,000); ``freq`` above it is refused, as perf does.
    It is written once, before the runs; each run's -F is at most the sysctl as the run finds
    it (record_opts__config_freq: the kernel may have lowered it, perf_cpu_time_max_percent).
    ``keep_samples``: each run's result keeps its samples (``EventResult.samples``, about 100
    bytes each, thousands per simulated second); without, none is kept, as with ``perf record
    -o /dev/null`` (a scenario's results read only the counts).
    """

    tool = "record"

    def __init__(self, events: Sequence[str], *, freq: int = DEFAULT_FREQ,
                 period: int | None = None,
                 max_sample_rate: int = DEFAULT_MAX_SAMPLE_RATE,
                 keep_samples: bool = True, branch_stack: str = "none") -> None:
        super().__init__(events)
        self.keep_samples = keep_samples
        if branch_stack not in PERF_RECORD_BRANCH_STACKS:
            raise ValueError(f"branch_stack must be one of {tuple(PERF_RECORD_BRANCH_STACKS)}, "
                             f"not {branch_stack!r}")
        self.branch_sample_type = PERF_RECORD_BRANCH_STACKS[branch_stack]
        for label, value in (("freq", freq), ("max_sample_rate", max_sample_rate),
                             ("period", 1 if period is None else period)):
            if type(value) is not int or value <= 0:
                raise ValueError(f"{label} must be a positive int, not {value!r}")
        if period is None and freq > max_sample_rate:
            raise ValueError(f"freq must be at most max_sample_rate ({max_sample_rate}), "
                             f"not {freq!r}")
        self.freq, self.period, self.max_sample_rate = freq, period, max_sample_rate

    def __repr__(self) -> str:
        mode = f"period={self.period}" if self.period else f"freq={self.freq}"
        return f"PerfRecord({list(self.events)!r}, {mode}, max_sample_rate={self.max_sample_rate})"

    def attr(self, name: str, *, freq: int, sampling: bool = True,
             sample_read: bool = False) -> PerfEventAttr:
        """Sampling: a fixed period (-c) or a frequency (-F); counting for a member of a
        leader-sampling group (``sampling`` False)."""
        spec = parse_event(name)
        if not sampling:
            return PerfEventAttr(name, exclude_user=spec.exclude_user,
                                 exclude_kernel=spec.exclude_kernel, exclude_hv=spec.exclude_hv)
        if self.period is not None:
            return PerfEventAttr(name, sample_period=self.period,
                                 exclude_user=spec.exclude_user,
                                 exclude_kernel=spec.exclude_kernel,
                                 exclude_hv=spec.exclude_hv,
                                 branch_sample_type=self.branch_sample_type,
                                 sample_read=sample_read)
        return PerfEventAttr(name, sample_freq=freq, freq=True,
                             exclude_user=spec.exclude_user, exclude_kernel=spec.exclude_kernel,
                             exclude_hv=spec.exclude_hv,
                             branch_sample_type=self.branch_sample_type,
                             sample_read=sample_read)

    def attrs(self, group: EventGroup, k: LinuxGuest) -> list[PerfEventAttr]:
        """Every member samples, at -F lowered to the sysctl as it is now
        (record_opts__config_freq); in a ``:S`` group only the leader, with
        PERF_SAMPLE_READ (evsel__config_leader_sampling)."""
        freq = min(self.freq, k.perf.max_sample_rate)
        if not group.leader_sampling:
            return [self.attr(name, freq=freq) for name in group.members]
        leader, *rest = group.members
        return [self.attr(leader, freq=freq, sample_read=True),
                *(self.attr(name, freq=freq, sampling=False) for name in rest)]

    def setup(self, k: LinuxGuest) -> None:
        """echo max_sample_rate > /proc/sys/kernel/perf_event_max_sample_rate."""
        k.perf.set_max_sample_rate(self.max_sample_rate)


class PerfStat(_PerfTool):
    """``perf stat -e E1 -e E2 ...``: counting events (scaled when multiplexed)."""

    tool = "stat"

    def __repr__(self) -> str:
        return f"PerfStat({list(self.events)!r})"

    def attr(self, name: str) -> PerfEventAttr:
        """Counting: no period, no frequency."""
        spec = parse_event(name)
        return PerfEventAttr(name, exclude_user=spec.exclude_user,
                             exclude_kernel=spec.exclude_kernel, exclude_hv=spec.exclude_hv)

    def attrs(self, group: EventGroup, k: LinuxGuest) -> list[PerfEventAttr]:
        """Every member counting."""
        return [self.attr(name) for name in group.members]
