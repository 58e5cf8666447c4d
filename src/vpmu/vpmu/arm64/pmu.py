"""``struct kvm_pmu`` / ``struct kvm_pmc`` of arm64 and pmu-emul.c's counter engine
(arch/arm64/kvm/pmu-emul.c@v6.16).

A counter's guest value is its shadow register plus the count of its perf event
(``kvm_pmu_get_pmc_value``), truncated to 32 bits unless the counter is 64-bit (the cycle
counter, or every counter from PMUv3p5: ``kvm_pmc_is_64bit``). Events are per-task kernel
counters on the VM's one host PMU, created per counter (``kvm_pmu_create_perf_event``)
and recreated whenever the guest writes the counter or its type, with a sample period that
ends at the counter's overflow (``compute_period``). SW_INCR and CHAIN are counted here in
software (``kvm_pmu_counter_increment``) and never have an event. An event's overflow sets
PMOVSSET and asks for re-entry if the interrupt should rise (``kvm_pmu_perf_overflow``);
the level reaches the vGIC only at entry and exit (``kvm_pmu_update_state``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.arm64.caps import CYCLE_IDX, ArmPmuCaps
from vpmu.arch.regs import set_bits
from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.event import OverflowHandler, PerfEvent
from vpmu.vpmu.arm64.access import KVM_REQ_IRQ_PENDING, ArmVcpuHandle
from vpmu.vpmu.arm64.host_pmu import KvmArch
from vpmu.vpmu.arm64.sysregs import EXCLUDE_EL0, EXCLUDE_EL1, PMCR_E, PMCR_LC, PMCR_LP, reset_pmcr
from vpmu.vpmu.lifecycle import Gen

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.perf.event import PmuIdentity

PERF_ATTR_CFG1_COUNTER_64BIT = 1
"""attr.config1 bit 0: ask arm_pmuv3 for a 64-bit counter."""
MASK32, MASK64 = (1 << 32) - 1, (1 << 64) - 1


@dataclass(eq=False)
class KvmPmc:
    """``struct kvm_pmc``: a counter index and its perf event, if any."""

    idx: int
    perf_event: PerfEvent | None = None

    def __repr__(self) -> str:
        return f"KvmPmc(idx={self.idx}, event={self.perf_event is not None})"


class KvmPmu:
    """One vCPU's PMU: the shadow registers and the counter engine."""

    def __init__(self, vcpu: ArmVcpuHandle, kvm: KvmArch) -> None:
        self.vcpu, self.kvm = vcpu, kvm
        self.caps: ArmPmuCaps = vcpu.caps
        self.pmc = [KvmPmc(i) for i in range(CYCLE_IDX + 1)]
        self.irq_level = False
        self.loaded_pmu: PmuIdentity | None = None
        """The PMU of the CPU the vCPU was last loaded on (fixed-counters-only)."""
        self.reset_regs()

    def reset_regs(self) -> None:
        """kvm_reset_vcpu's PMU registers (reset_pmu_reg, reset_pmcr): all zero but LC."""
        self.regs: dict[str, int] = {"PMCR_EL0": reset_pmcr(self.caps), "PMSELR_EL0": 0,
                                     "PMCNTENSET_EL0": 0, "PMINTENSET_EL1": 0,
                                     "PMOVSSET_EL0": 0, "PMUSERENR_EL0": 0}
        self.counter: dict[int, int] = dict.fromkeys(self.valid_idx(), 0)
        """PMEVCNTR<n>_EL0 and PMCCNTR_EL0's shadows (``__vcpu_sys_reg``)."""
        self.evtype: dict[int, int] = dict.fromkeys(self.valid_idx(), 0)
        """PMEVTYPER<n>_EL0 and PMCCFILTR_EL0."""

    # -- masks and predicates ------------------------------------------------------------
    def valid_mask(self) -> int:
        """``kvm_pmu_implemented_counter_mask``: counters 0..N-1 and the cycle counter."""
        return (1 << self.caps.n_counters) - 1 | 1 << CYCLE_IDX

    def valid_idx(self) -> list[int]:
        return list(set_bits(self.valid_mask()))

    def is_64bit(self, idx: int) -> bool:
        """``kvm_pmc_is_64bit``: the cycle counter, or any counter from PMUv3p5."""
        return idx == CYCLE_IDX or self.caps.long_event_counters

    def has_64bit_overflow(self, idx: int) -> bool:
        """``kvm_pmc_has_64bit_overflow``: PMCR_EL0.LP for an event counter, .LC for the
        cycle counter."""
        pmcr = self.regs["PMCR_EL0"]
        return bool(pmcr & (PMCR_LC if idx == CYCLE_IDX else PMCR_LP))

    def can_chain(self, idx: int) -> bool:
        """``kvm_pmu_counter_can_chain``: an even counter below 30 overflowing at 32 bits."""
        return idx % 2 == 0 and idx + 1 < CYCLE_IDX and not self.has_64bit_overflow(idx)

    def enabled(self, idx: int) -> bool:
        """``kvm_pmu_counter_is_enabled``: PMCR_EL0.E and PMCNTENSET_EL0[idx]."""
        return bool(self.regs["PMCR_EL0"] & PMCR_E and self.regs["PMCNTENSET_EL0"] >> idx & 1)

    def event_of(self, idx: int) -> int:
        """The event a counter counts: CPU_CYCLES for the cycle counter, else the type's
        evtCount under ``kvm_pmu_event_mask``."""
        if idx == CYCLE_IDX:
            return arm_ev.CPU_CYCLES
        return self.evtype[idx] & self.caps.event_mask

    def overflow_status(self) -> int:
        """``kvm_pmu_overflow_status``: PMOVSSET & PMINTENSET while PMCR_EL0.E (PMCNTENSET
        is not part of it since 6.13)."""
        r = self.regs
        if not r["PMCR_EL0"] & PMCR_E:
            return 0
        return r["PMOVSSET_EL0"] & r["PMINTENSET_EL1"] & self.valid_mask()

    def compute_period(self, idx: int, counter: int) -> int:
        """``compute_period``: events until the counter's overflow width wraps. A counter at
        0 gets the full width (upstream passes 0, which arm_pmu turns into half the
        hardware range; assumption: the architecture's full wrap)."""
        mask = MASK64 if self.is_64bit(idx) and self.has_64bit_overflow(idx) else MASK32
        return (-counter) & mask or mask + 1

    # -- values --------------------------------------------------------------------------
    def get_value(self, cpu: Pcpu, idx: int) -> Gen:
        """``kvm_pmu_get_pmc_value``: shadow + perf_event_read_value."""
        counter = self.counter[idx]
        ev = self.pmc[idx].perf_event
        if ev is not None:
            counter += yield from self.vcpu.kapi.read_value(cpu, ev)
        return counter & (MASK64 if self.is_64bit(idx) else MASK32)

    def set_value(self, cpu: Pcpu, idx: int, value: int) -> Gen:
        """``kvm_pmu_set_pmc_value``: release the event, set the shadow, recreate the event
        (its sample period follows the new value)."""
        yield from self.release(cpu, self.pmc[idx])
        self.counter[idx] = value & (MASK64 if self.is_64bit(idx) else MASK32)
        yield from self.create_perf_event(cpu, idx)

    def release(self, cpu: Pcpu, pmc: KvmPmc) -> Gen:
        """``kvm_pmu_release_perf_event``: disable and release, the count dropped."""
        ev = pmc.perf_event
        if ev is None:
            return
        yield from self.vcpu.kapi.disable(cpu, ev)
        yield from self.vcpu.kapi.release(cpu, ev)
        pmc.perf_event = None

    def stop_counter(self, cpu: Pcpu, pmc: KvmPmc) -> Gen:
        """``kvm_pmu_stop_counter``: fold the event's count into the shadow, release it."""
        if pmc.perf_event is None:
            return
        self.counter[pmc.idx] = yield from self.get_value(cpu, pmc.idx)
        yield from self.release(cpu, pmc)

    # -- events --------------------------------------------------------------------------
    def event_pmu(self) -> PmuIdentity | None:
        """The PMU a counter's event is opened on: the VM's, or with fixed-counters-only
        (the proposal) the PMU of the vCPU's current CPU (``kvm_pmu_probe_armpmu(cpu)``)."""
        if self.kvm.fixed_counters_only and self.loaded_pmu is not None:
            return self.loaded_pmu
        return self.kvm.arm_pmu

    def create_perf_event(self, cpu: Pcpu, idx: int) -> Gen:
        """``kvm_pmu_create_perf_event``: a pinned, exclude_host per-task kernel counter on
        the VM's host PMU, none for SW_INCR and CHAIN (or without a host PMU yet), none for
        an event the VM's filter denies (the counter stays at its shadow)."""
        pmc = self.pmc[idx]
        yield from self.stop_counter(cpu, pmc)
        eventsel = self.event_of(idx)
        arm_pmu = self.event_pmu()
        if eventsel in (arm_ev.SW_INCR, arm_ev.CHAIN) or arm_pmu is None:
            return
        flt = self.kvm.pmu_filter
        if flt is not None and not flt.allows(eventsel):
            return
        data = self.evtype[idx]
        attr = PerfEventAttr(
            type=arm_pmu.type, config=eventsel, pinned=True, disabled=not self.enabled(idx),
            exclude_user=bool(data & EXCLUDE_EL0), exclude_kernel=bool(data & EXCLUDE_EL1),
            exclude_hv=True, exclude_host=True,
            config1=PERF_ATTR_CFG1_COUNTER_64BIT if self.is_64bit(idx) else 0,
            sample_period=self.compute_period(idx, self.counter[idx]),
            name=f"kvm pmc{idx}")
        pmc.perf_event = yield from self.vcpu.kapi.create_kernel_counter(
            cpu, attr, task=self.vcpu.task, overflow_handler=self._overflow_for(pmc))

    def reprogram_counter_mask(self, cpu: Pcpu, mask: int) -> Gen:
        """``kvm_pmu_reprogram_counter_mask``: each counter in ``mask`` enabled (its event
        created, or perf_event_enable) or disabled (perf_event_disable)."""
        for idx in set_bits(mask & self.valid_mask()):
            ev = self.pmc[idx].perf_event
            if self.enabled(idx):
                if ev is None:
                    yield from self.create_perf_event(cpu, idx)
                else:
                    yield from self.vcpu.kapi.enable(cpu, ev)
            elif ev is not None:
                yield from self.vcpu.kapi.disable(cpu, ev)

    def reload(self, cpu: Pcpu) -> Gen:
        """``kvm_vcpu_reload_pmu`` (KVM_REQ_RELOAD_PMU): the bitmaps masked to the
        implemented counters, every counter reprogrammed."""
        mask = self.valid_mask()
        for name in ("PMOVSSET_EL0", "PMINTENSET_EL1", "PMCNTENSET_EL0"):
            self.regs[name] &= mask
        yield from self.reprogram_counter_mask(cpu, mask)

    # -- software increments and overflow ------------------------------------------------
    def counter_increment(self, mask: int, event: int) -> None:
        """``kvm_pmu_counter_increment``: +1 on each enabled counter in ``mask`` counting
        ``event``; a wrap at the overflow width sets PMOVSSET and chains into the odd
        neighbour (no filter check, as upstream)."""
        if not self.regs["PMCR_EL0"] & PMCR_E:
            return
        mask &= self.regs["PMCNTENSET_EL0"]
        for idx in set_bits(mask & ((1 << CYCLE_IDX) - 1)):
            if idx not in self.counter or self.event_of(idx) != event:
                continue
            reg = self.counter[idx] + 1
            if not self.is_64bit(idx):
                reg &= MASK32
            self.counter[idx] = reg & MASK64
            if (reg & MASK64 if self.has_64bit_overflow(idx) else reg & MASK32):
                continue
            self.regs["PMOVSSET_EL0"] |= 1 << idx
            if self.can_chain(idx):
                self.counter_increment(1 << (idx + 1), arm_ev.CHAIN)

    def _overflow_for(self, pmc: KvmPmc) -> OverflowHandler:
        def kvm_pmu_perf_overflow(event: PerfEvent, cpu: Pcpu) -> None:
            """The event's period ended: the next period from its count, PMOVSSET, the
            chain, and a kick if the interrupt should rise."""
            period = self.compute_period(pmc.idx, event.count)
            event.sample_period = event.period_left = event.last_period = period
            self.regs["PMOVSSET_EL0"] |= 1 << pmc.idx
            if self.can_chain(pmc.idx):
                self.counter_increment(1 << (pmc.idx + 1), arm_ev.CHAIN)
            if self.overflow_status():
                self.vcpu.request(KVM_REQ_IRQ_PENDING)
        return kvm_pmu_perf_overflow

    def update_state(self) -> None:
        """``kvm_pmu_update_state`` (flush before entry, sync after exit): push the level
        to the vGIC only when it changed."""
        overflow = bool(self.overflow_status())
        if overflow != self.irq_level:
            self.irq_level = overflow
            self.vcpu.vgic_inject_irq(overflow)
