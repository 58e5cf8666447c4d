"""``struct perf_event`` and ``struct hw_perf_event`` as the guest's perf keeps them.

The names are the kernel's (include/linux/perf_event.h), so the driver and core code read
like their C: ``hw.period_left``, ``hw.prev_count``, ``PERF_HES_STOPPED``. Times are in
nanoseconds of the guest clock (perf_clock: RDTSC on x86, CNTVCT_EL0 on arm64).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

PERF_HES_STOPPED = 0x01
"""The counter is stopped (hw.state)."""
PERF_HES_UPTODATE = 0x02
"""event.count is up to date with the counter."""
PERF_HES_ARCH = 0x04
"""Do not start the counter when the PMU is re-enabled (added without PERF_EF_START)."""

MAX_INTERRUPTS = (1 << 64) - 1
"""hw.interrupts of a throttled event (the kernel's ~0UL)."""


class EventState(enum.IntEnum):
    """PERF_EVENT_STATE_*: ordered, as the kernel compares them."""

    ERROR = -2
    OFF = -1
    INACTIVE = 0
    ACTIVE = 1


@dataclass(frozen=True, slots=True)
class PerfEventAttr:
    """The parts of ``struct perf_event_attr`` the tools set."""

    name: str
    """The event as the user named it (``cycles``, ``r412e:u``)."""
    sample_period: int = 0
    """Fixed period (``-c``); 0 for a counting event unless ``freq``."""
    sample_freq: int = 0
    """Target samples per second in frequency mode (``-F``)."""
    freq: bool = False
    exclude_user: bool = False
    exclude_kernel: bool = False
    exclude_hv: bool = False
    """Set with any ``:u`` / ``:k`` modifier; the Arm driver's filter reads it (INCLUDE_EL2)."""
    branch_sample_type: int = 0
    """PERF_SAMPLE_BRANCH_* bits: each sample carries the LBR stack (``perf record -b``,
    ``--call-graph lbr``)."""
    sample_read: bool = False
    """PERF_SAMPLE_READ with PERF_FORMAT_GROUP: each sample carries the counts of the
    event's whole group (the leader of a ``{...}:S`` group in perf record)."""

    @property
    def is_sampling(self) -> bool:
        """is_sampling_event(): a period or a frequency is set."""
        return self.sample_period != 0 or (self.freq and self.sample_freq != 0)


@dataclass(eq=False, slots=True)
class HwPerfEvent:
    """``struct hw_perf_event``: the event as the driver programs it (the Arm driver uses only
    ``config_base``, its PMEVTYPER value, of the register fields)."""

    config: int
    """Event select without EN: event, umask, USR, OS, INT (hwc->config)."""
    constraint: int
    """Global counter indices the event may use (its constraint's idxmsk)."""
    sample_period: int
    last_period: int
    period_left: int
    idx: int = -1
    """Assigned global counter index; -1 never assigned (kept after x86_pmu_del, as in C)."""
    last_tag: int = 0
    config_base: int = 0
    """EVNTSEL MSR, or FIXED_CTR_CTRL for a fixed counter."""
    event_base: int = 0
    """Counter MSR written by x86_perf_event_set_period."""
    event_base_rdpmc: int = 0
    """RDPMC index read by x86_perf_event_update."""
    state: int = PERF_HES_STOPPED | PERF_HES_UPTODATE
    prev_count: int = 0
    interrupts: int = 0
    interrupts_seq: int = -1
    freq_time_stamp: int = 0
    """perf_clock (ns) of the last overflow, for the frequency estimate."""
    freq_count_stamp: int = 0
    """event.count at the last tick's frequency adjustment."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample written to the ring buffer: when (the guest clock's count: TSC, or
    CNTVCT_EL0 on arm64) and the period it stands for."""

    tsc: int
    period: int
    read: tuple[int, ...] = ()
    """With PERF_SAMPLE_READ: the count of each event of the group, leader first
    (perf_output_read_group)."""


@dataclass(eq=False, slots=True)
class PerfEvent:
    """``struct perf_event``: attr, hardware state, count, times, and what it produced."""

    attr: PerfEventAttr
    hw: HwPerfEvent
    state: EventState = EventState.OFF
    count: int = 0
    total_time_enabled: int = 0
    total_time_running: int = 0
    tstamp: int = 0
    """perf_clock (ns) of the last time update."""
    samples: list[Sample] = field(default_factory=list)
    keep_samples: bool = True
    """Whether a sample written to the ring buffer stays in ``samples`` (``perf record -o
    /dev/null`` drains the buffer as it is written: nothing is kept however long the run)."""
    throttles: int = 0
    """Times the event was throttled (perf_log_throttle(event, 0): PERF_RECORD_THROTTLE)."""
    unthrottles: int = 0
    """Times it was unthrottled (perf_log_throttle(event, 1): PERF_RECORD_UNTHROTTLE), at
    the tick or when scheduled in again."""
    leader: PerfEvent | None = None
    """The group leader (event->group_leader); None: the event leads its own group."""
    siblings: list[PerfEvent] = field(default_factory=list)
    """A leader's sibling_list, in the order they were opened."""

    def __repr__(self) -> str:
        return f"PerfEvent({self.attr.name!r}, state={self.state.name}, idx={self.hw.idx})"

    @property
    def group_leader(self) -> PerfEvent:
        """event->group_leader: the leader, or the event itself."""
        return self if self.leader is None else self.leader

    @property
    def group(self) -> list[PerfEvent]:
        """The event's group: the leader, then its siblings (for_each_sibling_event)."""
        leader = self.group_leader
        return [leader, *leader.siblings]

    def update_times(self, now_ns: int) -> None:
        """Bring time_enabled/time_running up to ``now_ns`` (perf_event_update_time)."""
        dt = now_ns - self.tstamp
        if self.state >= EventState.INACTIVE:
            self.total_time_enabled += dt
        if self.state == EventState.ACTIVE:
            self.total_time_running += dt
        self.tstamp = now_ns

    def set_state(self, state: EventState, now_ns: int) -> None:
        """perf_event_set_state: account the time spent in the old state first."""
        self.update_times(now_ns)
        self.state = state
