"""The guest's perf core (kernel/events/core.c), simplified to one CPU and one context.

What is kept is what decides register traffic and sampling rates:

- **Groups and scheduling.** Each flexible group goes on as a unit (group_sched_in: a
  transaction of the leader's and the siblings' pmu->add, committed or cancelled whole); in
  list order (ctx_flexible_sched_in), and after the first group that does not fit the rest are
  not tried and the context needs rotation. Going off a counter is pmu->del (stop with
  update); going on is pmu->add, which programs the counter at once (Arm: armpmu_add) or at
  the outermost perf_pmu_enable (x86: x86_pmu_enable).
- **Multiplexing.** The PMU's mux hrtimer (perf_mux_hrtimer_handler, every
  perf_event_mux_interval_ms) schedules a context that needs rotation out, moves its first
  active group to the tail, and schedules it in again (perf_rotate_context).
- **Frequency mode.** An event starts with period 1 (perf_event_alloc); every overflow less
  than two ticks after the previous one re-estimates the period (__perf_event_account_interrupt),
  and every tick re-estimates it from the tick's count (perf_adjust_freq_unthr_context).
- **Throttling.** More than max_samples_per_tick interrupts of one event within a tick stop
  it until the next tick; each PMU interrupt's length feeds perf_sample_event_took, which
  lowers perf_event_max_sample_rate and max_samples_per_tick when the interrupts take more
  than perf_cpu_time_max_percent of the CPU (``vpmu.linux.perf.SampleRateLimits``).
- **Times.** time_enabled / time_running per event, on the guest clock (perf_clock: RDTSC on
  x86, CNTVCT_EL0 on arm64; ``vpmu.guest.linux.clock``), so perf stat can scale multiplexed
  counts.

Versions: the throttle, the CPU-time limit, the mux hrtimer and group scheduling are those
of v5.x to v6.12; the tick's frequency adjustment and unthrottling walk every event of the
context (ctx->event_list, siblings included) and restart a throttled event before adjusting
it, as up to v6.8 (v6.9 walks only the active group leaders and skips that restart for a
frequency-mode event: not modelled).

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
    RateLowering,
    SampleRateLimits,
    low_pass,
    perf_calculate_period,
    perf_cpu_hrtimer_ms,
)

NSEC_PER_MSEC = 1_000_000


class PerfCore:
    """perf for the guest's one CPU: one context of flexible groups on the booted PMU.

    ``pmu`` is None when boot found no usable PMU: every hardware event fails to open.
    ``clock`` is perf_clock (default: a TSC at ``tsc_mhz``); ``costs`` the kernel's own
    work (default: the x86 table).
    """

    def __init__(self, pmu: PerfPmu | None, *, tick_hz: int, tsc_mhz: int = 1,
                 clock: GuestClock | None = None, costs: KernelCosts | None = None) -> None:
        self.pmu = pmu
        self.limits = SampleRateLimits(tick_hz)
        """The sampling sysctls and what the kernel derives from them."""
        self.tick_nsec = self.limits.tick_nsec if tick_hz else 0
        """TICK_NSEC (0: no tick)."""
        self.clock: GuestClock = clock if clock is not None else TscClock(tsc_mhz)
        self.tsc_mhz = self.clock.mhz
        """The clock's frequency in MHz (a ``RunResult``'s ``tsc_mhz``)."""
        self.costs = costs if costs is not None else KernelCosts.for_arch("x86")
        self.pmu_disable_count = 0
        """pmu->pmu_disable_count: perf_pmu_disable nests."""
        self.events: list[PerfEvent] = []
        """ctx->event_list: every event of the context, in creation order."""
        self.flexible: list[PerfEvent] = []
        """ctx->flexible_groups (their leaders) in rotation order."""
        self.active: list[PerfEvent] = []
        """ctx->flexible_active: the leaders of the groups on the PMU, in sched-in order."""
        self.rotate_necessary = False
        self.mux_interval_ms = perf_cpu_hrtimer_ms(tick_hz)
        """pmu->hrtimer_interval_ms (sysfs perf_event_mux_interval_ms)."""
        self.hrtimer_active = False
        """cpc->hrtimer_active: the mux hrtimer is armed."""
        self.hrtimer_expires_ns = 0
        """The mux hrtimer's expiry (its first is 0, as hrtimer_init leaves it)."""
        self.throttled_seq = 0
        """perf_throttled_seq: bumped every tick."""
        self.throttled_count = 0
        """perf_throttled_count: throttles since the last tick."""
        if pmu is not None:
            pmu.overflow = self.overflow

    def __repr__(self) -> str:
        return f"PerfCore(pmu={self.pmu!r}, events={len(self.events)})"

    @property
    def max_samples_per_tick(self) -> int:
        """max_samples_per_tick (``limits``)."""
        return self.limits.max_samples_per_tick

    @property
    def max_sample_rate(self) -> int:
        """kernel.perf_event_max_sample_rate as it is now (perf_sample_event_took lowers it)."""
        return self.limits.sample_rate

    @property
    def rate_lowerings(self) -> list[RateLowering]:
        """Every lowering of the sampling limits so far (``limits.lowerings``)."""
        return self.limits.lowerings

    def set_max_sample_rate(self, rate: int) -> bool:
        """``echo rate > /proc/sys/kernel/perf_event_max_sample_rate``: False (EINVAL) while
        perf_cpu_time_max_percent is 0 or 100."""
        return self.limits.write_max_sample_rate(rate)

    def set_cpu_time_max_percent(self, percent: int) -> bool:
        """``echo percent > /proc/sys/kernel/perf_cpu_time_max_percent`` (0 or 100: no
        CPU-time limit)."""
        return self.limits.write_cpu_time_max_percent(percent)

    def set_mux_interval_ms(self, ms: int) -> bool:
        """``echo ms > .../perf_event_mux_interval_ms``: False (EINVAL) below 1; an armed
        timer keeps its expiry (the store restarts it only when idle)."""
        if ms < 1:
            return False
        self.mux_interval_ms = ms
        return True

    def sample_event_took(self, sample_len_ns: int, now_ns: int) -> None:
        """perf_sample_event_took, after each PMU interrupt (no tick: nothing to lower)."""
        if self.tick_nsec:
            self.limits.sample_event_took(sample_len_ns, now_ns=now_ns)

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

    def _active_events(self) -> list[PerfEvent]:
        """Every event on the PMU: each active group's ACTIVE members."""
        return [e for leader in self.active for e in leader.group
                if e.state == EventState.ACTIVE]

    # -- open / enable / exit / close ---------------------------------------------------------
    def open(self, attr: PerfEventAttr, group_leader: PerfEvent | None = None
             ) -> Gen[PerfEvent | None]:
        """perf_event_open (disabled, enable_on_exec), in ``group_leader``'s group if given:
        None if the PMU cannot count it, a frequency is above perf_event_max_sample_rate, or
        the group with it could not go on the PMU at all (validate_group)."""
        yield self._work("perf_event_open", self.costs.table.perf_event_open_cycles)
        if self.pmu is None or (attr.freq and attr.sample_freq > self.max_sample_rate):
            return None
        period = attr.sample_period if attr.is_sampling else self.pmu.counting_period
        if attr.freq and attr.sample_freq:
            period = 1  # perf_event_alloc: frequency mode starts at 1 and adapts
        hw = self.pmu.event_init(parse_event(attr.name), attr, period)
        if hw is None:
            return None
        if group_leader is not None and not self.pmu.validate_group(
                [m.hw for m in group_leader.group] + [hw]):
            self.pmu.active_events -= 1  # hw_perf_event_destroy
            return None
        e = PerfEvent(attr, hw, tstamp=(yield from self.clock_ns()))
        self.events.append(e)
        if group_leader is None:
            self.flexible.append(e)
        else:
            e.leader = group_leader
            group_leader.siblings.append(e)
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
        """close(): free the event; a leader's siblings become groups of their own
        (perf_group_detach)."""
        yield self._work("perf_release", self.costs.table.perf_event_close_cycles)
        if e.group_leader in self.active:
            yield from self.ctx_sched_out((yield from self.clock_ns()))
        self.events.remove(e)
        if e.leader is not None:
            e.leader.siblings.remove(e)
        else:
            self.flexible.remove(e)
            for sibling in e.siblings:
                sibling.leader = None
                self.flexible.append(sibling)
            e.siblings.clear()
        if self.pmu is not None:
            self.pmu.active_events -= 1

    # -- scheduling ---------------------------------------------------------------------------
    def ctx_sched_out(self, now: int) -> Gen[None]:
        """ctx_sched_out(EVENT_FLEXIBLE): every active group off the PMU (group_sched_out:
        the leader, then its siblings, each by pmu->del); ``now`` is the context's time for
        the whole operation."""
        assert self.pmu is not None
        if not self.active:
            return
        yield from self.perf_pmu_disable()
        yield self._work("sched_out",
                         self.costs.table.perf_sched_event_cycles * len(self._active_events()))
        for leader in list(self.active):
            for e in leader.group:
                if e.state == EventState.ACTIVE:
                    yield from self.event_sched_out(e, now)
            self.active.remove(leader)
        yield from self.perf_pmu_enable()

    def event_sched_out(self, e: PerfEvent, now: int) -> Gen[None]:
        """event_sched_out: pmu->del, and the event INACTIVE."""
        assert self.pmu is not None
        e.set_state(EventState.INACTIVE, now)
        yield from self.pmu.delete(e)

    def ctx_sched_in(self, now: int) -> Gen[None]:
        """ctx_flexible_sched_in: each group in order (merge_sched_in) until one does not
        fit; that one makes rotation necessary and arms the mux hrtimer."""
        can_add_hw, added = True, 0
        for leader in self.flexible:
            if leader.state != EventState.INACTIVE:
                continue
            if can_add_hw:
                n = yield from self.group_sched_in(leader, now)
                if n:
                    self.active.append(leader)
                    added += n
                    continue
            can_add_hw = False
            self.rotate_necessary = True
            self.mux_hrtimer_restart(now)
        yield self._work("sched_in", self.costs.table.perf_sched_event_cycles * max(added, 1))

    def group_sched_in(self, leader: PerfEvent, now: int) -> Gen[int]:
        """group_sched_in: the leader and its siblings in one transaction, all or none;
        returns the events added (0: the group did not go on)."""
        pmu = self.pmu
        assert pmu is not None
        yield from self.perf_pmu_disable()
        pmu.start_txn()
        added: list[PerfEvent] = []
        for e in leader.group:
            if e.state <= EventState.OFF:
                continue  # event_sched_in: nothing to do for an event that is off
            if not (yield from self.event_sched_in(e, now)):
                break
            added.append(e)
        else:
            if pmu.commit_txn():
                yield from self.perf_pmu_enable()
                return len(added)
        for e in added[1:]:  # group_error: the siblings added, then the leader
            yield from self.event_sched_out(e, now)
        if added:
            yield from self.event_sched_out(leader, now)
        pmu.cancel_txn()
        yield from self.perf_pmu_enable()
        return 0

    def event_sched_in(self, e: PerfEvent, now: int) -> Gen[bool]:
        """event_sched_in: ACTIVE, unthrottled (PERF_RECORD_UNTHROTTLE), then pmu->add;
        INACTIVE again if that fails."""
        assert self.pmu is not None
        e.set_state(EventState.ACTIVE, now)
        if e.hw.interrupts == MAX_INTERRUPTS:
            e.hw.interrupts = 0
            e.unthrottles += 1
        if (yield from self.pmu.add(e)):
            return True
        e.set_state(EventState.INACTIVE, now)
        return False

    def rotate(self) -> Gen[bool]:
        """perf_rotate_context: out, first active group to the tail, in."""
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

    # -- the mux hrtimer ------------------------------------------------------------------------
    def mux_hrtimer_restart(self, now: int) -> None:
        """perf_mux_hrtimer_restart: arm the timer if idle, at the first multiple of the
        interval after ``now`` (hrtimer_forward_now from its last expiry)."""
        if self.hrtimer_active:
            return
        self.hrtimer_active = True
        self._forward(now)

    def _forward(self, now: int) -> None:
        """hrtimer_forward_now: the expiry moves by whole intervals past ``now``."""
        interval = self.mux_interval_ms * NSEC_PER_MSEC
        if interval and self.hrtimer_expires_ns <= now:
            self.hrtimer_expires_ns += (now - self.hrtimer_expires_ns) // interval * interval
            self.hrtimer_expires_ns += interval

    def mux_hrtimer(self) -> Gen[None]:
        """perf_mux_hrtimer_handler, taken at the timer interrupt: rotate, and re-arm while
        there is something to rotate (else the timer stops).

        The machine gives the guest one timer interrupt, the tick, so the model's hrtimers
        have its resolution: the mux timer's expiry is taken at the first tick at or after
        it. The default interval (PERF_CPU_HRTIMER, 1000 / HZ ms) is one tick and its
        expiries fall on ticks (both on multiples of the tick since boot), so the rotation
        is due at every tick and runs after perf_event_task_tick, as hrtimer_interrupt runs
        the two timers; a longer interval reads the clock (hrtimer_interrupt's) to see if
        it is due, and one shorter than a tick rotates at every tick."""
        if not self.hrtimer_active:
            return
        interval = self.mux_interval_ms * NSEC_PER_MSEC
        now = -1
        if interval > self.tick_nsec:
            now = yield from self.clock_ns()
            if now < self.hrtimer_expires_ns:
                return
        if not (yield from self.rotate()):
            self.hrtimer_active = False
        elif now >= 0:
            self._forward(now)

    # -- the tick -----------------------------------------------------------------------------
    def task_tick(self) -> Gen[None]:
        """perf_event_task_tick (new throttle sequence, unthrottle, frequency adjustment),
        then the mux hrtimer if it is due."""
        self.throttled_seq += 1
        unthrottle, self.throttled_count = self.throttled_count, 0
        yield from self.adjust_freq_unthr_context(bool(unthrottle))
        yield from self.mux_hrtimer()

    def adjust_freq_unthr_context(self, unthrottle: bool) -> Gen[None]:
        """For each active event, inside perf_pmu_disable/enable: restart a throttled one;
        in frequency mode stop it with update, re-estimate the period from the tick's count,
        and start it again (reloading the counter only if it counted)."""
        pmu = self.pmu
        active = self._active_events()
        nr_freq = sum(1 for e in active if e.attr.freq and e.attr.sample_freq)
        if pmu is None or not (nr_freq or unthrottle):
            return
        if active:
            yield self._work("adjust_freq",
                             self.costs.table.perf_tick_event_cycles * len(active))
        yield from self.perf_pmu_disable()
        for e in self.events:
            if e.state != EventState.ACTIVE:
                continue
            hw = e.hw
            if hw.interrupts == MAX_INTERRUPTS:
                hw.interrupts = 0
                e.unthrottles += 1
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
        and output the sample (with PERF_SAMPLE_READ, after reading the rest of the group).
        True: throttle the event."""
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
        read: tuple[int, ...] = ()
        if e.attr.sample_read:
            read = yield from self.read_group(e)
        if e.keep_samples:
            e.samples.append(Sample(int(tsc), last_period, read))
        t = self.costs.table
        yield self._work("perf_event_overflow",
                         t.perf_overflow_cycles + t.perf_sample_output_cycles)
        return throttle

    def read_group(self, e: PerfEvent) -> Gen[tuple[int, ...]]:
        """perf_output_read_group: pmu->read of every other ACTIVE member of ``e``'s group
        (the leader first); the counts, leader first."""
        assert self.pmu is not None
        group = e.group
        for sub in group:
            if sub is not e and sub.state == EventState.ACTIVE:
                yield from self.pmu.read(sub)
        return tuple(sub.count for sub in group)
