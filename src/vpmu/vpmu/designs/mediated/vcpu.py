"""``struct kvm_pmu`` of the mediated vPMU: the guest owns the hardware counters while its
context is loaded (reference/kvm_x86_vpmu.md 2.3-2.5, Linux 7.0).

KVM keeps the guest's values here while the context is put and the hardware holds them while
it is loaded. Selectors and FIXED_CTR_CTRL always exit, so KVM sees every enable and builds
the hardware copies (``eventsel_hw``, ``fixed_ctr_ctrl_hw``) with the event filter's denied
counters' enable bits masked (and, on AMD, GuestOnly set). Counters, the global registers
(when the guest has every host counter) and RDPMC (same condition) do not exit.

Where the switch happens is the ``switch_point`` option; what a host event opened while the
guest owns the PMU does is ``host_preemption``; what put zeroes is ``clear_on_put``
(``vpmu.vpmu.designs.mediated`` documents each and what upstream does).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vpmu.arch.faults import Fault
from vpmu.arch.regs import RegisterSpec, Role, apply_write, by_address, read_value
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, X86PmuCaps
from vpmu.host.perf.x86 import sel_addr
from vpmu.hw.x86.cpu import x86_cpu
from vpmu.trace import PmuContext
from vpmu.vpmu.design import KVM_REQ_PMI, KVM_REQ_PMU, Gen, VcpuHandle
from vpmu.vpmu.designs.mediated import switch
from vpmu.vpmu.x86.ops import INSTRUCTIONS_RETIRED, ops_for

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu

INTEL_FIXED_INSTRUCTIONS = FIXED_IDX_BASE
"""Fixed counter 0 counts INST_RETIRED.ANY."""


@dataclass(eq=False)
class MediatedPmc:
    """One guest counter: its saved value and (GP) the guest's and the hardware's selector."""

    idx: int
    width: int
    counter: int = 0
    eventsel: int = 0
    eventsel_hw: int = 0


@dataclass(frozen=True, slots=True)
class MediatedOptions:
    """The design's options, checked (see ``vpmu.vpmu.designs.mediated``)."""

    switch_point: str
    host_preemption: str
    clear_on_put: str
    elide_writes: bool


