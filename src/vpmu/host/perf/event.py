"""A perf event: its attr, binding, scheduling state, count and times.

Times follow perf's rules: ``time_enabled`` grows while the event is enabled and its context
is active (always for a CPU event; while its task runs, for a task event), ``time_running``
while it is on a hardware counter. ``perf stat`` scales a multiplexed count by their ratio.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.constraint import Constraint

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.task import Task

OverflowHandler = Callable[["PerfEvent", "Pcpu"], None]
"""Called on each overflow of a kernel counter (KVM's kvm_perf_overflow)."""


class EventState(enum.Enum):
    """perf_event_state."""

    DEAD = "dead"
    ERROR = "error"
    """A pinned event that could not be scheduled: it stays off until re-enabled."""
    OFF = "off"
    INACTIVE = "inactive"
    ACTIVE = "active"


@dataclass(frozen=True)
class PmuIdentity:
    """A registered ``struct pmu``: the core PMU of a cluster of CPUs. Linux registers one
    per distinct core PMU (x86 ``cpu``; hybrid ``cpu_core`` / ``cpu_atom``; arm64
    ``armv8_pmuv3_N`` per cluster), each with a perf type id and the CPUs it covers."""

    name: str
    type: int
    """perf's type id: PERF_TYPE_RAW (4) for the first core PMU, dynamic ids after it."""
    cpus: frozenset[int]
    """The CPUs whose counters it programs (``cpus`` in sysfs)."""


@dataclass(eq=False)
class PerfEvent:
    """One perf event (a group of one: groups are not modelled)."""

    id: int
    attr: PerfEventAttr
    cpu: int
    """The CPU it is bound to, or -1 (a task event that follows its task)."""
    task: Task | None
    hw_config: int
    """The event-select encoding (event, umask, qualifiers) without USR/OS/INT/EN."""
    constraint: Constraint
    overflow_handler: OverflowHandler | None = None
    pmu: PmuIdentity | None = None
    """The PMU it belongs to (None: any CPU, as in a unit test without a perf subsystem)."""
    state: EventState = EventState.INACTIVE
    count: int = 0
    time_enabled_ps: int = 0
    time_running_ps: int = 0
    hw_idx: int | None = None
    """Global counter index while ACTIVE."""
    on_cpu: int | None = None
    prev_raw: int = 0
    sample_period: int = 0
    period_left: int = 0
    last_period: int = 0
    samples: int = 0
    interrupts: int = 0
    """Overflows since the last tick (for throttling)."""
    throttled: bool = False
    freq_stamp_ps: int = 0
    freq_count_base: int = 0
    _enabled_at: int | None = field(default=None, repr=False)
    _running_at: int | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"PerfEvent(id={self.id}, attr={self.attr.label()!r}, cpu={self.cpu})"

    @property
    def pinned(self) -> bool:
        """attr.pinned."""
        return self.attr.pinned

    @property
    def schedulable(self) -> bool:
        """May be put on a counter now (enabled, not in error, not throttled)."""
        return self.state in (EventState.INACTIVE, EventState.ACTIVE) and not self.throttled

    def applies_to(self, cpu: Pcpu) -> bool:
        """The event's binding allows it on ``cpu`` with its current task, and its PMU
        covers ``cpu`` (a task event of one hybrid PMU does not count on the other's CPUs)."""
        if self.cpu not in (-1, cpu.index):
            return False
        if self.pmu is not None and cpu.index not in self.pmu.cpus:
            return False
        return self.task is None or self.task is cpu.current

    def start_enabled(self, now: int) -> None:
        """Its context became active (or it was enabled)."""
        if self._enabled_at is None:
            self._enabled_at = now

    def stop_enabled(self, now: int) -> None:
        """Its context became inactive (or it was disabled)."""
        if self._enabled_at is not None:
            self.time_enabled_ps += now - self._enabled_at
            self._enabled_at = None

    def start_running(self, now: int) -> None:
        """It was put on a counter."""
        self._running_at = now

    def stop_running(self, now: int) -> None:
        """It left its counter."""
        if self._running_at is not None:
            self.time_running_ps += now - self._running_at
            self._running_at = None

    def times(self, now: int) -> tuple[int, int]:
        """(time_enabled, time_running) as of ``now``."""
        enabled, running = self.time_enabled_ps, self.time_running_ps
        if self._enabled_at is not None:
            enabled += now - self._enabled_at
        if self._running_at is not None:
            running += now - self._running_at
        return enabled, running
