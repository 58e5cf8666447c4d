"""The guest's perf core (kernel/events/core.c, 5.x), simplified to one CPU and one context.

What is kept is what decides register traffic and sampling rates:

- **Scheduling.** Flexible events go on in list order (ctx_flexible_sched_in); after the first
  that does not fit, the rest are not tried and the context needs rotation. Going off a counter
  is pmu->del (stop with update); going on is pmu->add, which programs the counter at once
  (Arm: armpmu_add) or at the outermost perf_pmu_enable (x86: x86_pmu_enable).
- **Multiplexing.** On the tick a context that needs rotation is scheduled out, its first
  active event moves to the tail, and it is scheduled in again (perf_rotate_context).
- **Frequency mode.** An event starts with period 1 (perf_event_alloc); every overflow less
  than two ticks after the previous one re-estimates the period (__perf_event_account_interrupt),
  and every tick re-estimates it from the tick's count (perf_adjust_freq_unthr_context).
- **Throttling.** More than max_sample_rate / HZ interrupts of one event within a tick stop it
  until the next tick (perf_cpu_time_max_percent = 0: no CPU-time-based lowering).
- **Times.** time_enabled / time_running per event, on the guest clock (perf_clock: RDTSC on
  x86, CNTVCT_EL0 on arm64; ``vpmu.guest.linux.clock``), so perf stat can scale multiplexed
  counts.

The core is the same for every architecture: it reaches the driver only through
``vpmu.guest.linux.pmu.PerfPmu``.
"""

from __future__ import annotations

from vpmu.guest.linux.clock import GuestClock, TscClock
from vpmu.guest.linux.costs import KernelCosts
from vpmu.guest.linux.event import (
    MAX_INTERRUPTS,
    EventState,
    PerfEvent,
    PerfEventAttr,
    Sample,
)
from vpmu.guest.linux.event_map import parse_event
from vpmu.guest.linux.pmu import Gen, PerfPmu
from vpmu.guest.port import Execute
from vpmu.linux.perf import (
    DEFAULT_MAX_SAMPLE_RATE,
    NSEC_PER_SEC,
    low_pass,
    perf_calculate_period,
)


