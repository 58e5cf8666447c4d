"""``struct kvm_pmu`` of the mediated vPMU: the guest owns the hardware counters while its
context is loaded (arch/x86/kvm/pmu.c, pmu.h, vmx/pmu_intel.c, svm/pmu.c@v7.0).

KVM keeps the guest's values here while the context is put and the hardware holds them while
it is loaded. Selectors and FIXED_CTR_CTRL exit (upstream, ``passthrough=counters``), so KVM
sees every enable and builds the hardware copies (``eventsel_hw``, ``fixed_ctr_ctrl_hw``) with
the event filter's denied counters' enable bits masked (and, on AMD, GuestOnly set). Counters,
the global registers (when the guest has every host counter) and RDPMC (same condition) do
not exit. With ``passthrough=all`` the selectors and FIXED_CTR_CTRL do not exit either: the
guest's own values are in the hardware while loaded, put reads them back and load restores
them, and no filter or GuestOnly is applied.

Where the switch happens is the ``switch_point`` option; what a host event opened while the
guest owns the PMU does is ``host_preemption``; what put zeroes is ``clear_on_put``
(``vpmu.vpmu.designs.mediated`` documents each and what upstream does).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpmu.arch.regs import Role
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, X86PmuCaps, x86_caps
from vpmu.host.perf.x86.driver import sel_addr
from vpmu.hw.x86.cpu import x86_cpu
from vpmu.trace import PmuContext
from vpmu.vpmu.design import Gen
from vpmu.vpmu.designs.mediated import switch
from vpmu.vpmu.designs.mediated.vendor import MediatedOps, mediated_ops_for
from vpmu.vpmu.x86.access import X86VcpuHandle
from vpmu.vpmu.x86.core import X86VpmuCore
from vpmu.vpmu.x86.lbr import PMU_SWITCH
from vpmu.vpmu.x86.ops import is_instructions_retired
from vpmu.vpmu.x86.pmc import (
    FIXED_BITS_MASK,
    FIXED_EN,
    FIXED_PMI,
    X86Pmc,
    fixed_bits,
    fixed_ctrl_field,
    ring_field,
)

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.hw.x86.pmu import X86Pmu

INTEL_FIXED_INSTRUCTIONS = FIXED_IDX_BASE
"""Fixed counter 0 counts INST_RETIRED.ANY."""


@dataclass(eq=False)
class MediatedPmc(X86Pmc):
    """One guest counter: its saved value (``counter``, while the context is put) and (GP)
    the guest's and the hardware's selector."""

    eventsel_hw: int = 0


@dataclass(frozen=True, slots=True)
class MediatedOptions:
    """The design's options, checked (see ``vpmu.vpmu.designs.mediated``)."""

    switch_point: str
    host_preemption: str
    clear_on_put: str
    elide_writes: bool
    passthrough: str = "counters"


