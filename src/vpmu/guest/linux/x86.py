"""The x86 perf driver's shared part (arch/x86/events/core.c), as guest code.

``X86Pmu`` is ``x86_pmu`` plus one CPU's ``cpu_hw_events``: counter assignment, the counter
read (x86_perf_event_update, RDPMC) and re-arm (x86_perf_event_set_period, counter WRMSR),
start/stop/add/del and x86_pmu_disable / x86_pmu_enable (``pmu_disable`` / ``pmu_enable``,
which the perf core's perf_pmu_disable/enable call at the outermost level). Its
``enable_event``, ``disable_event``, ``enable_all``, ``disable_all`` and ``handle_irq`` are
the generic ones (x86_pmu_*), which Intel v1 and AMD without PerfMonV2 use; ``pmu_intel`` and
``pmu_amd`` override them. Every method that touches a register is a generator of port operations.

Index spaces (the KVM NOTE's names): ``idx`` is a global counter index (GP i is i, fixed i is
32 + i); ``hw.event_base`` / ``hw.config_base`` are MSR addresses; ``hw.event_base_rdpmc`` is
an RDPMC index.
"""

from __future__ import annotations

from vpmu.arch.regs import set_bits
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, RDPMC_FIXED
from vpmu.guest.linux.boot import LVTPC_NMI, PmuInfo
from vpmu.guest.linux.event import (
    PERF_HES_ARCH,
    PERF_HES_STOPPED,
    PERF_HES_UPTODATE,
    HwPerfEvent,
    PerfEvent,
    PerfEventAttr,
)
from vpmu.guest.linux.event_map import EventSpec, constraint, event_select
from vpmu.guest.linux.pmu import Gen, OverflowFn, next_period, no_overflow
from vpmu.guest.port import Rdmsr, Rdpmc, Wrmsr

__all__ = ["Gen", "OverflowFn", "X86Pmu"]


