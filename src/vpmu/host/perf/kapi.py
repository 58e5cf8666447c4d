"""The kernel-counter API KVM's emulated vPMU uses, with its cost and a trace record per call.

perf_event_create_kernel_counter, perf_event_pause, perf_event_period, perf_event_enable,
perf_event_disable, perf_event_read_value and perf_event_release_kernel. Each call takes the
event's context lock and does its work; both are charged as host-kernel time on the CPU that
makes the call (the vCPU thread's), from the cost table, plus the per-event cost of any
counter it schedules in or out. A call on an event that is off pays only the lock (the work
short-circuits), which is what ``pmc->is_paused`` exploits by not calling at all.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.event import EventState, OverflowHandler, PerfEvent
from vpmu.sim import Event
from vpmu.trace import PerfCall

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.perf.core import PerfSubsystem
    from vpmu.host.task import Task

Call = Generator[Event, Any, Any]


class KernelCounterApi:
    """perf's in-kernel counter API, bound to one host's perf subsystem."""

    def __init__(self, perf: PerfSubsystem) -> None:
        self.perf = perf
        self.calls: dict[str, int] = {}
        """How many times each API was called."""

    def __repr__(self) -> str:
        return f"KernelCounterApi(perf={self.perf!r})"

    def _charge(self, on: Pcpu, api: str, ev: PerfEvent, extra_cycles: int,
                *, work: bool = True) -> Call:
        c = on.costs
        cycles = c.perf_ctx_lock_cycles + extra_cycles
        cycles += c.perf_call_work_cycles[api] if work else 0
        host = self.perf.host
        host.trace.emit(PerfCall(host.env.now_ps, on.index, api, ev.id, on.cycles_ps(cycles)))
        self.calls[api] = self.calls.get(api, 0) + 1
        yield from on.kernel_work(cycles, f"perf_event_{api}")

    def create_kernel_counter(self, on: Pcpu, attr: PerfEventAttr, *, cpu: int = -1,
                              task: Task | None = None,
                              overflow_handler: OverflowHandler | None = None) -> Call:
        """perf_event_create_kernel_counter: allocate, install (ctx_resched) and (unless
        disabled) start."""
        created: list[PerfEvent] = []
        extra = self._ctx_resched_cycles(on, lambda: created.append(self.perf.open(
            attr, cpu=cpu, task=task, overflow_handler=overflow_handler)))
        yield from self._charge(on, "create", created[0], extra)
        return created[0]

    def _resched_cycles(self, on: Pcpu, change: Any) -> int:
        """Apply ``change`` and return the sched in/out cycles it caused on the hardware."""
        before = sum(1 for e in self.perf.events if e.state is EventState.ACTIVE)
        change()
        after = sum(1 for e in self.perf.events if e.state is EventState.ACTIVE)
        c = on.costs
        if after >= before:
            return (after - before) * c.perf_sched_in_event_cycles
        return (before - after) * c.perf_sched_out_event_cycles

    def pause(self, on: Pcpu, ev: PerfEvent, *, reset: bool = True) -> Call:
        """perf_event_pause: disable, read the count, optionally reset it to 0."""
        off = ev.state is EventState.OFF
        extra = self._resched_cycles(on, lambda: self.perf.set_enabled(ev, False))
        count, _, _ = self.perf.read(ev)
        if reset:
            ev.count = 0
        yield from self._charge(on, "pause", ev, extra, work=not off)
        return count

    def period(self, on: Pcpu, ev: PerfEvent, period: int) -> Call:
        """perf_event_period: a new sample period, taking effect now if the event runs."""
        if period <= 0:
            raise ValueError(f"period must be positive, not {period!r}")
        ev.sample_period = ev.period_left = ev.last_period = period
        if ev.state is EventState.ACTIVE and ev.on_cpu is not None:
            drv = self.perf.drivers[ev.on_cpu]
            drv.read(ev)
            ev.period_left = period
            drv.arm(ev)
        yield from self._charge(on, "period", ev, 0, work=ev.state is not EventState.OFF)

    def enable(self, on: Pcpu, ev: PerfEvent) -> Call:
        """perf_event_enable: ctx_resched, which for a pinned task event schedules out the
        task context and the CPU's flexible events and schedules everything back in."""
        extra = self._ctx_resched_cycles(on, lambda: self.perf.set_enabled(ev, True))
        yield from self._charge(on, "enable", ev, extra)

    def _ctx_resched_cycles(self, on: Pcpu, change: Any) -> int:
        """Apply ``change``; the cycles of ctx_resched on ``on``: every event there but the
        CPU's pinned ones out, then in again (kernel/events/core.c ctx_resched)."""
        def movable() -> int:
            cpu_pinned = self.perf.cpu_ctx[on.index].pinned
            return sum(1 for e in self.perf.drivers[on.index].events.values()
                       if e not in cpu_pinned)
        before = movable()
        change()
        c = on.costs
        return before * c.perf_sched_out_event_cycles + movable() * c.perf_sched_in_event_cycles

    def disable(self, on: Pcpu, ev: PerfEvent) -> Call:
        """perf_event_disable."""
        off = ev.state is EventState.OFF
        extra = self._resched_cycles(on, lambda: self.perf.set_enabled(ev, False))
        yield from self._charge(on, "disable", ev, extra, work=not off)

    def read_value(self, on: Pcpu, ev: PerfEvent) -> Call:
        """perf_event_read_value: the count (with the hardware folded in)."""
        count, _, _ = self.perf.read(ev)
        yield from self._charge(on, "read_value", ev, 0, work=ev.state is not EventState.OFF)
        return count

    def release(self, on: Pcpu, ev: PerfEvent) -> Call:
        """perf_event_release_kernel."""
        extra = self._resched_cycles(on, lambda: self.perf.close(ev))
        yield from self._charge(on, "release", ev, extra)
