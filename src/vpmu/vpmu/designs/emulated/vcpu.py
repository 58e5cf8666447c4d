"""``struct kvm_pmu`` of the perf-backed vPMU: reprogramming on KVM_REQ_PMU, overflow to guest
PMI, emulated instructions and the lazy release on sched-in, as arch/x86/kvm/pmu.c and
vmx/pmu_intel.c / svm/pmu.c do (Linux v6.6).

The guest's MSR and RDPMC accesses are the shared core's (``vpmu.vpmu.x86.core``:
the declared #GP rules, the vendor ops); this design says where a counter's value lives, in
KVM's part and a host perf event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, X86PmuCaps
from vpmu.arch.x86.events import INTEL_FIXED_PSEUDO_ENCODING
from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.event import OverflowHandler, PerfEvent
from vpmu.uapi.perf_event import PERF_TYPE_RAW
from vpmu.vpmu.design import KVM_REQ_PMU, Gen, NoGuestContext
from vpmu.vpmu.designs.emulated.pmc import KvmPmc, PmcOps, sample_period
from vpmu.vpmu.x86.access import X86VcpuHandle
from vpmu.vpmu.x86.core import X86VpmuCore
from vpmu.vpmu.x86.ops import is_instructions_retired
from vpmu.vpmu.x86.pmc import FIXED_OS, FIXED_PMI, FIXED_USR, ring_field

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu


RAW_EVENT_MASK = 0xFF | 0xFF << 8 | 1 << 18 | 1 << 19 | 1 << 21 | 1 << 23 | 0xFF << 24 \
    | 0xF << 32
"""pmu->raw_event_mask: event, umask, EDGE, PC, ANY, INV, CMASK and AMD's event bits 11:8;
USR/OS/INT/EN go to the perf attr instead."""


class EmulatedVcpu(X86VpmuCore[KvmPmc], NoGuestContext):
    """One vCPU's perf-backed PMU: the common ``struct kvm_pmu`` (``X86VpmuCore``, whose
    register writes are upstream's) with each counter backed by a host perf event."""

    def __init__(self, vcpu: X86VcpuHandle, caps: X86PmuCaps, ops: PmcOps, *,
                 count_emulated: bool, lbr_save_point: str = "thread-switch",
                 lbr_ownership: str = "first-come") -> None:
        self.count_emulated = count_emulated
        self.ops = ops
        super().__init__(vcpu, caps, lbr_save_point=lbr_save_point, lbr_ownership=lbr_ownership)
        self.need_cleanup = False
        self.event_count = 0

    def __repr__(self) -> str:
        return f"EmulatedVcpu(vcpu={self.vcpu.index})"

    def new_pmc(self, idx: int, width: int) -> KvmPmc:
        """A GP counter, or a fixed one with its architectural encoding as its selector."""
        if idx < FIXED_IDX_BASE:
            return KvmPmc(idx, width)
        return KvmPmc(idx, width, eventsel=INTEL_FIXED_PSEUDO_ENCODING[idx - FIXED_IDX_BASE])

    # -- intercepts --------------------------------------------------------------------------
    def intercepts_msr(self, addr: int) -> bool:
        """Every PMU MSR exits in the perf-backed design, except the LBR MSRs while the
        guest LBR event is active (``vpmu.vpmu.x86.lbr``)."""
        return self.lbr_intercepts(addr)

    def intercepts_rdpmc(self) -> bool:
        """RDPMC always exits (VMX RDPMC exiting; SVM INTERCEPT_RDPMC)."""
        return True

    # -- the counters' values: the perf event's count plus KVM's ---------------------------
    def read_counter(self, cpu: Pcpu, pmc: KvmPmc) -> Gen:
        """pmc_read_counter: KVM's part plus the perf event's count (perf_event_read_value)."""
        return (yield from self.ops.read_counter(cpu, pmc))

    def write_counter(self, cpu: Pcpu, pmc: KvmPmc, value: int) -> Gen:
        """pmc_write_counter: rebase KVM's part, then the perf event's period."""
        yield from self.ops.write_counter(cpu, pmc, value)

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
        sel |= msrs.EVTSEL_OS if field & FIXED_OS else 0
        sel |= msrs.EVTSEL_USR if field & FIXED_USR else 0
        sel |= msrs.EVTSEL_INT if field & FIXED_PMI else 0
        return sel, field

    # -- KVM_REQ_PMU (kvm_pmu_handle_event) ------------------------------------------------
    def reprogram_pmcs(self, cpu: Pcpu, pmcs: list[KvmPmc]) -> Gen:
        """reprogram_counter on each, its cost spent just before it, then the lazy cleanup.
        (The mediated design spends the loop's cost at once: the total is the same, the
        number of kernel spans is not.)"""
        for pmc in pmcs:
            yield from cpu.kernel_work(self.vcpu.kvm_costs.pmc_reprogram_cycles,
                                       "kvm reprogram_counter")
            yield from self.reprogram_counter(cpu, pmc)
        if self.need_cleanup:
            yield from self.cleanup(cpu)

    def reprogram_counter(self, cpu: Pcpu, pmc: KvmPmc) -> Gen:
        """reprogram_counter (pmu.c@v6.6); with reuse off, the 2019 stop + create."""
        if not self.ops.reuse:
            self.event_count -= yield from self.ops.stop(cpu, pmc)
            if self.event_is_allowed(pmc):
                yield from self._create(cpu, pmc)
            return None
        emulated_overflow = yield from self.ops.pause(cpu, pmc)
        if not self.event_is_allowed(pmc):
            return None
        if emulated_overflow:
            self.overflow(pmc, pmc.intr)
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
        if self.lbr is not None:
            self.lbr.cleanup(cpu)
        self.pmc_in_use = 0

    # -- overflow and PMI (kvm_perf_overflow) ----------------------------------------------
    def _perf_overflow_for(self, pmc: KvmPmc) -> OverflowHandler:
        def kvm_perf_overflow(event: PerfEvent, cpu: Pcpu) -> None:
            if self.reprogram_pmi >> pmc.idx & 1:
                return  # already queued for reprogramming: the overflow is ignored
            self.reprogram_pmi |= 1 << pmc.idx
            self.overflow(pmc, pmc.intr)
            self.vcpu.request(KVM_REQ_PMU)
        return kvm_perf_overflow

    # -- emulated instructions (kvm_pmu_trigger_event) and sched-in (kvm_pmu_cleanup) ------
    def counting_instructions(self) -> Iterator[tuple[KvmPmc, int]]:
        """Every allowed counter of instructions retired (none with the option off), checked
        at each retire against the live selectors and the filter, so the write that enables
        a counter counts. Upstream (6.9+) checks pmc_counting_instructions, refreshed at
        reprogram_counter, as the mediated design does."""
        if not self.count_emulated:
            return
        for pmc in self.all_pmcs():
            sel, _ = self.hw_select(pmc)
            if is_instructions_retired(sel) and self.event_is_allowed(pmc):
                yield pmc, ring_field(sel)

    def incr_counter(self, pmc: KvmPmc, field: int) -> None:
        """kvm_pmu_incr_counter: the perf event does not see it; the next reprogram adds it
        (and an overflow it causes)."""
        pmc.emulated_counter += 1
        self.request_reprogram(1 << pmc.idx)

    # -- the guest LBR's save point (vpmu.vpmu.x86.lbr) --------------------------------------
    def sched_out(self, cpu: Pcpu) -> int:
        """vcpu_put; perf's LBR context switch of the guest LBR event (thread-switch)."""
        return self.lbr.sched_out(cpu) if self.lbr is not None else 0

    def needs_load(self) -> bool:
        """vm-transition: the stack saved at the last VM-exit goes back before VM-entry."""
        return self.lbr is not None and self.lbr.restore_pending

    def load(self, cpu: Pcpu) -> Gen:
        """The restore before VM-entry (vm-transition)."""
        assert self.lbr is not None
        yield from cpu.kernel_work(self.lbr.at_vm_entry(cpu), "kvm lbr restore")

    def at_exit(self, cpu: Pcpu, point: str) -> Gen:
        """The save at VM-exit (vm-transition)."""
        lbr = self.lbr
        if point == "vm-exit" and lbr is not None and lbr.save_point == "vm-transition":
            yield from cpu.kernel_work(lbr.at_vm_exit(cpu), "kvm lbr save")

    def sched_in(self, cpu: Pcpu) -> int:
        """kvm_arch_sched_in: schedule the lazy cleanup if any event exists (the guest LBR
        event counts in upstream's event_count); perf restores the guest LBR context
        (thread-switch)."""
        cycles = self.lbr.sched_in(cpu) if self.lbr is not None else 0
        if self.event_count or (self.lbr is not None and self.lbr.event is not None):
            self.need_cleanup = True
            self.vcpu.request(KVM_REQ_PMU)
        return cycles