class MediatedVcpu:
    """One vCPU's mediated PMU."""

    def __init__(self, vcpu: VcpuHandle, caps: X86PmuCaps, host: X86PmuCaps,
                 options: MediatedOptions) -> None:
        self.vcpu, self.caps, self.opts = vcpu, caps, options
        self.vendor = ops_for(caps)
        """KVM's vendor ops (kvm_pmu_ops)."""
        self.clear_on_put, self.elide_writes = options.clear_on_put, options.elide_writes
        self.specs: dict[int, RegisterSpec] = by_address(msrs.pmu_msrs(caps))
        self.gp = [MediatedPmc(i, caps.gp_width) for i in range(caps.n_gp)]
        self.fixed = [MediatedPmc(FIXED_IDX_BASE + i, caps.fixed_width)
                      for i in self.vendor.fixed_indices(caps)]
        self.counter_mask = sum(1 << p.idx for p in (*self.gp, *self.fixed))
        self.global_ctrl = caps.gp_mask if caps.has_global_ctrl else 0
        self.global_status = 0
        self.fixed_ctr_ctrl = self.fixed_ctr_ctrl_hw = 0
        self.regs: dict[str, int] = {}
        self.reprogram = 0
        self.used = 0
        """Counters whose selector the guest has ever enabled (guest-used): KVM can only
        see the selectors, which exit; a counter written but never enabled is not in it."""
        self.loaded_on: Pcpu | None = None
        self._ipi_pending = False
        self.traffic: dict[str, Counter[str]] = {"load": Counter(), "put": Counter()}
        """MSR traffic of every load and put so far, by access and kernel MSR name."""
        same = (caps.n_gp == host.n_gp and len(self.fixed) == (host.n_fixed if host.is_intel
                                                                  else 0))
        self.global_passthrough = same and caps.has_global_ctrl
        self.rdpmc_passthrough = same and caps.gp_width == host.gp_width

    def __repr__(self) -> str:
        return f"MediatedVcpu(vcpu={self.vcpu.index}, loaded_on={self.loaded_on!r})"

    # -- lookup ----------------------------------------------------------------------------
    def pmc(self, idx: int) -> MediatedPmc | None:
        """The counter with global index ``idx``."""
        pool = self.fixed if idx >= FIXED_IDX_BASE else self.gp
        return next((p for p in pool if p.idx == idx), None)

    def _hw(self) -> Any:
        """The hardware PMU holding the guest's state, or None while it is put."""
        return self.loaded_on.hw.pmu if self.loaded_on is not None else None

    def counter_value(self, pmc: MediatedPmc) -> int:
        """The guest's counter: in the hardware while loaded, else the saved value."""
        hw = self._hw()
        if hw is None:
            return pmc.counter
        hw.sync()
        value: int = hw.counters[pmc.idx].value
        return value

    def _set_counter(self, pmc: MediatedPmc, value: int) -> None:
        value &= (1 << pmc.width) - 1
        hw = self._hw()
        if hw is None:
            pmc.counter = value
            return
        hw.sync()
        counter = hw.counters[pmc.idx]
        counter.value = value
        counter.origin = self.vcpu.label
        hw.reconfigure()

    def _status(self) -> int:
        hw = self._hw()
        return int(hw.rdmsr(self._status_addr())) & self.counter_mask if hw else \
            self.global_status

    def _status_addr(self) -> int:
        return self.vendor.GLOBAL_STATUS

    def hw_global_ctrl(self) -> int:
        """The hardware global control while the guest runs: the guest's, or every guest
        counter for a guest without one (v1, AMD without PerfMonV2)."""
        if not self.caps.has_global_ctrl:
            return self.counter_mask
        return self.global_ctrl & self.counter_mask

    def _global_ctrl(self) -> int:
        """Intel saves GLOBAL_CTRL at every VM-exit; AMD's stays in the hardware."""
        if not self.caps.has_global_ctrl:
            return self.counter_mask
        hw = self._hw()
        if hw is not None and not self.caps.is_intel:
            return int(hw.regs.get("GLOBAL_CTRL", 0))
        return self.global_ctrl

    # -- intercepts (2.4) -------------------------------------------------------------------
    def is_valid_msr(self, addr: int) -> bool:
        """kvm_pmu_is_valid_msr: declared for the guest's PMU shape."""
        return addr in self.specs

    def intercepts_msr(self, addr: int) -> bool:
        """vmx/svm_recalc_pmu_msr_intercepts: the guest's counters pass through; selectors and
        FIXED_CTR_CTRL always exit; the global registers pass through iff the guest has
        exactly the host's counters; everything else exits."""
        spec = self.specs.get(addr)
        if spec is None:
            return True
        if spec.role is Role.COUNTER:
            return False
        if spec.storage in ("GLOBAL_CTRL", "GLOBAL_STATUS") or spec.target == "GLOBAL_STATUS":
            return not self.global_passthrough
        return True

    def intercepts_rdpmc(self) -> bool:
        """RDPMC exits unless the guest's counters equal the host's (no VMware backdoor)."""
        return not self.rdpmc_passthrough

    # -- intercepted MSRs ------------------------------------------------------------------
    def get_msr(self, cpu: Pcpu, addr: int) -> Gen:
        """kvm_pmu_get_msr for the MSRs that exit."""
        yield from ()
        spec = self.specs.get(addr)
        if spec is None:
            return Fault.GP
        if spec.role is Role.COUNTER:
            pmc = self.pmc(spec.index)
            assert pmc is not None
            return self.counter_value(pmc)
        if spec.role is Role.SELECTOR:
            return self.gp[spec.index].eventsel
        return read_value(spec, self._stored(spec.storage, spec))

    def _stored(self, storage: str, spec: RegisterSpec) -> int:
        if storage == "GLOBAL_CTRL":
            return self._global_ctrl()
        if storage == "GLOBAL_STATUS":
            return self._status()
        if storage == "FIXED_CTR_CTRL":
            return self.fixed_ctr_ctrl
        return self.regs.get(storage, spec.reset)

    def set_msr(self, cpu: Pcpu, addr: int, value: int) -> Gen:
        """kvm_pmu_set_msr: reserved bits #GP (AMD selectors drop them), then store; selector
        changes are reprogrammed (the filter applied) before the next entry."""
        yield from ()
        spec = self.specs.get(addr)
        if spec is None:
            return Fault.GP
        st, role = spec.storage, spec.role
        value = self.vendor.set_msr_value(spec, value)
        plain = role is Role.REG
        result = apply_write(spec, self._stored(st, spec) if plain else 0, value)
        if result.fault:
            return Fault.GP
        if role is Role.COUNTER:
            pmc = self.pmc(spec.index)
            assert pmc is not None and result.store is not None
            self._set_counter(pmc, result.store)
        elif role is Role.SELECTOR:
            self.gp[spec.index].eventsel = value if result.store is None else result.store
            self._request(1 << spec.index)
        elif st == "FIXED_CTR_CTRL" and result.store is not None:
            self.fixed_ctr_ctrl = result.store
            self._request(sum(1 << p.idx for p in self.fixed))
        elif st == "GLOBAL_CTRL" and result.store is not None:
            self._write_global_ctrl(result.store)
        elif spec.target == "GLOBAL_STATUS":
            self._write_status(result.clear, result.set)
        elif result.store is not None:
            self.regs[st] = result.store
        return None

    def _write_global_ctrl(self, value: int) -> None:
        self.global_ctrl = value
        hw = self._hw()
        if hw is not None and not self.caps.is_intel:
            hw.wrmsr(msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL, value)

    def _write_status(self, clear: int, set_: int) -> None:
        hw = self._hw()
        if hw is None:
            self.global_status = (self.global_status & ~clear) | set_
            return
        hw.sync()
        hw.regs["GLOBAL_STATUS"] = (hw.regs["GLOBAL_STATUS"] & ~clear) | set_

    def _request(self, bits: int) -> None:
        """kvm_pmu_request_counter_reprogram."""
        self.reprogram |= bits
        self.vcpu.request(KVM_REQ_PMU)

    def rdpmc(self, cpu: Pcpu, ecx: int) -> Gen:
        """kvm_pmu_rdpmc when RDPMC exits."""
        yield from ()
        idx = self.vendor.rdpmc_ecx_to_pmc(ecx)
        pmc = None if idx is None else self.pmc(idx)
        return Fault.GP if pmc is None else self.counter_value(pmc)

    # -- KVM_REQ_PMU: the hardware copies and the filter (2.4) -----------------------------
    def handle_event(self, cpu: Pcpu) -> Gen:
        """reprogram_counter on a mediated PMU: refresh the hardware selectors only."""
        bits, self.reprogram = self.reprogram, 0
        n = bin(bits & self.counter_mask).count("1")
        if n:
            yield from cpu.kernel_work(n * self.vcpu.kvm_costs.pmc_reprogram_cycles,
                                       "kvm reprogram_counter")
        for pmc in self.gp:
            if bits >> pmc.idx & 1:
                pmc.eventsel_hw = self._eventsel_hw(pmc)
                self._refresh_hw(cpu, sel_addr(self.vcpu.host.preset.caps, pmc.idx),
                                 pmc.eventsel_hw)
        if any(bits >> p.idx & 1 for p in self.fixed):
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
        if not self.caps.is_intel:
            sel = (sel | msrs.AMD_EVTSEL_GUEST_ONLY) & ~msrs.AMD_EVTSEL_HOST_ONLY
        return sel

    def _fixed_ctrl_hw(self) -> int:
        """FIXED_CTR_CTRL with the 4-bit field of every denied fixed counter cleared."""
        value, flt = self.fixed_ctr_ctrl, self.vcpu.event_filter
        for pmc in self.fixed:
            if flt is not None and not flt.allows(pmc.idx):
                value &= ~(0xF << 4 * (pmc.idx - FIXED_IDX_BASE))
        return value

    def _enabled_mask(self) -> int:
        mask = sum(1 << p.idx for p in self.gp if p.eventsel_hw & msrs.EVTSEL_EN)
        for pmc in self.fixed:
            if self.fixed_ctr_ctrl_hw >> 4 * (pmc.idx - FIXED_IDX_BASE) & 0x3:
                mask |= 1 << pmc.idx
        return mask

    # -- PMIs and emulated instructions (2.5) ----------------------------------------------
    def deliver_pmi(self, cpu: Pcpu) -> Gen:
        """KVM_REQ_PMI: through the virtual LVTPC."""
        yield from ()
        return self.vcpu.deliver_lvtpc()

    def _counting_instructions(self) -> list[tuple[MediatedPmc, int]]:
        """(counter, its ring bits: 1 = OS, 2 = USR, 8 = PMI) for every counter that counts
        instructions retired and is globally enabled."""
        ctrl, out = self._global_ctrl(), []
        for pmc in self.gp:
            sel = pmc.eventsel_hw
            if sel & msrs.EVTSEL_EN and sel & 0xF_0000_FFFF == INSTRUCTIONS_RETIRED \
                    and (ctrl >> pmc.idx & 1 or not self.caps.has_global_ctrl):
                rings = (1 if sel & msrs.EVTSEL_OS else 0) | (2 if sel & msrs.EVTSEL_USR else 0)
                out.append((pmc, rings | (8 if sel & msrs.EVTSEL_INT else 0)))
        for pmc in self.fixed:
            field = self.fixed_ctr_ctrl_hw >> 4 * (pmc.idx - FIXED_IDX_BASE) & 0xF
            if pmc.idx == INTEL_FIXED_INSTRUCTIONS and field & 3 and ctrl >> pmc.idx & 1:
                out.append((pmc, field))
        return out

    def instruction_retired(self) -> None:
        """kvm_pmu_instruction_retired: counter + 1 on every instructions counter whose ring
        matches; a wrap sets the status bit and, with PMI enabled, raises KVM_REQ_PMI."""
        ring = 1 if self.vcpu.cpl == 0 else 2
        for pmc, bits in self._counting_instructions():
            if not bits & ring:
                continue
            value = (self.counter_value(pmc) + 1) & ((1 << pmc.width) - 1)
            self._set_counter(pmc, value)
            if value == 0:
                self._write_status(0, 1 << pmc.idx)
                if bits & 8:
                    self.vcpu.request(KVM_REQ_PMI)

    def fastpath_allowed(self) -> bool:
        """kvm_pmu_is_fastpath_emulation_allowed: no instructions counter is enabled."""
        return not self._counting_instructions()

    # -- the context switch (2.3) ----------------------------------------------------------
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
        cycles += perf.put_guest_context(cpu)
        left = switch.left_enabled(self, cpu.host.preset.caps, x86_cpu(cpu.hw).pmu)
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
        """VM-entry loads the guest GLOBAL_CTRL from the VMCS (Intel)."""
        if self.caps.is_intel:
            x86_cpu(cpu.hw).pmu.wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, self.hw_global_ctrl())

    def vm_exit(self, cpu: Pcpu) -> None:
        """VM-exit saves the guest GLOBAL_CTRL and loads the host's 0 (Intel)."""
        if self.caps.is_intel:
            if self.caps.has_global_ctrl:
                self.global_ctrl = x86_cpu(cpu.hw).pmu.regs.get("GLOBAL_CTRL", 0)
            x86_cpu(cpu.hw).pmu.wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)

    def host_event_added(self, cpu: Pcpu) -> None:
        """A host exclude_guest event wants this CPU: with ``ipi`` the guest is switched out
        at once (seed 000's "hard requirement"); with ``deferred`` it waits for the next
        switch point."""
        if not self._preempts() or self._ipi_pending:
            return
        self._ipi_pending = True

        def preempt(target: Pcpu) -> int:
            self._ipi_pending = False
            return self._put_now(target, "ipi") if self.loaded_on is target else 0
        cpu.host.send_ipi(cpu.index, preempt)
