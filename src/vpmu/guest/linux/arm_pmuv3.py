"""Linux's arm_pmuv3 driver as guest code: drivers/perf/arm_pmuv3.c and drivers/perf/arm_pmu.c
at v6.6 (counter indices as that version numbers them: 0 the cycle counter, 1..N the event
counters 0..N-1), on the sysreg accessors of arch/arm64/include/asm/arm_pmuv3.h (direct
PMEVCNTR<n>_EL0 / PMEVTYPER<n>_EL0, no PMSELR_EL0 indirection).

What it does with the registers, in the kernel's order:

- **Add** (armpmu_add): the cycle counter for CPU_CYCLES if free, else the lowest free event
  counter (armv8pmu_get_event_idx); the counter is disabled (armv8pmu_disable_event:
  PMCNTENCLR, PMINTENCLR, PMOVSCLR) and, with PERF_EF_START, started at once: Arm programs
  counters inside pmu->add, not at perf_pmu_enable as x86 does.
- **Start** (armpmu_start, whatever PERF_EF_RELOAD says): re-arm (armpmu_event_set_period: the
  counter to -left, ``left`` at most max_period / 2), then armv8pmu_enable_event: PMCNTENCLR,
  PMEVTYPER<n> (PMCCFILTR for the cycle counter), PMINTENSET, PMCNTENSET.
- **Stop** (armpmu_stop, always with update): armv8pmu_disable_event, then the counter read
  (armpmu_event_update: MRS, delta modulo max_period).
- **pmu_disable / pmu_enable**: PMCR_EL0.E off (read-modify-write) / PMUSERENR_EL0 = 0 and
  PMCR_EL0.E on, the latter only while a counter is in use (armpmu_enable).
- **Interrupt** (armv8pmu_handle_irq): PMOVSCLR_EL0 read and written back; if nothing
  overflowed, IRQ_NONE; else PMCR_EL0.E off, then per overflowed counter in index order (the
  cycle counter first): update, re-arm, perf_event_overflow (and armv8pmu_disable_event when
  that throttles); PMCR_EL0.E on.

Counter widths: events are 32-bit (max_period 2^32 - 1; the tools never set config1's
``long`` bit, so there are no chained pairs). The cycle counter is 64-bit (PMCR_EL0.LC) and,
with PMUv3p5, so are the event counters (LP): Linux biases those writes with bits 63:32 set so
they still interrupt at a 32-bit overflow, and clears bits 63:32 of a read.

The driver's pure parts (its constants, the generic event map, the event filter, the bias
rule, the reset sequence) are ``vpmu.linux.arm_pmuv3``, shared with the host's perf driver
(``vpmu.host.perf.arm64``); the period arithmetic is ``pmu.next_period``, shared with x86.

Not modelled: user-space counter access (sysctl perf_user_access = 0, the default, so
PMUSERENR_EL0 is written 0), 64-bit (``long``) and chained events, the cache-event map,
KVM's host/guest event flips (kvm_set_pmu_events: no-ops in a guest), the ISBs.
"""

from __future__ import annotations

from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.regs import set_bits
from vpmu.guest.linux.arm_probe import ArmPmuInfo
from vpmu.guest.linux.event import (
    PERF_HES_STOPPED,
    PERF_HES_UPTODATE,
    HwPerfEvent,
    PerfEvent,
    PerfEventAttr,
)
from vpmu.guest.linux.event_map import EventSpec
from vpmu.guest.linux.pmu import Gen, OverflowFn, next_period, no_overflow
from vpmu.guest.port import Mrs, Msr
from vpmu.linux.arm_pmuv3 import (
    ARMV8_PMU_EVTYPE_EVENT,
    ARMV8_PMU_EVTYPE_MASK,
    ARMV8_PMU_OVSR_MASK,
    ARMV8_PMU_PMCR_E,
    ARMV8_PMU_PMCR_MASK,
    BIAS,
    U32_MAX,
    event_filter,
    map_generic,
    map_raw,
    needs_bias,
)

