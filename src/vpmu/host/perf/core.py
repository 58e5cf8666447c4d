"""The perf-events core: contexts, scheduling order, multiplexing, sampling, throttling.

Follows kernel/events/core.c where the vPMU questions depend on it:

- **Contexts.** A CPU event (cpu >= 0, no task) lives in that CPU's context, always active; a
  task event in its task's context, active while the task runs (on its CPU, if bound to one).
- **Order.** ``perf_event_sched_in``: CPU pinned, task pinned, CPU flexible, task flexible.
  Each event must get a counter (``x86_schedule_events``, previous assignments kept when still
  valid); a pinned event that cannot goes to ERROR state; once a flexible event fails, the
  later flexible events of that context are not tried (``merge_sched_in``'s can_add_hw) and
  the context needs rotation.
- **Multiplexing.** On the tick (the mux timer's default period is one jiffy), a context that
  needs rotation moves its first active flexible event to the tail, then everything is
  rescheduled: with 6 events on 4 counters each runs 4 ticks out of 6.
- **Sampling.** A sampling event's counter is armed at -period with INT; its overflow PMI
  records a sample (or calls a kernel counter's overflow handler) and re-arms the period.
  Frequency mode re-estimates the period from the observed rate (``perf_adjust_period``, on
  each overflow and each tick). More than ``max_samples_per_tick`` overflows in a tick
  throttle the event until the next tick.
- **RDPMC.** switch_mm to a task whose mm allows RDPMC sets CR4.PCE and clears the dirty
  counters no event is assigned to (``perf_clear_dirty_counters``); ``clear_dirty_counters``
  off models kernels before 5.15, which did not.
- **Mediated guests** (kernel/events/core.c@v7.0: ``perf_create_mediated_pmu``,
  ``perf_load_guest_context``): ``create_mediated_pmu``
  fails with EBUSY while an event that counts the guest exists; while mediated VMs exist such
  events fail with EOPNOTSUPP. ``load_guest_context`` takes every host event off a CPU's
  counters (all of them exclude the guest, by admission) until ``put_guest_context``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpmu.host.perf.attr import PERF_TYPE_MAX, PerfEventAttr
from vpmu.host.perf.constraint import Constraint
from vpmu.host.perf.driver import PerfDriver, driver_for
from vpmu.host.perf.event import EventState, OverflowHandler, PerfEvent, PmuIdentity
from vpmu.host.perf.guest import EBUSY, ENOENT, EOPNOTSUPP, GuestContext, PerfOpenError
from vpmu.host.perf.lbr import LbrArbiter
from vpmu.linux.perf import DEFAULT_MAX_SAMPLE_RATE, low_pass, perf_calculate_period
from vpmu.trace import GuestSelectors, PerfOpen, PerfSample
from vpmu.uapi.perf_event import PERF_TYPE_HARDWARE

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.machine import Host
    from vpmu.host.task import Task

FIRST_CORE_PMU_TYPE = 8
"""The dynamic type the first core PMU without a fixed one gets. Assumption: the kernel has
registered the software PMUs before the device initcalls, the dynamic ones among them being
kprobe (6) and uprobe (7), as /sys/bus/event_source/devices shows on common arm64 hosts
(the id depends on the kernel's configuration and registration order)."""


@dataclass
class Context:
    """A perf_event_context: pinned and flexible events in creation (group) order."""

    pinned: list[PerfEvent] = field(default_factory=list)
    flexible: list[PerfEvent] = field(default_factory=list)
    rotate_necessary: bool = False


class PerfSubsystem:
    """perf on one host: implements the CPU's ``PerfHooks`` and the kernel-counter internals."""

    def __init__(self, host: Host, *, clear_dirty_counters: bool = True,
                 max_sample_rate: int = DEFAULT_MAX_SAMPLE_RATE) -> None:
        self.host = host
        self.clear_dirty_counters = clear_dirty_counters
        self.max_samples_per_tick = -(-max_sample_rate * host.tick_ps // 10**12)
        """perf_event_max_sample_rate / HZ, rounded up (kernel's max_samples_per_tick)."""
        self.drivers = [driver_for(cpu) for cpu in host.cpus]
        self._schedules: list[dict[tuple[tuple[Constraint, ...], tuple[int | None, ...]],
                                   list[int] | None]] = [{} for _ in host.cpus]
        """Per CPU, the driver's answers so far: scheduling is a pure function of the
        constraints and previous counters, asked again at every reschedule."""
        self.pmus = _core_pmus(host, self.drivers)
        """The registered core PMUs, in registration order (the host's clusters')."""
        self.cpu_ctx = [Context() for _ in host.cpus]
        self.task_ctx: dict[int, Context] = {}
        self.events: list[PerfEvent] = []
        """The open events (closing one removes it), in opening order."""
        self._next_id = 1
        self.nr_mediated_pmu_vms = 0
        self.guest_ctx: list[GuestContext | None] = [None for _ in host.cpus]
        """The mediated guest context loaded on each CPU, if any."""
        self._guest_sels: list[tuple[str, int, int, int]] = [("", 0, 0, 0) for _ in host.cpus]
        """Per CPU: (vm, vcpu, enabled, counting) of guest selectors left in the hardware."""
        self.lbr = LbrArbiter(self, [drv.lbr for drv in self.drivers])
        """Who holds each CPU's LBR (host LBR users or a guest's LBR event)."""
        host.perf = self
        for drv in self.drivers:
            drv.cpu_init()

    def __repr__(self) -> str:
        return f"PerfSubsystem(host={self.host!r})"

    # -- opening and closing -------------------------------------------------------------
    def open(self, attr: PerfEventAttr, *, cpu: int = -1, task: Task | None = None,
             overflow_handler: OverflowHandler | None = None) -> PerfEvent:
        """perf_event_open / perf_event_create_kernel_counter: install and schedule."""
        if cpu == -1 and task is None:
            raise ValueError("an event must name a cpu (>= 0) or a task, not neither")
        if not -1 <= cpu < len(self.host.cpus):
            raise ValueError(f"cpu must be -1..{len(self.host.cpus) - 1}, not {cpu!r}")
        pmu = self._pmu_for(attr, cpu, task)
        drv, preset = self._driver_of(pmu), self._preset_of(pmu)
        config = self._hw_config(attr, drv, preset)
        constraint = drv.event_constraint(config)
        if constraint.weight == 0:
            raise ValueError(f"event {attr.label()} cannot be counted on {preset}")
        if self.nr_mediated_pmu_vms and not attr.exclude_guest:
            self._trace_open(cpu, task, 0, attr, EOPNOTSUPP)
            raise PerfOpenError(EOPNOTSUPP, f"event {attr.label()} counts the guest while "
                                            f"mediated vPMU VMs exist (EOPNOTSUPP)")
        if attr.branch_sample_type and drv.lbr is None:
            self._trace_open(cpu, task, 0, attr, EOPNOTSUPP)
            raise PerfOpenError(EOPNOTSUPP, f"event {attr.label()}: {preset} "
                                            f"has no LBR for a branch stack (EOPNOTSUPP)")
        ev = PerfEvent(self._next_id, attr, cpu, task, config, constraint, overflow_handler,
                       pmu=pmu)
        if attr.branch_sample_type:
            self.lbr.opened(ev)
        self._next_id += 1
        self._init_period(ev)
        ev.state = EventState.OFF if attr.disabled else EventState.INACTIVE
        self.events.append(ev)
        ctx = self._ctx_of(ev)
        (ctx.pinned if attr.pinned else ctx.flexible).append(ev)
        self._trace_open(cpu, task, ev.id, attr, "")
        self._refresh_for(ev)
        self._notify_guests(ev)
        return ev

    def _pmu_for(self, attr: PerfEventAttr, cpu: int, task: Task | None) -> PmuIdentity:
        """The core PMU an event belongs to (perf_init_event): the one its type names (a
        PMU's own type, or a hardware config's extended type), else the first registered
        PMU that takes it: its CPU's for a CPU event, the first for a task event. A PMU
        refuses a CPU event for a CPU it does not cover (``armpmu_event_init``: ENOENT)."""
        named = attr.extended_type or (attr.type if attr.type >= PERF_TYPE_MAX else 0)
        if not named:
            return next(p for p in self.pmus if cpu in p.cpus) if cpu >= 0 else self.pmus[0]
        pmu = next((p for p in self.pmus if p.type == named), None)
        if pmu is None or (cpu >= 0 and cpu not in pmu.cpus):
            self._trace_open(cpu, task, 0, attr, ENOENT)
            where = f"no core PMU of type {named}" if pmu is None else \
                f"{pmu.name} does not cover CPU {cpu}"
            raise PerfOpenError(ENOENT, f"event {attr.label()}: {where} (ENOENT)")
        return pmu

    def _driver_of(self, pmu: PmuIdentity) -> PerfDriver:
        """The driver of a PMU's first CPU (its drivers are alike)."""
        return self.drivers[min(pmu.cpus)]

    def _preset_of(self, pmu: PmuIdentity) -> str:
        """The name of the CPU preset behind a PMU (for errors)."""
        return self.host.cpus[min(pmu.cpus)].preset.name

    def _trace_open(self, cpu: int, task: Task | None, event: int, attr: PerfEventAttr,
                    errno: str) -> None:
        """A PerfOpen record for CPU events and refusals (KVM's own task events are many and
        not what host-profiling metrics ask about)."""
        if cpu >= 0 or errno:
            self.host.trace.emit(PerfOpen(self.host.env.now_ps, cpu, event, attr.label(),
                                          attr.exclude_guest, task.name if task else "", errno))

    # -- mediated vPMU (admission, guest context) ----------------------------------------
    def create_mediated_pmu(self) -> str:
        """perf_create_mediated_pmu: "" on success, else EBUSY (an event counts the guest)."""
        if any(ev.state is not EventState.DEAD and not ev.attr.exclude_guest
               for ev in self.events):
            return EBUSY
        self.nr_mediated_pmu_vms += 1
        return ""

    def load_guest_context(self, cpu: Pcpu, owner: GuestContext) -> int:
        """perf_load_guest_context: every host event off this CPU; the cycles it took."""
        self.guest_ctx[cpu.index] = owner
        cycles = self.resched(cpu)
        self.drivers[cpu.index].suspended = True
        vm, vcpu, enabled, _ = self._guest_sels[cpu.index]
        if enabled:
            self.note_guest_selectors(cpu, vm, vcpu, 0)
        return cycles

    def put_guest_context(self, cpu: Pcpu) -> int:
        """perf_put_guest_context: the host events back on this CPU; the cycles it took."""
        self.guest_ctx[cpu.index] = None
        drv = self.drivers[cpu.index]
        drv.suspended = False
        cycles = self.resched(cpu)
        drv.load_global()  # perf_ctx_enable -> x86_pmu_enable: the host's GLOBAL_CTRL
        return cycles + self.host.costs.instruction_cycles["wrmsr"]

    def resched_update(self, cpu: Pcpu, update: Callable[[], None]) -> tuple[int, list[PerfEvent]]:
        """``perf_pmu_resched_update`` (the partitioned PMU series, "[PATCH v8 13/21]"):
        ``__ctx_resched`` with ``update`` run between the sched-out of every event on this
        CPU and the sched-in, where it may change the counters the driver offers. The
        kernel cycles it took, and the events that were on a counter before and are on
        none after."""
        drv = self.drivers[cpu.index]
        before = list(drv.events.values())
        for ev in before:
            self._sched_out_event(cpu, ev)
        update()
        self._schedules[cpu.index].clear()  # the driver's answers depend on its counter mask
        self.resched(cpu)
        after = set(drv.events.values())
        c = cpu.costs
        cycles = len(before) * c.perf_sched_out_event_cycles + \
            len(after) * c.perf_sched_in_event_cycles
        return cycles, [ev for ev in before if ev not in after]

    def host_events_want(self, cpu: Pcpu) -> bool:
        """Some enabled host event would be on this CPU's counters if the guest let it."""
        return any(ev.schedulable and ev.applies_to(cpu)
                   for _, events, _ in self._phases(cpu) for ev in events)

    def _notify_guests(self, ev: PerfEvent) -> None:
        """perf_install_in_context on a CPU a guest owns: tell the owner (it may preempt)."""
        if not ev.attr.exclude_guest or not ev.schedulable:
            return
        for cpu in self.host.cpus:
            owner = self.guest_ctx[cpu.index]
            if owner is not None and ev.applies_to(cpu):
                owner.host_event_added(cpu)

    def note_guest_selectors(self, cpu: Pcpu, vm: str, vcpu: int, enabled: int) -> None:
        """A put left guest-programmed selectors enabled in the hardware (pollution); the
        record is re-emitted whenever host perf overwrites one or the global control moves."""
        self._guest_sels[cpu.index] = (vm, vcpu, enabled, -1)
        self._update_guest_selectors(cpu)

    def _update_guest_selectors(self, cpu: Pcpu) -> None:
        vm, vcpu, enabled, counting = self._guest_sels[cpu.index]
        if not enabled and not counting:
            return
        drv = self.drivers[cpu.index]
        for idx in drv.events:
            enabled &= ~(1 << idx)
        now_counting = drv.counts_in_host(enabled)
        if (enabled, now_counting) != (self._guest_sels[cpu.index][2], counting):
            self._guest_sels[cpu.index] = (vm, vcpu, enabled, now_counting)
            self.host.trace.emit(GuestSelectors(self.host.env.now_ps, cpu.index, vm, vcpu,
                                                enabled, now_counting))

    @staticmethod
    def _hw_config(attr: PerfEventAttr, drv: PerfDriver, preset: str) -> int:
        """The event part of the attr's config (and config1), as the event's PMU's driver
        reads it."""
        if attr.type == PERF_TYPE_HARDWARE:
            config = drv.hw_config(attr.hw_id)
            if config is None:
                raise ValueError(f"hardware event {attr.hw_id} is not supported on "
                                 f"{preset} (perf: ENOENT)")
            return drv.raw_config(config, attr.config1)
        return drv.raw_config(attr.config, attr.config1)

    def _init_period(self, ev: PerfEvent) -> None:
        if ev.attr.freq:
            ev.sample_period = 1  # perf_event_alloc: frequency mode starts at period 1
        else:
            ev.sample_period = ev.attr.sample_period
        ev.period_left = ev.sample_period
        ev.last_period = ev.sample_period

    def _ctx_of(self, ev: PerfEvent) -> Context:
        if ev.task is None:
            return self.cpu_ctx[ev.cpu]
        return self.task_ctx.setdefault(id(ev.task), Context())

    def close(self, ev: PerfEvent) -> None:
        """Release: take the event off the hardware and out of its context."""
        self.set_enabled(ev, False)
        ctx = self._ctx_of(ev)
        (ctx.pinned if ev.attr.pinned else ctx.flexible).remove(ev)
        ev.state = EventState.DEAD
        self.events.remove(ev)  # a design that recreates events would grow it without end

    def set_enabled(self, ev: PerfEvent, enabled: bool) -> None:
        """perf_event_enable / perf_event_disable (enable also clears ERROR state)."""
        if enabled and ev.state in (EventState.OFF, EventState.ERROR):
            ev.state = EventState.INACTIVE
        elif not enabled and ev.state not in (EventState.OFF, EventState.DEAD):
            ev.state = EventState.OFF
        self._refresh_for(ev)

    def _refresh_for(self, ev: PerfEvent) -> None:
        """Reschedule the CPUs where ``ev`` could be active now (ctx_resched)."""
        for cpu in self.host.cpus:
            if ev.applies_to(cpu) or ev.on_cpu == cpu.index:
                self.resched(cpu)

    def read(self, ev: PerfEvent) -> tuple[int, int, int]:
        """perf_event_read_value: (count, time_enabled, time_running), hardware folded in."""
        if ev.state is EventState.ACTIVE and ev.on_cpu is not None:
            self.drivers[ev.on_cpu].read(ev)
        enabled, running = ev.times(self.host.env.now_ps)
        return ev.count, enabled, running

    # -- scheduling ----------------------------------------------------------------------
    def _phases(self, cpu: Pcpu) -> list[tuple[Context, list[PerfEvent], bool]]:
        cctx = self.cpu_ctx[cpu.index]
        tctx = self.task_ctx.get(id(cpu.current)) if cpu.current is not None else None
        phases = [(cctx, cctx.pinned, True)]
        if tctx:
            phases.append((tctx, tctx.pinned, True))
        phases.append((cctx, cctx.flexible, False))
        if tctx:
            phases.append((tctx, tctx.flexible, False))
        return phases

    def _select(self, cpu: Pcpu) -> dict[int, PerfEvent]:
        """Which events go on which counters now, in perf_event_sched_in's order (none while
        a mediated guest context is loaded)."""
        if self.guest_ctx[cpu.index] is not None:
            return {}
        chosen: list[PerfEvent] = []
        assignment: list[int] = []
        for ctx, events, pinned in self._phases(cpu):
            can_add = True
            if not pinned:
                ctx.rotate_necessary = False
            for ev in events:
                if not ev.schedulable or not ev.applies_to(cpu):
                    continue
                trial = None
                if can_add:
                    trial = self._schedule(cpu.index, (*(e.constraint for e in chosen),
                                                       ev.constraint),
                                           (*(e.hw_idx for e in chosen), ev.hw_idx))
                if trial is not None:
                    chosen.append(ev)
                    assignment = trial
                elif pinned:
                    self._error(ev)
                else:
                    can_add = False
                    ctx.rotate_necessary = True
        return dict(zip(assignment, chosen, strict=True))

    def _schedule(self, cpu: int, constraints: tuple[Constraint, ...],
                  previous: tuple[int | None, ...]) -> list[int] | None:
        """The CPU's driver's schedule of these events, remembered."""
        memo = self._schedules[cpu]
        key = (constraints, previous)
        if key in memo:
            return memo[key]
        if len(memo) > 4096:
            memo.clear()
        memo[key] = result = self.drivers[cpu].schedule(constraints, previous=previous)
        return result

    def _error(self, ev: PerfEvent) -> None:
        """A pinned event that cannot be scheduled goes to ERROR state (perf_event_set_state)."""
        if ev.state is EventState.ACTIVE and ev.on_cpu is not None:
            self._sched_out_event(self.host.cpus[ev.on_cpu], ev)
        ev.state = EventState.ERROR
        ev.stop_enabled(self.host.env.now_ps)

    def resched(self, cpu: Pcpu) -> int:
        """Bring the CPU's counters in line with ``_select``; the kernel cycles it took."""
        wanted = self._select(cpu)
        drv, now = self.drivers[cpu.index], self.host.env.now_ps
        out = [ev for idx, ev in drv.events.items() if wanted.get(idx) is not ev]
        for ev in out:
            self._sched_out_event(cpu, ev)
        added = 0
        for idx, ev in wanted.items():
            if ev.hw_idx != idx or drv.events.get(idx) is not ev:
                ev.state, ev.on_cpu = EventState.ACTIVE, cpu.index
                drv.add(ev, idx)
                ev.start_running(now)
                added += 1
                if ev.attr.branch_sample_type:
                    self.lbr.host_add(cpu, ev)
        self._account_enabled(cpu)
        self._update_guest_selectors(cpu)
        c = cpu.costs
        return len(out) * c.perf_sched_out_event_cycles + added * c.perf_sched_in_event_cycles

    def _sched_out_event(self, cpu: Pcpu, ev: PerfEvent) -> None:
        self.drivers[cpu.index].remove(ev)
        if ev.attr.branch_sample_type:
            self.lbr.host_del(cpu, ev)
        ev.stop_running(self.host.env.now_ps)
        ev.on_cpu = None
        if ev.state is EventState.ACTIVE:
            ev.state = EventState.INACTIVE

    def _account_enabled(self, cpu: Pcpu) -> None:
        """time_enabled runs for every enabled event whose context is active on this CPU."""
        now = self.host.env.now_ps
        for _, events, _ in self._phases(cpu):
            for ev in events:
                if ev.state in (EventState.INACTIVE, EventState.ACTIVE) and ev.applies_to(cpu):
                    ev.start_enabled(now)
                else:
                    ev.stop_enabled(now)

    # -- the CPU's hooks ------------------------------------------------------------------
    def sched_out(self, cpu: Pcpu, task: Task) -> int:
        """perf_event_task_sched_out: the task's events leave; its time stops."""
        ctx = self.task_ctx.get(id(task))
        if ctx is None:
            return 0
        now, cycles = self.host.env.now_ps, 0
        for ev in (*ctx.pinned, *ctx.flexible):
            if ev.on_cpu == cpu.index:
                self._sched_out_event(cpu, ev)
                cycles += cpu.costs.perf_sched_out_event_cycles
            ev.stop_enabled(now)
        return cycles

    def sched_in(self, cpu: Pcpu, task: Task) -> int:
        """perf_event_task_sched_in: reschedule with the new task's context."""
        if id(task) not in self.task_ctx and not self._cpu_has_events(cpu):
            return 0
        return self.resched(cpu) + self.lbr.sched_task(cpu, task)

    def _cpu_has_events(self, cpu: Pcpu) -> bool:
        ctx = self.cpu_ctx[cpu.index]
        return bool(ctx.pinned or ctx.flexible)

    def switch_mm(self, cpu: Pcpu, task: Task) -> int:
        """CR4.PCE follows the task's mm; clear dirty counters for an RDPMC-capable one."""
        cycles = cpu.set_user_access(task.rdpmc)
        clear = self.clear_dirty_counters if task.clear_dirty is None else task.clear_dirty
        if not (task.rdpmc and clear):
            return cycles
        cleared = self.drivers[cpu.index].clear_dirty()
        return cycles + cleared * cpu.costs.perf_clear_dirty_counter_cycles

    def guest_switch(self, cpu: Pcpu, guest: bool) -> None:
        """VM-entry / VM-exit as perf sees it (perf_guest_get_msrs' atomic switch); with a
        mediated guest context loaded, the owner's global control is switched instead."""
        owner = self.guest_ctx[cpu.index]
        if owner is None:
            self.drivers[cpu.index].set_guest(guest)
            return
        self.drivers[cpu.index].guest = guest
        if guest:
            owner.vm_entry(cpu)
        else:
            owner.vm_exit(cpu)

    def handle_guest_pmi(self, cpu: Pcpu) -> int:
        """The PERF_GUEST_MEDIATED_PMI_VECTOR handler: kvm_handle_guest_mediated_pmi on the
        vCPU running here (kvm_get_running_vcpu: a preempt notifier of the current task)."""
        task = cpu.current
        for notifier in task.notifiers if task is not None else ():
            handler = getattr(notifier, "mediated_pmi", None)
            if handler is not None:
                return int(handler(cpu))
        return 0

    def tick(self, cpu: Pcpu) -> int:
        """perf's tick work: unthrottle, re-estimate frequencies, rotate if needed."""
        cycles = self._unthrottle_and_adjust(cpu)
        rotate = False
        for ctx, events, pinned in self._phases(cpu):
            if not pinned and ctx.rotate_necessary:
                active = [e for e in events if e.state is EventState.ACTIVE
                          and e.on_cpu == cpu.index]
                first = active[0] if active else (events[0] if events else None)
                if first is not None:
                    events.remove(first)
                    events.append(first)
                    rotate = True
        if rotate:
            cycles += cpu.costs.perf_rotate_cycles + self.resched(cpu)
        return cycles

    def _unthrottle_and_adjust(self, cpu: Pcpu) -> int:
        """perf_adjust_freq_unthr_context for the contexts active on this CPU only."""
        drv, resched = self.drivers[cpu.index], False
        for _, events, _ in self._phases(cpu):
            for ev in events:
                if ev.throttled and ev.applies_to(cpu):
                    ev.throttled, resched = False, True
                ev.interrupts = 0
        for ev in list(drv.events.values()):
            if ev.attr.freq:  # perf_adjust_freq_unthr_context: a tick's count over TICK_NSEC
                drv.read(ev)
                self._adjust_period(ev, self.host.tick_ps, ev.count - ev.freq_count_base)
                ev.freq_count_base = ev.count
        return self.resched(cpu) if resched else 0

    def _adjust_period(self, ev: PerfEvent, nsec_ps: int, count: int) -> None:
        """perf_adjust_period: move the period 1/8 of the way to count/(time x freq), with
        the kernel's arithmetic (its clock in ns; C's rounding of a negative step)."""
        if nsec_ps <= 0 or count <= 0:
            return
        target = perf_calculate_period(ev.attr.sample_freq, nsec_ps // 1000, count)
        ev.sample_period = low_pass(ev.sample_period, target)
        if ev.period_left > 8 * ev.sample_period:
            ev.period_left = ev.sample_period

    def is_host_pmi(self, cpu: Pcpu, vector: int, nmi: bool) -> bool:
        """An NMI, or the IRQ vector the CPU's driver takes its PMU interrupt on (arm64's
        PPI); any other vector is a mediated guest's."""
        return nmi or vector == self.drivers[cpu.index].pmi_vector

    def handle_pmi(self, cpu: Pcpu) -> int:
        """The PMI handler (intel_pmu_handle_irq / amd_pmu_v2_handle_irq): for each overflowed
        counter, update, sample or call the handler, re-arm; ack; unmask LVTPC."""
        drv, c = self.drivers[cpu.index], cpu.costs
        status = drv.status()
        cycles = 0
        for idx, ev in list(drv.events.items()):
            if status >> idx & 1:
                cycles += c.perf_overflow_handler_cycles + self._overflow(cpu, drv, ev)
        drv.ack(status)
        drv.pmi_done()
        return cycles

    def _overflow(self, cpu: Pcpu, drv: PerfDriver, ev: PerfEvent) -> int:
        drv.read(ev)
        now = self.host.env.now_ps
        if ev.attr.freq:  # __perf_event_account_interrupt: the last period over its time
            elapsed, ev.freq_stamp_ps = now - ev.freq_stamp_ps, now
            if 0 < elapsed < 2 * self.host.tick_ps:
                self._adjust_period(ev, elapsed, ev.last_period)
        ev.last_period = ev.sample_period
        ev.period_left = ev.sample_period
        ev.interrupts += 1
        cycles = 0
        if ev.overflow_handler is not None:
            ev.overflow_handler(ev, cpu)
        elif ev.attr.is_sampling:
            ev.samples += 1
            task = cpu.current.name if cpu.current else "idle"
            self.host.trace.emit(PerfSample(now, cpu.index, ev.id, task, cpu.irq_mode.value,
                                            ev.last_period))
            cycles += cpu.costs.perf_sample_output_cycles
            if ev.attr.branch_sample_type:
                cycles += self.lbr.sample(cpu, ev)
        if ev.interrupts > self.max_samples_per_tick:
            ev.throttled = True
            self._sched_out_event(cpu, ev)
            return cycles
        drv.arm(ev)
        return cycles


def _core_pmus(host: Host, drivers: list[PerfDriver]) -> tuple[PmuIdentity, ...]:
    """The core PMUs a host registers, in order: one per distinct CPU preset, in the order of
    the first cluster carrying it (the device tree's PMU nodes), covering every CPU of that
    preset. A driver's fixed type is kept (x86 ``cpu``: PERF_TYPE_RAW); the others take
    dynamic ids from ``FIRST_CORE_PMU_TYPE``."""
    groups: dict[str, list[int]] = {}
    for cpu in host.cpus:
        groups.setdefault(cpu.preset.name, []).append(cpu.index)
    pmus, dynamic = [], FIRST_CORE_PMU_TYPE
    for cpus in groups.values():
        drv = drivers[cpus[0]]
        if drv.pmu_type is not None:
            pmu_type = drv.pmu_type
        else:
            pmu_type, dynamic = dynamic, dynamic + 1
        pmus.append(PmuIdentity(drv.pmu_name, pmu_type, frozenset(cpus)))
    return tuple(pmus)