class MediatedVcpu(X86VpmuCore[MediatedPmc]):
    """One vCPU's mediated PMU: the common ``struct kvm_pmu`` (``X86VpmuCore``) whose
    counters and global registers are in the hardware while the guest context is loaded."""

    vendor: MediatedOps
    """KVM's vendor ops with the mediated series' (``vendor.py``)."""

    def __init__(self, vcpu: X86VcpuHandle, caps: X86PmuCaps, host: X86PmuCaps,
                 options: MediatedOptions) -> None:
        self.opts = options
        self.clear_on_put, self.elide_writes = options.clear_on_put, options.elide_writes
        super().__init__(vcpu, caps, mediated_ops_for(caps), lbr_save_point=PMU_SWITCH)
        self.fixed_ctr_ctrl_hw = 0
        self.used = 0
        """Counters whose selector the guest has ever enabled (guest-used): KVM can only
        see the selectors, which exit (``passthrough=all``: which put reads back); a counter
        written but never enabled is not in it."""
        self.loaded_on: Pcpu | None = None
        self._ipi_pending = False
        self.traffic: dict[str, Counter[str]] = {"load": Counter(), "put": Counter()}
        """MSR traffic of every load and put so far, by access and kernel MSR name."""
        same_fixed = len(self.fixed) == self.vendor.nr_fixed(host)
        same = caps.n_gp == host.n_gp and same_fixed
        self.global_passthrough = same and caps.has_global_ctrl
        self.rdpmc_passthrough = same and caps.gp_width == host.gp_width
        self.selectors_passthrough = options.passthrough == "all"
        """The guest's selectors run on the hardware: put saves them, KVM filters nothing."""
        # Assumption (the RFC's "all passthrough" variant was never posted as code): as with
        # the global registers, FIXED_CTR_CTRL passes through only if the guest has exactly
        # the host's fixed counters, else the guest could enable a host counter it lacks.
        self.fixed_ctrl_passthrough = (self.selectors_passthrough and same_fixed
                                       and self.vendor.fixed_counters)
        """FIXED_CTR_CTRL runs on the hardware too (Intel; AMD has none)."""

    def __repr__(self) -> str:
        return f"MediatedVcpu(vcpu={self.vcpu.index}, loaded_on={self.loaded_on!r})"

    def new_pmc(self, idx: int, width: int) -> MediatedPmc:
        """A counter with its value saved in KVM (the context starts put)."""
        return MediatedPmc(idx, width)

    @property
    def reprogram(self) -> int:
        """The reprogram bitmap (``reprogram_pmi``) under this design's earlier name."""
        return self.reprogram_pmi

    # -- where the guest's state is --------------------------------------------------------
    def _hw(self) -> X86Pmu | None:
        """The hardware PMU holding the guest's state, or None while it is put."""
        return x86_cpu(self.loaded_on.hw).x86_pmu if self.loaded_on is not None else None

    def counter_value(self, pmc: MediatedPmc) -> int:
        """The guest's counter: in the hardware while loaded, else the saved value."""
        hw = self._hw()
        if hw is None:
            return pmc.counter
        hw.sync()
        value: int = hw.counters[pmc.idx].value
        return value

    def _set_counter(self, pmc: MediatedPmc, value: int) -> None:
        value &= pmc.mask
        hw = self._hw()
        if hw is None:
            pmc.counter = value
            return
        hw.sync()
        counter = hw.counters[pmc.idx]
        counter.value = value
        counter.origin = self.vcpu.label
        hw.reconfigure()

    def read_counter(self, cpu: Pcpu, pmc: MediatedPmc) -> Gen:
        """The counter where it is (no exit reaches here while it passes through)."""
        yield from ()
        return self.counter_value(pmc)

    def write_counter(self, cpu: Pcpu, pmc: MediatedPmc, value: int) -> Gen:
        """The counter where it is."""
        yield from ()
        self._set_counter(pmc, value)

    def read_global_status(self) -> int:
        """GLOBAL_STATUS: the hardware's while loaded, else the saved value."""
        hw = self._hw()
        if hw is None:
            return self.global_status
        value = hw.rdmsr(self.vendor.GLOBAL_STATUS)
        assert isinstance(value, int), "a mediated host has GLOBAL_STATUS: a model bug"
        return value & self.counter_mask

    def write_global_status(self, clear: int, set_: int) -> None:
        """GLOBAL_STATUS where it is (an overflow, or a W1C/W1S register that exited)."""
        hw = self._hw()
        if hw is None:
            super().write_global_status(clear, set_)
            return
        hw.sync()
        hw.regs["GLOBAL_STATUS"] = (hw.regs["GLOBAL_STATUS"] & ~clear) | set_
        hw.reconfigure()  # CTR_FRZ (v4+) decides what counts

    def hw_global_ctrl(self) -> int:
        """The hardware global control while the guest runs: the guest's, or every guest
        counter for a guest without one (v1, AMD without PerfMonV2)."""
        if not self.caps.has_global_ctrl:
            return self.counter_mask
        return self.global_ctrl & self.counter_mask

    def read_global_ctrl(self) -> int:
        """Every counter for a guest without a global control; else where the vendor
        keeps it between an exit and the put (Intel's VMCS saves it at every VM-exit, AMD's
        stays in the hardware)."""
        if not self.caps.has_global_ctrl:
            return self.counter_mask
        return self.vendor.read_global_ctrl(self, self._hw())

    # -- intercepts (vmx_recalc_pmu_msr_intercepts) ----------------------------------------
    def intercepts_msr(self, addr: int) -> bool:
        """vmx/svm_recalc_pmu_msr_intercepts: the guest's counters pass through; selectors and
        FIXED_CTR_CTRL exit (unless ``passthrough=all``); the global registers pass through
        iff the guest has exactly the host's counters; everything else exits."""
        spec = self.specs.get(addr)
        if spec is None:
            return True
        if spec.role is Role.COUNTER or (self.lbr is not None and addr in self.lbr.msrs):
            return False
        if spec.role is Role.SELECTOR:
            return not self.selectors_passthrough
        if spec.storage == "FIXED_CTR_CTRL":
            return not self.fixed_ctrl_passthrough
        if spec.storage in ("GLOBAL_CTRL", "GLOBAL_STATUS") or spec.target == "GLOBAL_STATUS":
            return not self.global_passthrough
        return True

    def intercepts_rdpmc(self) -> bool:
        """RDPMC exits unless the guest's counters equal the host's (no VMware backdoor)."""
        return not self.rdpmc_passthrough

    # -- intercepted writes: where this design differs from upstream's common code ---------
    def write_eventsel(self, pmc: MediatedPmc, value: int) -> None:
        """Store and reprogram (the filter is applied) before the next entry. Upstream
        requests the reprogram only if the value changed (the core's default)."""
        pmc.eventsel = value
        self.request_reprogram(1 << pmc.idx)

    def write_fixed_ctr_ctrl(self, value: int) -> None:
        """Store and reprogram every fixed counter. Upstream (reprogram_fixed_counters)
        reprograms only the counters whose field changed (the core's default)."""
        self.fixed_ctr_ctrl = value
        self.request_reprogram(sum(1 << p.idx for p in self.fixed))

    def write_global_ctrl(self, value: int) -> None:
        """Store, and the vendor's write_global_ctrl (AMD: the hardware, while loaded).
        Upstream also reprograms the counters whose enable changed (reprogram_counters, the
        core's default), which this design does not."""
        self.global_ctrl = value
        self.vendor.write_global_ctrl(self._hw(), value)

    # -- KVM_REQ_PMU: the hardware copies and the filter -----------------------------------
    def reprogram_pmcs(self, cpu: Pcpu, pmcs: list[MediatedPmc]) -> Gen:
        """reprogram_counter on a mediated PMU: refresh the hardware selectors only. The
        loop's cost is spent at once (the emulated design spends it per counter). With
        ``passthrough=all`` no selector write exits, so nothing requests it."""
        if pmcs:
            yield from cpu.kernel_work(len(pmcs) * self.vcpu.kvm_costs.pmc_reprogram_cycles,
                                       "kvm reprogram_counter")
        for pmc in pmcs:
            if not pmc.is_fixed:
                pmc.eventsel_hw = self._eventsel_hw(pmc)
                self._refresh_hw(cpu, sel_addr(x86_caps(self.vcpu.host.preset.caps), pmc.idx),
                                 pmc.eventsel_hw)
        if any(p.is_fixed for p in pmcs):
            self.fixed_ctr_ctrl_hw = self._fixed_ctrl_hw()
            self._refresh_hw(cpu, msrs.IA32_FIXED_CTR_CTRL, self.fixed_ctr_ctrl_hw)
        self.used |= self._enabled_mask()

    def _refresh_hw(self, cpu: Pcpu, addr: int, value: int) -> None:
        """With the context loaded (vcpu-load), the new copy goes to the hardware now."""
        if self.loaded_on is cpu:
            switch.MsrTally(cpu, self.traffic["load"]).wr(addr, value)

    def _eventsel_hw(self, pmc: MediatedPmc) -> int:
        """kvm_mediated_pmu_refresh_event_filter: EN masked if the filter denies the event;
        AMD selectors count in the guest only."""
        sel = pmc.eventsel
        flt = self.vcpu.event_filter
        if flt is not None and not flt.allows(pmc.idx, sel):
            sel &= ~msrs.EVTSEL_EN
        return self.vendor.eventsel_hw(sel)

    def _fixed_ctrl_hw(self) -> int:
        """FIXED_CTR_CTRL with the 4-bit field of every denied fixed counter cleared."""
        value, flt = self.fixed_ctr_ctrl, self.vcpu.event_filter
        for pmc in self.fixed:
            if flt is not None and not flt.allows(pmc.idx):
                value &= ~fixed_bits(pmc, FIXED_BITS_MASK)
        return value

    def _enabled_mask(self) -> int:
        ctrl = self._fixed_ctrl_now()
        mask = sum(1 << p.idx for p in self.gp if self._eventsel_now(p) & msrs.EVTSEL_EN)
        for pmc in self.fixed:
            if fixed_ctrl_field(ctrl, pmc) & FIXED_EN:
                mask |= 1 << pmc.idx
        return mask

    def _eventsel_now(self, pmc: MediatedPmc) -> int:
        """The selector that decides what ``pmc`` counts: KVM's hardware copy, or with
        ``passthrough=all`` while loaded the hardware's (the guest writes it there)."""
        hw = self._hw() if self.selectors_passthrough else None
        return pmc.eventsel_hw if hw is None else hw.sels.get(pmc.idx, 0)

    def _fixed_ctrl_now(self) -> int:
        """FIXED_CTR_CTRL as ``_eventsel_now`` reads a selector."""
        hw = self._hw() if self.fixed_ctrl_passthrough else None
        return self.fixed_ctr_ctrl_hw if hw is None else hw.regs.get("FIXED_CTR_CTRL", 0)

    def save_controls(self, eventsels: list[int], fixed_ctr_ctrl: int | None) -> None:
        """``passthrough=all``: what put read from the hardware (RFC v1 23/41's save:
        ``rdmsrl`` of each EVENTSEL and of FIXED_CTR_CTRL) is both the guest's value and the
        hardware copy load restores; an enabled one marks its counter guest-used."""
        for pmc, sel in zip(self.gp, eventsels, strict=True):
            pmc.eventsel = pmc.eventsel_hw = sel
        if fixed_ctr_ctrl is not None:
            self.fixed_ctr_ctrl = self.fixed_ctr_ctrl_hw = fixed_ctr_ctrl
        self.used |= self._enabled_mask()

    # -- PMIs and emulated instructions -----------------------------------------------------
    def counting_instructions(self) -> list[tuple[MediatedPmc, int]]:
        """Every globally enabled counter of instructions retired as the hardware copies
        say (pmc_counting_instructions: the filter and the enables as of the last
        KVM_REQ_PMU, so the write that enables a counter does not count, as on the
        hardware). A guest without a global control reads every counter's bit set."""
        ctrl, out = self.read_global_ctrl(), []
        for pmc in self.gp:
            sel = self._eventsel_now(pmc)
            if sel & msrs.EVTSEL_EN and is_instructions_retired(sel) and ctrl >> pmc.idx & 1:
                out.append((pmc, ring_field(sel)))
        fixed_ctrl = self._fixed_ctrl_now()
        for pmc in self.fixed:
            field = fixed_ctrl_field(fixed_ctrl, pmc)
            if pmc.idx == INTEL_FIXED_INSTRUCTIONS and field & FIXED_EN and ctrl >> pmc.idx & 1:
                out.append((pmc, field))
        return out

    def incr_counter(self, pmc: MediatedPmc, field: int) -> None:
        """kvm_pmu_incr_counter on a mediated PMU: counter + 1 where it is; a wrap is an
        overflow (the status bit, and KVM_REQ_PMI with PMI enabled)."""
        value = (self.counter_value(pmc) + 1) & pmc.mask
        self._set_counter(pmc, value)
        if value == 0:
            self.overflow(pmc, bool(field & FIXED_PMI))

    def fastpath_allowed(self) -> bool:
        """kvm_pmu_is_fastpath_emulation_allowed: no instructions counter is enabled."""
        return not self.counting_instructions()

    # -- the context switch (kvm_mediated_pmu_load / _put) ---------------------------------
    def needs_load(self) -> bool:
        """The guest context is not on the hardware."""
        return self.loaded_on is None

    def load(self, cpu: Pcpu) -> Gen:
        """kvm_mediated_pmu_load just before VM-entry."""
        cycles = self._load_now(cpu, self.opts.switch_point)
        yield from cpu.kernel_work(cycles, "kvm mediated pmu load")

    def _load_now(self, cpu: Pcpu, why: str) -> int:
        t0, perf = cpu.host.env.now_ps, self.vcpu.perf
        cycles = self.vcpu.kvm_costs.mediated_switch_cycles
        cycles += perf.load_guest_context(cpu, self)
        tally = switch.MsrTally(cpu, self.traffic["load"])
        with cpu.hw.pmu.batch():  # no time passes: what counts is recomputed once
            switch.load(self, tally)
        self.loaded_on = cpu
        self.used |= self._enabled_mask()
        cycles += tally.cycles
        if self.lbr is not None:
            cycles += self.lbr.load(cpu, why)
        self._trace(cpu, t0, "guest", cycles, why)
        return cycles

    def at_exit(self, cpu: Pcpu, point: str) -> Gen:
        """Put at the switch point: every exit (vm-entry), leaving the fastpath loop
        (run-loop), or (vcpu-load) only when host events wait and preemption is by IPI."""
        if self.loaded_on is not cpu:
            return
        sp = self.opts.switch_point
        if (sp == "vm-entry" and point == "vm-exit") or (sp == "run-loop"
                                                         and point == "loop-exit") \
                or (sp == "vcpu-load" and point == "loop-exit" and self._preempts()
                    and self.vcpu.perf.host_events_want(cpu)):
            yield from cpu.kernel_work(self._put_now(cpu, sp), "kvm mediated pmu put")

    def lvtpc_written(self, cpu: Pcpu) -> int:
        """With the context held across exits (vcpu-load) the hardware LVTPC follows the
        guest's MASK bit at once; otherwise the next load copies it."""
        if self.loaded_on is not cpu:
            return 0
        tally = switch.MsrTally(cpu, self.traffic["load"])
        tally.wr(msrs.X2APIC_LVTPC, switch.LVTPC_GUEST | (self.vcpu.lvtpc & 1 << msrs.LVT_MASKED))
        return tally.cycles

    def _preempts(self) -> bool:
        return self.opts.host_preemption == "ipi"

    def _put_now(self, cpu: Pcpu, why: str) -> int:
        t0, perf = cpu.host.env.now_ps, self.vcpu.perf
        tally = switch.MsrTally(cpu, self.traffic["put"])
        with cpu.hw.pmu.batch():
            switch.put(self, tally)
        self.loaded_on = None
        cycles = self.vcpu.kvm_costs.mediated_switch_cycles + tally.cycles
        if self.lbr is not None:
            cycles += self.lbr.put(cpu, why)
        cycles += perf.put_guest_context(cpu)
        left = switch.left_enabled(self, x86_cpu(cpu.hw).x86_pmu)
        perf.note_guest_selectors(cpu, self.vcpu.vm_name, self.vcpu.index, left)
        self._trace(cpu, t0, "host", cycles, why)
        return cycles

    def _trace(self, cpu: Pcpu, t0: int, state: str, cycles: int, why: str) -> None:
        cpu.host.trace.emit(PmuContext(t0, cpu.index, state, self.vcpu.vm_name,
                                       self.vcpu.index, cpu.host.cycles_ps(cycles), why))

    def sched_in(self, cpu: Pcpu) -> int:
        """vcpu_load: the context is loaded at the next entry."""
        return 0

    def sched_out(self, cpu: Pcpu) -> int:
        """vcpu_put: a loaded context leaves with the thread (every switch point)."""
        return self._put_now(cpu, "sched-out") if self.loaded_on is cpu else 0

    # -- perf's view of the loaded context (GuestContext) ---------------------------------
    def vm_entry(self, cpu: Pcpu) -> None:
        """What VM-entry switches by itself (Intel: the guest GLOBAL_CTRL from the VMCS)."""
        self.vendor.vm_entry(self, cpu)

    def vm_exit(self, cpu: Pcpu) -> None:
        """What VM-exit switches by itself (Intel: saves the guest GLOBAL_CTRL, loads 0)."""
        self.vendor.vm_exit(self, cpu)

    def host_event_added(self, cpu: Pcpu) -> None:
        """A host exclude_guest event wants this CPU: with ``ipi`` the guest is switched out
        at once (seed 000's "hard requirement": Sean Christopherson in "[RFC PATCH 23/41] KVM:
        x86/pmu: Implement the save/restore of PMU state for Intel CPU", 26 and 29 Apr 2024); with
        ``deferred`` it waits for the next switch point."""
        if not self._preempts() or self._ipi_pending:
            return
        self._ipi_pending = True

        def preempt(target: Pcpu) -> int:
            self._ipi_pending = False
            return self._put_now(target, "ipi") if self.loaded_on is target else 0
        cpu.host.send_ipi(cpu.index, preempt)