class PerfCore:
    """perf for the guest's one CPU: one context of flexible events on the booted PMU.

    ``pmu`` is None when boot found no usable PMU: every hardware event fails to open.
    ``clock`` is perf_clock (default: a TSC at ``tsc_mhz``); ``costs`` the kernel's own
    work (default: the x86 table).
    """

    def __init__(self, pmu: PerfPmu | None, *, tick_hz: int, tsc_mhz: int = 1,
                 clock: GuestClock | None = None, costs: KernelCosts | None = None) -> None:
        self.pmu = pmu
        self.tick_nsec = (NSEC_PER_SEC + tick_hz // 2) // tick_hz if tick_hz else 0
        """TICK_NSEC."""
        self.clock: GuestClock = clock if clock is not None else TscClock(tsc_mhz)
        self.tsc_mhz = self.clock.mhz
        """The clock's frequency in MHz (a ``RunResult``'s ``tsc_mhz``)."""
        self.costs = costs if costs is not None else KernelCosts.for_arch("x86")
        self.pmu_disable_count = 0
        """pmu->pmu_disable_count: perf_pmu_disable nests."""
        self.events: list[PerfEvent] = []
        """ctx->event_list: every event of the context, in creation order."""
        self.flexible: list[PerfEvent] = []
        """ctx->flexible_groups in rotation order."""
        self.active: list[PerfEvent] = []
        """ctx->flexible_active, in sched-in order."""
        self.rotate_necessary = False
        self.throttled_seq = 0
        """perf_throttled_seq: bumped every tick."""
        self.throttled_count = 0
        """perf_throttled_count: throttles since the last tick."""
        self.max_samples_per_tick = 0
        self.set_max_sample_rate(DEFAULT_MAX_SAMPLE_RATE)
        if pmu is not None:
            pmu.overflow = self.overflow

    def __repr__(self) -> str:
        return f"PerfCore(pmu={self.pmu!r}, events={len(self.events)})"

    def set_max_sample_rate(self, rate: int) -> None:
        """kernel.perf_event_max_sample_rate: max_samples_per_tick = ceil(rate / HZ)."""
        hz = NSEC_PER_SEC // self.tick_nsec if self.tick_nsec else 1
        self.max_samples_per_tick = -(-rate // hz)

    def perf_pmu_disable(self) -> Gen[None]:
        """perf_pmu_disable: the outermost call disables the PMU (pmu->pmu_disable)."""
        assert self.pmu is not None
        self.pmu_disable_count += 1
        if self.pmu_disable_count == 1:
            yield from self.pmu.pmu_disable()

    def perf_pmu_enable(self) -> Gen[None]:
        """perf_pmu_enable: the outermost call re-enables it (pmu->pmu_enable)."""
        assert self.pmu is not None
        self.pmu_disable_count -= 1
        if self.pmu_disable_count == 0:
            yield from self.pmu.pmu_enable()

    def clock_ns(self) -> Gen[int]:
        """perf_clock(): the guest clock in nanoseconds."""
        return self.clock.to_ns((yield from self.clock.read()))

    def _work(self, name: str, cycles: int) -> Execute:
        return Execute(self.costs.work(name, cycles))

    # -- open / enable / exit / close ---------------------------------------------------------
    def open(self, attr: PerfEventAttr) -> Gen[PerfEvent | None]:
        """perf_event_open (disabled, enable_on_exec): None if the PMU cannot count it."""
        yield self._work("perf_event_open", self.costs.table.perf_event_open_cycles)
        if self.pmu is None:
            return None
        period = attr.sample_period if attr.is_sampling else self.pmu.counting_period
        if attr.freq and attr.sample_freq:
            period = 1  # perf_event_alloc: frequency mode starts at 1 and adapts
        hw = self.pmu.event_init(parse_event(attr.name), attr, period)
        if hw is None:
            return None
        e = PerfEvent(attr, hw, tstamp=(yield from self.clock_ns()))
        self.events.append(e)
        self.flexible.append(e)
        return e

    def enable(self, events: list[PerfEvent]) -> Gen[None]:
        """perf_event_enable_on_exec: mark them INACTIVE, then ctx_resched."""
        assert self.pmu is not None
        now = yield from self.clock_ns()
        for e in events:
            e.set_state(EventState.INACTIVE, now)
        yield from self.perf_pmu_disable()
        yield from self.ctx_sched_out(now)
        yield from self.ctx_sched_in(now)
        yield from self.perf_pmu_enable()

    def exit_task(self) -> Gen[None]:
        """perf_event_exit_task: schedule everything out and turn the events off."""
        now = yield from self.clock_ns()
        yield from self.ctx_sched_out(now)
        for e in self.events:
            e.set_state(min(e.state, EventState.OFF), now)

    def close(self, e: PerfEvent) -> Gen[None]:
        """close(): free the event."""
        yield self._work("perf_release", self.costs.table.perf_event_close_cycles)
        if e in self.active:
            yield from self.ctx_sched_out((yield from self.clock_ns()))
        self.events.remove(e)
        self.flexible.remove(e)
        if self.pmu is not None:
            self.pmu.active_events -= 1

    # -- scheduling ---------------------------------------------------------------------------
    def ctx_sched_out(self, now: int) -> Gen[None]:
        """ctx_sched_out(EVENT_FLEXIBLE): every active event off its counter (pmu->del);
        ``now`` is the context's time for the whole operation."""
        assert self.pmu is not None
        if not self.active:
            return
        yield from self.perf_pmu_disable()
        yield self._work("sched_out", self.costs.table.perf_sched_event_cycles * len(self.active))
        for e in list(self.active):
            e.set_state(EventState.INACTIVE, now)
            yield from self.pmu.delete(e)
            self.active.remove(e)
        yield from self.perf_pmu_enable()

    def ctx_sched_in(self, now: int) -> Gen[None]:
        """ctx_flexible_sched_in: add in order until one does not fit (merge_sched_in)."""
        assert self.pmu is not None
        can_add_hw, added = True, 0
        for e in self.flexible:
            if e.state != EventState.INACTIVE:
                continue
            if can_add_hw and (yield from self.pmu.add(e)):
                e.set_state(EventState.ACTIVE, now)
                if e.hw.interrupts == MAX_INTERRUPTS:
                    e.hw.interrupts = 0  # event_sched_in unthrottles
                self.active.append(e)
                added += 1
                continue
            can_add_hw = False
            self.rotate_necessary = True
        yield self._work("sched_in", self.costs.table.perf_sched_event_cycles * max(added, 1))

    def rotate(self) -> Gen[bool]:
        """perf_rotate_context: out, first active event to the tail, in."""
        if not self.rotate_necessary or self.pmu is None:
            return False
        yield self._work("perf_rotate_context", self.costs.table.perf_rotate_cycles)
        yield from self.perf_pmu_disable()
        first = self.active[0] if self.active else self.flexible[0]
        self.rotate_necessary = False
        now = yield from self.clock_ns()
        yield from self.ctx_sched_out(now)
        self.flexible.remove(first)
        self.flexible.append(first)
        yield from self.ctx_sched_in(now)
        yield from self.perf_pmu_enable()
        return True

    # -- the tick -----------------------------------------------------------------------------
    def task_tick(self) -> Gen[None]:
        """perf_event_task_tick (new throttle sequence, unthrottle, frequency adjustment),
        then the multiplexing rotation (the mux hrtimer fires every tick by default)."""
        self.throttled_seq += 1
        unthrottle, self.throttled_count = self.throttled_count, 0
        yield from self.adjust_freq_unthr_context(bool(unthrottle))
        yield from self.rotate()

    def adjust_freq_unthr_context(self, unthrottle: bool) -> Gen[None]:
        """For each active event, inside perf_pmu_disable/enable: restart a throttled one;
        in frequency mode stop it with update, re-estimate the period from the tick's count,
        and start it again (reloading the counter only if it counted)."""
        pmu = self.pmu
        nr_freq = sum(1 for e in self.active if e.attr.freq and e.attr.sample_freq)
        if pmu is None or not (nr_freq or unthrottle):
            return
        if self.active:
            yield self._work("adjust_freq",
                             self.costs.table.perf_tick_event_cycles * len(self.active))
        yield from self.perf_pmu_disable()
        for e in self.events:
            if e.state != EventState.ACTIVE:
                continue
            hw = e.hw
            if hw.interrupts == MAX_INTERRUPTS:
                hw.interrupts = 0
                yield from pmu.start(e, reload=False)
            if not (e.attr.freq and e.attr.sample_freq):
                continue
            yield from pmu.stop(e, update=True)
            delta = e.count - hw.freq_count_stamp
            hw.freq_count_stamp = e.count
            if delta > 0:
                yield from self.adjust_period(e, self.tick_nsec, delta, disable=False)
            yield from pmu.start(e, reload=delta > 0)
        yield from self.perf_pmu_enable()

    def adjust_period(self, e: PerfEvent, nsec: int, count: int, *, disable: bool) -> Gen[None]:
        """perf_adjust_period: low-pass the period toward the target; if what is left of
        the current period is over 8 new periods, restart from a fresh one."""
        hw = e.hw
        hw.sample_period = low_pass(hw.sample_period,
                                    perf_calculate_period(e.attr.sample_freq, nsec, count))
        if hw.period_left > 8 * hw.sample_period:
            assert self.pmu is not None
            if disable:
                yield from self.pmu.stop(e, update=True)
            hw.period_left = 0
            if disable:
                yield from self.pmu.start(e, reload=True)

    # -- overflow (called by the driver's PMI handler) ----------------------------------------
    def overflow(self, e: PerfEvent, last_period: int) -> Gen[bool]:
        """perf_event_overflow: account the interrupt (throttle check, frequency estimate)
        and output the sample. True: throttle the event."""
        if not e.attr.is_sampling:
            return False
        hw, throttle = e.hw, False
        if hw.interrupts_seq != self.throttled_seq:
            hw.interrupts_seq, hw.interrupts = self.throttled_seq, 1
        else:
            hw.interrupts += 1
            if hw.interrupts > self.max_samples_per_tick:
                self.throttled_count += 1
                hw.interrupts = MAX_INTERRUPTS
                e.throttles += 1
                throttle = True
        tsc = yield from self.clock.read()
        if e.attr.freq:
            now = self.clock.to_ns(tsc)
            delta, hw.freq_time_stamp = now - hw.freq_time_stamp, now
            if 0 < delta < 2 * self.tick_nsec:
                yield from self.adjust_period(e, delta, hw.last_period, disable=True)
        if e.keep_samples:
            e.samples.append(Sample(int(tsc), last_period))
        t = self.costs.table
        yield self._work("perf_event_overflow",
                         t.perf_overflow_cycles + t.perf_sample_output_cycles)
        return throttle
