"""``struct kvm_pmu`` of the perf-backed vPMU: guest MSR handling (1.2), reprogramming on
KVM_REQ_PMU (1.3), overflow to guest PMI (1.4), RDPMC (1.5), emulated instructions (1.6) and
the lazy release on sched-in (1.7), as arch/x86/kvm/pmu.c and vmx/pmu_intel.c / svm/pmu.c do.

Register decoding and reserved-bit checks come from the guest PMU's declarations
(``vpmu.arch.x86.msrs.pmu_msrs`` of the caps KVM exposes): one source of #GP rules for bare
metal and every design. AMD differs where KVM does: selector reserved bits are dropped
instead of faulting (amd_pmu_set_msr masks them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpmu.arch.faults import Fault
from vpmu.arch.regs import RegisterSpec, Role, apply_write, by_address, read_value
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, X86PmuCaps
from vpmu.arch.x86.events import INTEL_FIXED_PSEUDO_ENCODING
from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.event import OverflowHandler, PerfEvent
from vpmu.host.perf.events_map import PERF_TYPE_RAW
from vpmu.vpmu.design import KVM_REQ_PMI, KVM_REQ_PMU, Gen, NoGuestContext, VcpuHandle
from vpmu.vpmu.designs.emulated.pmc import KvmPmc, PmcOps, sample_period
from vpmu.vpmu.x86.ops import INSTRUCTIONS_RETIRED, ops_for

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu


RAW_EVENT_MASK = 0xFF | 0xFF << 8 | 1 << 18 | 1 << 19 | 1 << 21 | 1 << 23 | 0xFF << 24 \
    | 0xF << 32
"""pmu->raw_event_mask: event, umask, EDGE, PC, ANY, INV, CMASK and AMD's event bits 11:8;
USR/OS/INT/EN go to the perf attr instead."""


class EmulatedVcpu(NoGuestContext):
    """One vCPU's perf-backed PMU."""

    def __init__(self, vcpu: VcpuHandle, caps: X86PmuCaps, ops: PmcOps, *,
                 count_emulated: bool) -> None:
        self.vcpu = vcpu
        self.count_emulated = count_emulated
        self.caps = caps
        self.ops = ops
        self.vendor = ops_for(caps)
        """KVM's vendor ops (kvm_pmu_ops)."""
        self.specs: dict[int, RegisterSpec] = by_address(msrs.pmu_msrs(caps))
        self.gp = [KvmPmc(i, caps.gp_width) for i in range(caps.n_gp)]
        self.fixed = {FIXED_IDX_BASE + i: KvmPmc(FIXED_IDX_BASE + i, caps.fixed_width,
                                                 eventsel=INTEL_FIXED_PSEUDO_ENCODING[i])
                      for i in self.vendor.fixed_indices(caps)}
        self.global_ctrl = caps.gp_mask if caps.has_global_ctrl else 0
        self.global_status = 0
        self.fixed_ctr_ctrl = 0
        self.reprogram_pmi = 0
        self.pmc_in_use = 0
        self.need_cleanup = False
        self.event_count = 0
        self.regs: dict[str, int] = {}
        """Registers KVM only stores (DEBUGCTL, PERF_CAPABILITIES)."""

    def __repr__(self) -> str:
        return f"EmulatedVcpu(vcpu={self.vcpu.index})"

    # -- lookup ----------------------------------------------------------------------------
    def pmc(self, idx: int) -> KvmPmc | None:
        """The counter with global index ``idx``."""
        if idx >= FIXED_IDX_BASE:
            return self.fixed.get(idx)
        return self.gp[idx] if 0 <= idx < len(self.gp) else None

    def all_pmcs(self) -> list[KvmPmc]:
        """Every counter, GP first."""
        return [*self.gp, *self.fixed.values()]

    def _request_reprogram(self, pmc: KvmPmc) -> None:
        """kvm_pmu_request_counter_reprogram."""
        self.reprogram_pmi |= 1 << pmc.idx
        self.vcpu.request(KVM_REQ_PMU)

    # -- intercepts --------------------------------------------------------------------------
    def is_valid_msr(self, addr: int) -> bool:
        """kvm_pmu_is_valid_msr: declared for the guest's PMU shape."""
        return addr in self.specs

    def intercepts_msr(self, addr: int) -> bool:
        """Every PMU MSR exits in the perf-backed design."""
        return True

    def intercepts_rdpmc(self) -> bool:
        """RDPMC always exits (1.5)."""
        return True

    # -- MSRs (1.2) ------------------------------------------------------------------------
    def get_msr(self, cpu: Pcpu, addr: int) -> Gen:
        """kvm_pmu_get_msr."""
        spec = self.specs.get(addr)
        if spec is None:
            return Fault.GP
        if spec.role is Role.COUNTER:
            pmc = self.pmc(spec.index)
            assert pmc is not None
            return (yield from self.ops.read_counter(cpu, pmc))
        if spec.role is Role.SELECTOR:
            return self.gp[spec.index].eventsel
        return read_value(spec, self._stored(spec.storage, spec))

    def _stored(self, storage: str, spec: RegisterSpec) -> int:
        if storage == "GLOBAL_CTRL":
            return self.global_ctrl
        if storage == "GLOBAL_STATUS":
            return self.global_status
        if storage == "FIXED_CTR_CTRL":
            return self.fixed_ctr_ctrl
        return self.regs.get(storage, spec.reset)

    def set_msr(self, cpu: Pcpu, addr: int, value: int) -> Gen:
        """kvm_pmu_set_msr: #GP on reserved bits (Intel), bookkeeping and reprogram requests."""
        spec = self.specs.get(addr)
        if spec is None:
            return Fault.GP
        value = self.vendor.set_msr_value(spec, value)
        old = self._stored(spec.storage, spec) if spec.role is Role.REG else 0
        result = apply_write(spec, old, value)
        if result.fault:
            return Fault.GP
        if spec.role is Role.COUNTER:
            pmc = self.pmc(spec.index)
            assert pmc is not None and result.store is not None
            self.pmc_in_use |= 1 << pmc.idx
            yield from self.ops.write_counter(cpu, pmc, result.store)
            return None
        self._set_plain(spec, result.store, result.clear, result.set)
        return None

    def _set_plain(self, spec: RegisterSpec, store: int | None, clear: int, set_: int) -> None:
        storage = spec.storage
        if spec.role is Role.SELECTOR:
            pmc = self.gp[spec.index]
            self.pmc_in_use |= 1 << pmc.idx
            if store is not None and store != pmc.eventsel:
                pmc.eventsel = store
                self._request_reprogram(pmc)
        elif storage == "GLOBAL_CTRL":
            if store is not None and store != self.global_ctrl:
                diff, self.global_ctrl = store ^ self.global_ctrl, store
                self._reprogram_counters(diff)
        elif storage == "FIXED_CTR_CTRL":
            if store is not None and store != self.fixed_ctr_ctrl:
                diff, self.fixed_ctr_ctrl = store ^ self.fixed_ctr_ctrl, store
                for idx, pmc in self.fixed.items():
                    if diff >> 4 * (idx - FIXED_IDX_BASE) & 0xF:
                        self.pmc_in_use |= 1 << idx
                        self._request_reprogram(pmc)
        elif spec.target == "GLOBAL_STATUS":
            self.global_status = (self.global_status & ~clear) | set_
        elif store is not None:
            self.regs[storage] = store

    def _reprogram_counters(self, diff: int) -> None:
        """reprogram_counters: mark and request, no perf call."""
        for pmc in self.all_pmcs():
            if diff >> pmc.idx & 1:
                self._request_reprogram(pmc)

    # -- RDPMC (1.5) -----------------------------------------------------------------------
    def rdpmc(self, cpu: Pcpu, ecx: int) -> Gen:
        """kvm_pmu_rdpmc (the CR4.PCE/CPL check is done by the caller: it precedes the exit)."""
        idx = self.vendor.rdpmc_ecx_to_pmc(ecx)
        pmc = None if idx is None else self.pmc(idx)
        if pmc is None:
            return Fault.GP
        return (yield from self.ops.read_counter(cpu, pmc))

    # -- enablement ------------------------------------------------------------------------
    def globally_enabled(self, pmc: KvmPmc) -> bool:
        """pmc_is_globally_enabled."""
        return not self.caps.has_global_ctrl or bool(self.global_ctrl >> pmc.idx & 1)

    def fixed_field(self, pmc: KvmPmc) -> int:
        """The counter's 4-bit FIXED_CTR_CTRL field."""
        return self.fixed_ctr_ctrl >> 4 * (pmc.idx - FIXED_IDX_BASE) & 0xF

    def locally_enabled(self, pmc: KvmPmc) -> bool:
        """pmc_speculative_in_use."""
        if pmc.is_fixed:
            return bool(self.fixed_field(pmc) & 0x3)
        return bool(pmc.eventsel & msrs.EVTSEL_EN)

    def event_is_allowed(self, pmc: KvmPmc) -> bool:
        """pmc_event_is_allowed: globally and locally enabled and let through the filter."""
        if not (self.globally_enabled(pmc) and self.locally_enabled(pmc)):
            return False
        flt = self.vcpu.event_filter
        return flt is None or flt.allows(pmc.idx, pmc.eventsel)

    def hw_select(self, pmc: KvmPmc) -> tuple[int, int]:
        """(eventsel with USR/OS/INT as KVM builds it, current_config)."""
        if not pmc.is_fixed:
            return pmc.eventsel, pmc.eventsel
        field = self.fixed_field(pmc)
        sel = pmc.eventsel
        sel |= msrs.EVTSEL_OS if field & 1 else 0
        sel |= msrs.EVTSEL_USR if field & 2 else 0
        sel |= msrs.EVTSEL_INT if field & 8 else 0
        return sel, field

    # -- KVM_REQ_PMU (1.3) -----------------------------------------------------------------
    def handle_event(self, cpu: Pcpu) -> Gen:
        """kvm_pmu_handle_event: reprogram the marked counters, then the lazy cleanup."""
        bitmap, self.reprogram_pmi = self.reprogram_pmi, 0
        for pmc in self.all_pmcs():
            if bitmap >> pmc.idx & 1:
                yield from cpu.kernel_work(self.vcpu.kvm_costs.pmc_reprogram_cycles,
                                           "kvm reprogram_counter")
                yield from self.reprogram_counter(cpu, pmc)
        if self.need_cleanup:
            yield from self.cleanup(cpu)

    def reprogram_counter(self, cpu: Pcpu, pmc: KvmPmc) -> Gen:
        """reprogram_counter (1.3 steps 1-5); with reuse off, the 2019 stop + create."""
        if not self.ops.reuse:
            self.event_count -= yield from self.ops.stop(cpu, pmc)
            if self.event_is_allowed(pmc):
                yield from self._create(cpu, pmc)
            return None
        emulated_overflow = yield from self.ops.pause(cpu, pmc)
        if not self.event_is_allowed(pmc):
            return None
        if emulated_overflow:
            self._overflow(pmc)
        _, config = self.hw_select(pmc)
        if config == pmc.current_config and (yield from self.ops.resume(cpu, pmc)):
            return None
        self.event_count -= yield from self.ops.release(cpu, pmc)
        yield from self._create(cpu, pmc)  # sets current_config
        return None

    def _create(self, cpu: Pcpu, pmc: KvmPmc) -> Gen:
        """pmc_reprogram_counter: a pinned, exclude_host RAW event on the vCPU thread."""
        sel, config = self.hw_select(pmc)
        pmc.current_config = config
        attr = PerfEventAttr(type=PERF_TYPE_RAW, config=sel & RAW_EVENT_MASK, pinned=True,
                             exclude_idle=True, exclude_host=True,
                             exclude_user=not sel & msrs.EVTSEL_USR,
                             exclude_kernel=not sel & msrs.EVTSEL_OS,
                             sample_period=sample_period(pmc, pmc.counter),
                             name=f"kvm pmc{pmc.idx}")
        pmc.perf_event = yield from self.vcpu.kapi.create_kernel_counter(
            cpu, attr, task=self.vcpu.task, overflow_handler=self._perf_overflow_for(pmc))
        pmc.is_paused = False
        pmc.intr = bool(sel & msrs.EVTSEL_INT)
        self.event_count += 1

    def cleanup(self, cpu: Pcpu) -> Gen:
        """kvm_pmu_cleanup: release the events of counters neither used in the last slice
        nor enabled."""
        self.need_cleanup = False
        for pmc in self.all_pmcs():
            if (pmc.perf_event is not None and not self.pmc_in_use >> pmc.idx & 1
                    and not self.locally_enabled(pmc)):
                self.event_count -= yield from self.ops.stop(cpu, pmc)
        self.pmc_in_use = 0

    # -- overflow and PMI (1.4) ------------------------------------------------------------
    def _perf_overflow_for(self, pmc: KvmPmc) -> OverflowHandler:
        def kvm_perf_overflow(event: PerfEvent, cpu: Pcpu) -> None:
            if self.reprogram_pmi >> pmc.idx & 1:
                return  # already queued for reprogramming: the overflow is ignored
            self.reprogram_pmi |= 1 << pmc.idx
            self._overflow(pmc)
            self.vcpu.request(KVM_REQ_PMU)
        return kvm_perf_overflow

    def _overflow(self, pmc: KvmPmc) -> None:
        """__kvm_perf_overflow: set the status bit, request a PMI if the counter has INT."""
        self.global_status |= 1 << pmc.idx
        if pmc.intr:
            self.vcpu.request(KVM_REQ_PMI)

    def deliver_pmi(self, cpu: Pcpu) -> Gen:
        """kvm_pmu_deliver_pmi: through the virtual LVTPC (which masks itself on Intel)."""
        yield from ()
        return self.vcpu.deliver_lvtpc()

    # -- emulated instructions (1.6) and sched-in (1.7) ------------------------------------
    def instruction_retired(self) -> None:
        """kvm_pmu_instruction_retired: count the instruction KVM skipped on every allowed
        counter of instructions retired whose CPL filter matches."""
        if not self.count_emulated:
            return
        cpl0 = self.vcpu.cpl == 0
        for pmc in self.all_pmcs():
            sel, _ = self.hw_select(pmc)
            if sel & 0xF_0000_FFFF != INSTRUCTIONS_RETIRED or not self.event_is_allowed(pmc):
                continue
            if not sel & (msrs.EVTSEL_OS if cpl0 else msrs.EVTSEL_USR):
                continue
            pmc.emulated_counter += 1
            self._request_reprogram(pmc)

    def sched_in(self, cpu: Pcpu) -> int:
        """kvm_arch_sched_in: schedule the lazy cleanup if any event exists."""
        if self.event_count:
            self.need_cleanup = True
            self.vcpu.request(KVM_REQ_PMU)
        return 0