ARMV8_IDX_CYCLE_COUNTER = 0
ARMV8_IDX_COUNTER0 = 1
ARMV8_PMU_COUNTER_MASK = 0x1F
"""ARMV8_IDX_TO_COUNTER: (idx - 1) & 31, so the cycle counter's idx 0 is bit 31."""
MAX_PERIOD = U32_MAX
"""arm_pmu_event_max_period of a 32-bit (not ``long``) event."""
U64 = (1 << 64) - 1


class ArmV8Pmu:
    """``struct arm_pmu`` with the armv8pmu operations, and this CPU's ``pmu_hw_events``."""

    def __init__(self, info: ArmPmuInfo) -> None:
        self.info = info
        self.events: dict[int, PerfEvent] = {}
        """hw_events->events: the event on each counter index."""
        self.used_mask = 0
        """hw_events->used_mask over the driver's indices (bit 0: the cycle counter)."""
        self.active_events = 0
        """Events opened on this PMU (the IRQ handler runs whatever it says)."""
        self.overflow: OverflowFn = no_overflow
        """perf_event_overflow, registered by the perf core."""

    def __repr__(self) -> str:
        return (f"ArmV8Pmu(pmuver={self.info.pmuver:#x}, "
                f"num_events={self.info.num_events})")

    @property
    def counting_period(self) -> int:
        """__hw_perf_event_init: a counting event's period is max_period >> 1."""
        return MAX_PERIOD >> 1

    # -- event init (armpmu_event_init, __armv8_pmuv3_map_event, set_event_filter) ----------
    def event_init(self, spec: EventSpec, attr: PerfEventAttr, period: int) -> HwPerfEvent | None:
        """The event number with its filter in hw.config_base; None: not supported (branch
        stacks, CHAIN, a generic event the PMU does not implement)."""
        if attr.branch_sample_type:
            return None  # armpmu_event_init: no taken-branch sampling
        mapping = self.map_event(spec)
        if mapping is None:
            return None
        self.active_events += 1
        return HwPerfEvent(0, 0, period, period, period,
                           config_base=self.event_filter(attr) | mapping)

    def map_event(self, spec: EventSpec) -> int | None:
        """__armv8_pmuv3_map_event (``vpmu.linux.arm_pmuv3``): a raw event is its low 16 bits
        (CHAIN refused); a generic one is armv8_pmuv3_perf_map's (``branches``:
        PC_WRITE_RETIRED, else BR_RETIRED), if PMCEID has it."""
        if spec.raw is not None:
            return map_raw(spec.raw)
        assert spec.generic is not None
        return map_generic(spec.generic, self.info.pmceid)

    def event_filter(self, attr: PerfEventAttr) -> int:
        """armv8pmu_set_event_filter (``vpmu.linux.arm_pmuv3``): exclusions as PMEVTYPER's
        P / U / NSH bits. The guest's attr has no exclude_host / exclude_guest: the tools
        leave them clear here."""
        return event_filter(hyp_mode=self.info.hyp_mode, exclude_user=attr.exclude_user,
                            exclude_kernel=attr.exclude_kernel, exclude_hv=attr.exclude_hv)

    # -- counter registers ---------------------------------------------------------------
    @staticmethod
    def counter(idx: int) -> int:
        """ARMV8_IDX_TO_COUNTER: the hardware counter (bit) of driver index ``idx``."""
        return (idx - ARMV8_IDX_COUNTER0) & ARMV8_PMU_COUNTER_MASK

    def needs_bias(self, idx: int) -> bool:
        """armv8pmu_event_needs_bias: a 64-bit counter carrying a 32-bit event (every event is
        32-bit here)."""
        return needs_bias(is_64bit=False, long_event_counters=self.info.has_long_event,
                          cycle_counter=idx == ARMV8_IDX_CYCLE_COUNTER)

    def read_counter(self, e: PerfEvent) -> Gen[int | None]:
        """armv8pmu_read_counter: PMCCNTR_EL0 or PMEVCNTR<n>_EL0, unbiased."""
        idx = e.hw.idx
        name = ("PMCCNTR_EL0" if idx == ARMV8_IDX_CYCLE_COUNTER
                else f"PMEVCNTR{self.counter(idx)}_EL0")
        value = yield Mrs(name)
        if not isinstance(value, int):
            return None
        return value & ~BIAS if self.needs_bias(idx) else value

    def write_counter(self, e: PerfEvent, value: int) -> Gen[None]:
        """armv8pmu_write_counter: biased where needed, to PMCCNTR_EL0 or PMEVCNTR<n>_EL0."""
        idx = e.hw.idx
        if self.needs_bias(idx):
            value |= BIAS
        if idx == ARMV8_IDX_CYCLE_COUNTER:
            yield Msr("PMCCNTR_EL0", value)
        else:
            yield Msr(f"PMEVCNTR{self.counter(idx)}_EL0", value)

    def update(self, e: PerfEvent) -> Gen[int]:
        """armpmu_event_update: the delta since prev_count, modulo max_period."""
        hw = e.hw
        value = yield from self.read_counter(e)
        new = hw.prev_count if value is None else value  # a faulting read: count nothing
        delta = (new - hw.prev_count) & MAX_PERIOD
        hw.prev_count = new
        e.count += delta
        hw.period_left -= delta
        return new

    def set_period(self, e: PerfEvent) -> Gen[bool]:
        """armpmu_event_set_period: the counter to -left (left at most max_period >> 1, no
        lower clamp); True if a period elapsed."""
        hw = e.hw
        # no lower clamp: the left next_period folds is never negative, so 0 clamps nothing
        left, ret = next_period(hw, min_left=0, max_left=MAX_PERIOD >> 1)
        hw.prev_count = -left & U64
        yield from self.write_counter(e, -left & MAX_PERIOD)
        return ret

    # -- armv8pmu_enable_event / armv8pmu_disable_event -------------------------------------
    def enable(self, e: PerfEvent) -> Gen[None]:
        """Counter off, event type, interrupt on, counter on."""
        idx = e.hw.idx
        bit = 1 << self.counter(idx)
        yield Msr("PMCNTENCLR_EL0", bit)
        if idx == ARMV8_IDX_CYCLE_COUNTER:
            yield Msr("PMCCFILTR_EL0", e.hw.config_base)
        else:
            yield Msr(f"PMEVTYPER{self.counter(idx)}_EL0",
                      e.hw.config_base & ARMV8_PMU_EVTYPE_MASK)
        yield Msr("PMINTENSET_EL1", bit)
        yield Msr("PMCNTENSET_EL0", bit)

    def disable(self, e: PerfEvent) -> Gen[None]:
        """Counter off, interrupt off, its overflow flag cleared."""
        bit = 1 << self.counter(e.hw.idx)
        yield Msr("PMCNTENCLR_EL0", bit)
        yield Msr("PMINTENCLR_EL1", bit)
        yield Msr("PMOVSCLR_EL0", bit)

    # -- pmu->add / del / start / stop ---------------------------------------------------
    def get_event_idx(self, e: PerfEvent) -> int | None:
        """armv8pmu_get_event_idx on this CPU's counters."""
        return self.event_idx(e.hw, self.used_mask)

    def event_idx(self, hw: HwPerfEvent, used_mask: int) -> int | None:
        """armv8pmu_get_event_idx: the cycle counter for CPU_CYCLES if free in ``used_mask``,
        else the lowest free event counter."""
        free = ~used_mask
        if hw.config_base & ARMV8_PMU_EVTYPE_EVENT == arm_ev.CPU_CYCLES and free & 1:
            return ARMV8_IDX_CYCLE_COUNTER
        for idx in range(ARMV8_IDX_COUNTER0, self.info.num_events):
            if free >> idx & 1:
                return idx
        return None

    def validate_group(self, group: list[HwPerfEvent]) -> bool:
        """validate_group (arm_pmu.c): each event takes a counter of a fake, empty PMU."""
        used = 0
        for hw in group:
            idx = self.event_idx(hw, used)
            if idx is None:
                return False
            used |= 1 << idx
        return True

    def start_txn(self) -> None:
        """No transaction of its own: perf_pmu_start_txn is the core's perf_pmu_disable."""

    def commit_txn(self) -> bool:
        """perf_pmu_commit_txn: nothing to check (each add took its counter)."""
        return True

    def cancel_txn(self) -> None:
        """perf_pmu_cancel_txn: nothing to undo (group_sched_in deleted the added events)."""

    def add(self, e: PerfEvent, *, start: bool = True) -> Gen[bool]:
        """armpmu_add: take a counter, disable it, and start the event on it."""
        idx = self.get_event_idx(e)
        if idx is None:
            return False
        self.used_mask |= 1 << idx
        e.hw.idx = idx
        yield from self.disable(e)
        self.events[idx] = e
        e.hw.state = PERF_HES_STOPPED | PERF_HES_UPTODATE
        if start:
            yield from self.start(e, reload=True)
        return True

    def delete(self, e: PerfEvent) -> Gen[None]:
        """armpmu_del: stop with update, free the counter, forget the index."""
        yield from self.stop(e, update=True)
        idx = e.hw.idx
        self.events.pop(idx, None)
        self.used_mask &= ~(1 << idx)
        e.hw.idx = -1

    def start(self, e: PerfEvent, *, reload: bool) -> Gen[None]:
        """armpmu_start: always re-arms (PERF_EF_RELOAD is ignored), then enables."""
        e.hw.state = 0
        yield from self.set_period(e)
        yield from self.enable(e)

    def read(self, e: PerfEvent) -> Gen[None]:
        """armpmu_read: armpmu_event_update."""
        yield from self.update(e)

    def stop(self, e: PerfEvent, *, update: bool) -> Gen[None]:
        """armpmu_stop: always updates (PERF_EF_UPDATE is ignored) if it was running."""
        hw = e.hw
        if not hw.state & PERF_HES_STOPPED:
            yield from self.disable(e)
            yield from self.update(e)
            hw.state |= PERF_HES_STOPPED | PERF_HES_UPTODATE

    # -- armpmu_enable / armpmu_disable (armv8pmu_start / armv8pmu_stop) --------------------
    def pmu_enable(self) -> Gen[None]:
        """armpmu_enable: armv8pmu_start if any counter is in use."""
        if self.used_mask:
            yield from self.armv8pmu_start()

    def pmu_disable(self) -> Gen[None]:
        """armpmu_disable: armv8pmu_stop."""
        yield from self.armv8pmu_stop()

    def armv8pmu_start(self) -> Gen[None]:
        """No user access (PMUSERENR_EL0 = 0), then PMCR_EL0.E on."""
        yield Msr("PMUSERENR_EL0", 0)  # armv8pmu_disable_user_access
        yield from self._pmcr_rmw(set_e=True)

    def armv8pmu_stop(self) -> Gen[None]:
        """PMCR_EL0.E off."""
        yield from self._pmcr_rmw(set_e=False)

    def _pmcr_rmw(self, *, set_e: bool) -> Gen[None]:
        pmcr = yield Mrs("PMCR_EL0")
        pmcr = pmcr if isinstance(pmcr, int) else 0
        pmcr = pmcr | ARMV8_PMU_PMCR_E if set_e else pmcr & ~ARMV8_PMU_PMCR_E
        yield Msr("PMCR_EL0", pmcr & ARMV8_PMU_PMCR_MASK)

    # -- the interrupt -------------------------------------------------------------------
    def getreset_flags(self) -> Gen[int]:
        """armv8pmu_getreset_flags: read PMOVSCLR_EL0, write the bits back to clear them."""
        value = yield Mrs("PMOVSCLR_EL0")
        value = value & ARMV8_PMU_OVSR_MASK if isinstance(value, int) else 0
        yield Msr("PMOVSCLR_EL0", value)
        return value

    def handle_irq(self) -> Gen[int]:
        """armv8pmu_handle_irq; returns the overflowed events handled (0: IRQ_NONE)."""
        pmovsr = yield from self.getreset_flags()
        if not pmovsr & ARMV8_PMU_OVSR_MASK:
            return 0
        yield from self.armv8pmu_stop()
        handled = 0
        for idx in set_bits(self.used_mask):
            e = self.events.get(idx)
            if e is None or not pmovsr >> self.counter(idx) & 1:
                continue
            handled += 1
            yield from self.update(e)
            last_period = e.hw.last_period  # perf_sample_data_init, before the re-arm
            if not (yield from self.set_period(e)):
                continue
            if (yield from self.overflow(e, last_period)):
                yield from self.disable(e)  # cpu_pmu->disable(event): hw.state unchanged
        yield from self.armv8pmu_start()
        return handled