class X86Pmu:
    """x86_pmu and this CPU's cpu_hw_events, with the generic (v1 / K7) operations."""

    def __init__(self, info: PmuInfo) -> None:
        self.info = info
        self.enabled = True
        """cpuc->enabled: the PMU is globally on (cleared by x86_pmu_disable and in the NMI)."""
        self.n_added = 0
        self.event_list: list[PerfEvent] = []
        """cpuc->event_list: events added (scheduled) on this PMU, in add order."""
        self.assign: list[int] = []
        """cpuc->assign: the counter of each event_list entry."""
        self.tags: dict[int, int] = {}
        self.events: dict[int, PerfEvent] = {}
        """cpuc->events: the event started on each counter."""
        self.active_mask = 0
        self.in_nmi = False
        self.active_events = 0
        """Hardware events in existence (perf_event_nmi_handler ignores NMIs when 0)."""
        self.txn = False
        """cpuc->txn_flags & PERF_PMU_TXN_ADD: a group is being added."""
        self.n_txn = 0
        """cpuc->n_txn: events added in the transaction."""
        self.overflow: OverflowFn = no_overflow
        """perf_event_overflow, registered by the perf core."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.info.view.version}, n_gp={self.info.n_gp})"

    @property
    def counting_period(self) -> int:
        """x86_pmu.max_period (x86_setup_perfctr arms a counting event with it)."""
        return self.info.max_period

    # -- event init and counter assignment ----------------------------------------------------
    def event_init(self, spec: EventSpec, attr: PerfEventAttr, period: int) -> HwPerfEvent | None:
        """x86_pmu_event_init + hw_config: the selector bits and constraint; None = -ENOENT /
        -EINVAL (not supported)."""
        select = event_select(spec, self.info)
        if select is None:
            return None
        allowed = constraint(select, self.info)
        if not allowed:
            return None
        config = select | msrs.EVTSEL_INT
        config |= 0 if attr.exclude_user else msrs.EVTSEL_USR
        config |= 0 if attr.exclude_kernel else msrs.EVTSEL_OS
        self.active_events += 1
        return HwPerfEvent(config, allowed, period, period, period)

    @property
    def max_count(self) -> int:
        """collect_events' limit: the GP plus the fixed counters."""
        return self.info.n_gp + len(self.info.fixed)

    def schedule_events(self, events: list[PerfEvent]) -> list[int] | None:
        """x86_schedule_events: keep every previous counter if still valid (fast path), else
        assign by increasing constraint weight, fixed counters first, then the lowest GP
        counter (perf_assign_events without backtracking). None: they do not fit."""
        used, fast = 0, []
        for e in events:
            idx = e.hw.idx
            if idx < 0 or not e.hw.constraint >> idx & 1 or used >> idx & 1:
                break
            used |= 1 << idx
            fast.append(idx)
        else:
            return fast
        return self.assign_counters([e.hw.constraint for e in events])

    @staticmethod
    def assign_counters(constraints: list[int]) -> list[int] | None:
        """x86_schedule_events' slow path on the constraints' index masks: by increasing
        weight, a fixed counter first, else the lowest GP counter. None: they do not fit."""
        assign, used = [-1] * len(constraints), 0
        order = sorted(range(len(constraints)), key=lambda i: (constraints[i].bit_count(), i))
        for i in order:
            free = constraints[i] & ~used
            if not free:
                return None
            fixed = free >> FIXED_IDX_BASE
            idx = (FIXED_IDX_BASE + (fixed & -fixed).bit_length() - 1 if fixed
                   else (free & -free).bit_length() - 1)
            used |= 1 << idx
            assign[i] = idx
        return assign

    def validate_group(self, group: list[HwPerfEvent]) -> bool:
        """validate_group (x86_pmu_event_init of a sibling): collect_events of the leader,
        its siblings and the new event into a fake cpuc, then schedule them."""
        return (len(group) <= self.max_count
                and self.assign_counters([hw.constraint for hw in group]) is not None)

    def _assign_hw_event(self, e: PerfEvent, i: int) -> None:
        """x86_assign_hw_event: the counter and its MSRs."""
        hw, idx = e.hw, self.assign[i]
        hw.idx = idx
        self.tags[i] = self.tags.get(i, 0) + 1
        hw.last_tag = self.tags[i]
        if idx >= FIXED_IDX_BASE:
            hw.config_base = msrs.IA32_FIXED_CTR_CTRL
            hw.event_base = msrs.IA32_FIXED_CTR0 + idx - FIXED_IDX_BASE
            hw.event_base_rdpmc = RDPMC_FIXED | (idx - FIXED_IDX_BASE)
        else:
            hw.config_base = self.info.eventsel(idx)
            hw.event_base = self.info.perfctr(idx)
            hw.event_base_rdpmc = idx

    def _match_prev_assignment(self, e: PerfEvent, i: int) -> bool:
        return e.hw.idx == self.assign[i] and e.hw.last_tag == self.tags.get(i, 0)

    def add(self, e: PerfEvent, *, start: bool = True) -> Gen[bool]:
        """x86_pmu_add: collect (at most ``max_count`` events) and, outside a transaction,
        schedule (no register access until x86_pmu_enable); in one, commit_txn schedules."""
        yield from ()
        if len(self.event_list) >= self.max_count:
            return False  # collect_events: -EINVAL
        events = [*self.event_list, e]
        if not self.txn:
            assign = self.schedule_events(events)
            if assign is None:
                return False
            self.assign = assign
        e.hw.state = PERF_HES_UPTODATE | PERF_HES_STOPPED | (0 if start else PERF_HES_ARCH)
        self.event_list = events
        self.n_added += 1
        self.n_txn += 1
        return True

    def delete(self, e: PerfEvent) -> Gen[None]:
        """x86_pmu_del: stop with update, drop from the list; inside a transaction only
        undo the add (cancel_txn truncates the list)."""
        if self.txn:
            return
        yield from self.stop(e, update=True)
        i = self.event_list.index(e)
        if i >= len(self.event_list) - self.n_added:
            self.n_added -= 1
        del self.event_list[i]
        del self.assign[i]

    # -- group transactions (x86_pmu_start_txn / commit_txn / cancel_txn) ---------------------
    def start_txn(self) -> None:
        """x86_pmu_start_txn(PERF_PMU_TXN_ADD): adds skip the schedulability test."""
        self.txn, self.n_txn = True, 0

    def commit_txn(self) -> bool:
        """x86_pmu_commit_txn: schedule every collected event at once."""
        assign = self.schedule_events(self.event_list)
        if assign is None:
            return False
        self.assign, self.txn = assign, False
        return True

    def cancel_txn(self) -> None:
        """x86_pmu_cancel_txn: drop the transaction's events from the list."""
        self.txn = False
        self.n_added -= self.n_txn
        del self.event_list[len(self.event_list) - self.n_txn:]

    # -- counter read and re-arm ----------------------------------------------------------
    def update(self, e: PerfEvent) -> Gen[int]:
        """x86_perf_event_update: RDPMC, add the delta since prev_count (counter width)."""
        hw = e.hw
        new = yield Rdpmc(hw.event_base_rdpmc)
        if not isinstance(new, int):
            new = hw.prev_count  # a faulting RDPMC (a broken vPMU): count nothing
        delta = (new - hw.prev_count) & self.info.cntval_mask
        hw.prev_count = new
        e.count += delta
        hw.period_left -= delta
        return new

    def read(self, e: PerfEvent) -> Gen[None]:
        """x86_pmu_read: x86_perf_event_update."""
        yield from self.update(e)

    def set_period(self, e: PerfEvent) -> Gen[bool]:
        """x86_perf_event_set_period: WRMSR the counter to -left; True if a period elapsed."""
        hw = e.hw
        # at least 2 left: "certain CPUs dont like" 1
        left, ret = next_period(hw, min_left=2, max_left=self.info.max_period)
        hw.prev_count = -left & self.info.cntval_mask
        yield Wrmsr(hw.event_base, hw.prev_count)
        return ret

    # -- start / stop -------------------------------------------------------------------------
    def start(self, e: PerfEvent, *, reload: bool) -> Gen[None]:
        """x86_pmu_start: optionally re-arm, mark active, enable the counter."""
        hw = e.hw
        if not hw.state & PERF_HES_STOPPED:
            return
        if reload:
            yield from self.set_period(e)
        hw.state = 0
        self.events[hw.idx] = e
        self.active_mask |= 1 << hw.idx
        yield from self.enable_event(e)

    def stop(self, e: PerfEvent, *, update: bool) -> Gen[None]:
        """x86_pmu_stop: disable the counter if active; with update, fold its count in."""
        hw = e.hw
        if self.active_mask >> hw.idx & 1:
            yield from self.disable_event(e)
            self.active_mask &= ~(1 << hw.idx)
            self.events.pop(hw.idx, None)
            hw.state |= PERF_HES_STOPPED
        if update and not hw.state & PERF_HES_UPTODATE:
            yield from self.update(e)
            hw.state |= PERF_HES_UPTODATE

    # -- pmu->pmu_disable / pmu->pmu_enable ---------------------------------------------------
    def pmu_disable(self) -> Gen[None]:
        """x86_pmu_disable: nothing if already off, else forget the added count and
        disable_all."""
        if self.enabled:
            self.n_added = 0
            self.enabled = False
            yield from self.disable_all()

    def pmu_enable(self) -> Gen[None]:
        """x86_pmu_enable: stop events that move, start the added ones on their counters,
        re-arm LVTPC, then enable_all."""
        if self.enabled:
            return
        added = self.n_added
        if added:
            n_running = len(self.event_list) - added
            for i, e in enumerate(self.event_list[:n_running]):
                if e.hw.idx == -1 or self._match_prev_assignment(e, i):
                    continue
                if e.hw.state & PERF_HES_STOPPED:
                    e.hw.state |= PERF_HES_ARCH
                yield from self.stop(e, update=True)
            for i, e in enumerate(self.event_list):
                if not self._match_prev_assignment(e, i):
                    self._assign_hw_event(e, i)
                elif i < n_running:
                    continue
                if e.hw.state & PERF_HES_ARCH:
                    continue
                yield from self.start(e, reload=True)
            self.n_added = 0
            yield Wrmsr(msrs.X2APIC_LVTPC, LVTPC_NMI)  # perf_events_lapic_init
        self.enabled = True
        yield from self.enable_all(added)

    # -- the generic vendor operations (x86_pmu_*) --------------------------------------------
    def enable_event(self, e: PerfEvent) -> Gen[None]:
        """x86_pmu_enable_event: write EN only while the PMU is enabled (enable_all does it
        otherwise)."""
        if self.enabled:
            yield Wrmsr(e.hw.config_base, e.hw.config | msrs.EVTSEL_EN)

    def disable_event(self, e: PerfEvent) -> Gen[None]:
        """x86_pmu_disable_event: the selector without EN."""
        yield Wrmsr(e.hw.config_base, e.hw.config)

    def enable_all(self, added: int) -> Gen[None]:
        """x86_pmu_enable_all: set EN in every active counter's selector."""
        for idx in set_bits(self.active_mask & ((1 << self.info.n_gp) - 1)):
            hw = self.events[idx].hw
            yield Wrmsr(hw.config_base, hw.config | msrs.EVTSEL_EN)

    def disable_all(self) -> Gen[None]:
        """x86_pmu_disable_all: read each active selector, clear EN where set."""
        for idx in range(self.info.n_gp):
            if not self.active_mask >> idx & 1:
                continue
            val = yield Rdmsr(self.info.eventsel(idx))
            if isinstance(val, int) and val & msrs.EVTSEL_EN:
                yield Wrmsr(self.info.eventsel(idx), val & ~msrs.EVTSEL_EN)

    def lapic_ack(self) -> Gen[None]:
        """apic_write(APIC_LVTPC, APIC_DM_NMI) through the x2APIC MSR (unmasks LVTPC)."""
        yield Wrmsr(msrs.X2APIC_LVTPC, LVTPC_NMI)

    def handle_irq(self) -> Gen[int]:
        """x86_pmu_handle_irq: LVTPC first; read every active counter; a counter whose top
        bit is clear overflowed: re-arm it and report the overflow."""
        yield from self.lapic_ack()
        handled, top = 0, 1 << (self.info.cntval_bits - 1)
        for idx in range(self.info.n_gp):
            if not self.active_mask >> idx & 1:
                continue
            e = self.events[idx]
            if (yield from self.update(e)) & top:
                continue
            handled += 1
            yield from self.overflow_event(e)
        return handled

    def overflow_event(self, e: PerfEvent) -> Gen[None]:
        """Re-arm an overflowed counter; if a period elapsed, perf_event_overflow, and stop
        the event when that throttles it (x86_pmu_stop(event, 0))."""
        if not (yield from self.set_period(e)):
            return
        if (yield from self.overflow(e, e.hw.last_period)):
            yield from self.stop(e, update=False)
