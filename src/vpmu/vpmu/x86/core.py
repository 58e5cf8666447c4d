"""``struct kvm_pmu`` and the common code of arch/x86/kvm/pmu.c, shared by every x86 vPMU
design: the counters and the global registers KVM keeps for the guest, the MSR and RDPMC
decoding (from the guest PMU's register declarations and the vendor ops), the reprogram
bitmap behind KVM_REQ_PMU, and an overflow's status bit and KVM_REQ_PMI.

A design subclasses ``X86VpmuCore`` and supplies where a counter's value lives
(``read_counter``/``write_counter``: a perf event, or the hardware while a guest context is
loaded). The write hooks default to what upstream's common code does; a design overrides one
only where it differs, and says so there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Generic, TypeVar

from mypy_extensions import mypyc_attr

from vpmu.arch.faults import Fault
from vpmu.arch.regs import RegisterSpec, Role, apply_write, by_address, read_value
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, X86PmuCaps
from vpmu.vpmu.lifecycle import KVM_REQ_PMI, KVM_REQ_PMU, Gen
from vpmu.vpmu.x86.lbr import VcpuLbr
from vpmu.vpmu.x86.ops import X86PmuOps, ops_for
from vpmu.vpmu.x86.pmc import FIXED_EN, FIXED_OS, FIXED_USR, X86Pmc, fixed_ctrl_field

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.vpmu.x86.access import X86VcpuHandle

PmcT = TypeVar("PmcT", bound=X86Pmc)


@mypyc_attr(allow_interpreted_subclasses=True)  # MediatedVcpu is not compiled
class X86VpmuCore(ABC, Generic[PmcT]):
    """One vCPU's ``struct kvm_pmu``: what KVM keeps whatever backs the counters."""

    def __init__(self, vcpu: X86VcpuHandle, caps: X86PmuCaps,
                 vendor: X86PmuOps | None = None, *, lbr_save_point: str = "thread-switch",
                 lbr_ownership: str = "first-come"
                 ) -> None:
        self.vcpu = vcpu
        self.caps = caps
        self.vendor = ops_for(caps) if vendor is None else vendor
        """KVM's vendor ops (kvm_pmu_ops; a design may extend them)."""
        self.specs: dict[int, RegisterSpec] = by_address(msrs.pmu_msrs(caps))
        """The guest PMU's MSRs by address (kvm_pmu_is_valid_msr, the #GP rules)."""
        self.gp: list[PmcT] = [self.new_pmc(i, caps.gp_width) for i in range(caps.n_gp)]
        self.fixed: list[PmcT] = [self.new_pmc(FIXED_IDX_BASE + i, caps.fixed_width)
                                  for i in self.vendor.fixed_indices(caps)]
        self._by_idx: dict[int, PmcT] = {p.idx: p for p in (*self.gp, *self.fixed)}
        self.counter_mask = sum(1 << idx for idx in self._by_idx)
        """all_valid_pmc_idx: a bit per counter the guest has."""
        self.global_ctrl = caps.gp_mask if caps.has_global_ctrl else 0
        self.global_status = 0
        self.fixed_ctr_ctrl = 0
        self.reprogram_pmi = 0
        """Counters to reprogram at the next KVM_REQ_PMU, by global index."""
        self.pmc_in_use = 0
        """Counters the guest touched since the last kvm_pmu_cleanup (a perf-backed design
        releases the events of the others)."""
        self.regs: dict[str, int] = {}
        """Registers KVM only stores (DEBUGCTL without guest LBR, PERF_CAPABILITIES)."""
        self.lbr: VcpuLbr | None = VcpuLbr(vcpu, caps, lbr_save_point, lbr_ownership) \
            if caps.lbr_format else None
        """KVM's guest LBR, when the guest's PERF_CAPABILITIES has an LBR format."""

    @abstractmethod
    def new_pmc(self, idx: int, width: int) -> PmcT:
        """The design's ``struct kvm_pmc`` for global index ``idx`` (kvm_pmu_init)."""

    # -- lookup (kvm_pmc_idx_to_pmc, kvm_for_each_pmc) -------------------------------------
    def pmc(self, idx: int) -> PmcT | None:
        """The counter with global index ``idx``."""
        return self._by_idx.get(idx)

    def all_pmcs(self) -> list[PmcT]:
        """Every counter, GP first."""
        return [*self.gp, *self.fixed]

    def fixed_field(self, pmc: X86Pmc) -> int:
        """The counter's 4-bit field of the guest's FIXED_CTR_CTRL."""
        return fixed_ctrl_field(self.fixed_ctr_ctrl, pmc)

    def request_reprogram(self, bits: int) -> None:
        """kvm_pmu_request_counter_reprogram: mark the counters, reprogram before entry."""
        self.reprogram_pmi |= bits
        self.vcpu.request(KVM_REQ_PMU)

    def reprogram_counters(self, diff: int) -> None:
        """reprogram_counters: the counters whose GLOBAL_CTRL bit changed."""
        for pmc in self.all_pmcs():
            if diff >> pmc.idx & 1:
                self.request_reprogram(1 << pmc.idx)

    # -- enablement ------------------------------------------------------------------------
    def globally_enabled(self, pmc: X86Pmc) -> bool:
        """pmc_is_globally_enabled."""
        return not self.caps.has_global_ctrl or bool(self.global_ctrl >> pmc.idx & 1)

    def locally_enabled(self, pmc: X86Pmc) -> bool:
        """pmc_speculative_in_use."""
        if pmc.is_fixed:
            return bool(self.fixed_field(pmc) & FIXED_EN)
        return bool(pmc.eventsel & msrs.EVTSEL_EN)

    # -- MSRs ------------------------------------------------------------------------------
    def is_valid_msr(self, addr: int) -> bool:
        """kvm_pmu_is_valid_msr: declared for the guest's PMU shape."""
        return addr in self.specs

    def lbr_intercepts(self, addr: int) -> bool:
        """Whether a PMU MSR access exits as far as guest LBR is concerned: an LBR MSR is
        passed through while the guest LBR event is active (every other one: True)."""
        return self.lbr is None or addr not in self.lbr.msrs or self.lbr.intercepts(addr)

    def get_msr(self, cpu: Pcpu, addr: int) -> Gen:
        """kvm_pmu_get_msr (vmx_get_msr for DEBUGCTL and the LBR MSRs with guest LBR)."""
        lbr = self.lbr
        if lbr is not None and addr in lbr.msrs:
            return (yield from lbr.get_msr(cpu, addr))
        if lbr is not None and addr == msrs.IA32_DEBUGCTL:
            return lbr.get_debugctl()
        spec = self.specs.get(addr)
        if spec is None:
            return Fault.GP
        if spec.role is Role.COUNTER:
            return (yield from self.read_counter(cpu, self._counter(spec)))
        if spec.role is Role.SELECTOR:
            return self.gp[spec.index].eventsel
        return read_value(spec, self._stored(spec))

    def _stored(self, spec: RegisterSpec) -> int:
        """A plain register's storage as KVM reads it (the global registers through the
        design's hooks: a loaded guest context may hold them)."""
        storage = spec.storage
        if storage == "GLOBAL_CTRL":
            return self.read_global_ctrl()
        if storage == "GLOBAL_STATUS":
            return self.read_global_status()
        if storage == "FIXED_CTR_CTRL":
            return self.fixed_ctr_ctrl
        return self.regs.get(storage, spec.reset)

    def _counter(self, spec: RegisterSpec) -> PmcT:
        pmc = self.pmc(spec.index)
        assert pmc is not None, f"{spec.name}: a declared counter without a pmc"
        return pmc

    def set_msr(self, cpu: Pcpu, addr: int, value: int) -> Gen:
        """kvm_pmu_set_msr: the vendor's write (AMD drops reserved selector bits), the
        declared checks (#GP), then the register's write hook (vmx_set_msr for DEBUGCTL and
        the LBR MSRs with guest LBR)."""
        lbr = self.lbr
        if lbr is not None and addr in lbr.msrs:
            return (yield from lbr.set_msr(cpu, addr, value))
        if lbr is not None and addr == msrs.IA32_DEBUGCTL:
            return (yield from lbr.set_debugctl(cpu, value))
        spec = self.specs.get(addr)
        if spec is None:
            return Fault.GP
        value = self.vendor.set_msr_value(spec, value)
        old = self._stored(spec) if spec.role is Role.REG else 0
        result = apply_write(spec, old, value)
        if result.fault:
            return Fault.GP
        # Upstream marks pmc_in_use before the vendor's checks, so a write that #GPs marks too.
        store = result.store
        if spec.role is Role.COUNTER:
            pmc = self._counter(spec)
            assert store is not None
            self.pmc_in_use |= 1 << pmc.idx
            yield from self.write_counter(cpu, pmc, store)
        elif spec.role is Role.SELECTOR:
            pmc = self.gp[spec.index]
            assert store is not None
            self.pmc_in_use |= 1 << pmc.idx
            self.write_eventsel(pmc, store)
        elif spec.storage == "GLOBAL_CTRL":
            if store is not None:
                self.write_global_ctrl(store)
        elif spec.storage == "FIXED_CTR_CTRL":
            if store is not None:
                self.write_fixed_ctr_ctrl(store)
        elif spec.target == "GLOBAL_STATUS":
            self.write_global_status(result.clear, result.set)
        elif store is not None:
            self.regs[spec.storage] = store
        return None

    # -- RDPMC -----------------------------------------------------------------------------
    def rdpmc(self, cpu: Pcpu, ecx: int) -> Gen:
        """kvm_pmu_rdpmc (the CR4.PCE/CPL check is done by the caller: it precedes the exit)."""
        idx = self.vendor.rdpmc_ecx_to_pmc(ecx)
        pmc = None if idx is None else self.pmc(idx)
        if pmc is None:
            return Fault.GP
        return (yield from self.read_counter(cpu, pmc))

    # -- hooks: where the counters live ----------------------------------------------------
    @abstractmethod
    def read_counter(self, cpu: Pcpu, pmc: PmcT) -> Gen:
        """pmc_read_counter: the guest-visible value of ``pmc`` (a kernel op)."""

    @abstractmethod
    def write_counter(self, cpu: Pcpu, pmc: PmcT, value: int) -> Gen:
        """pmc_write_counter: make the guest read ``value`` from ``pmc`` from now on."""

    # -- hooks: register writes (defaults: upstream's common code) -------------------------
    def write_eventsel(self, pmc: PmcT, value: int) -> None:
        """intel/amd_pmu_set_msr on an event selector: reprogram only if it changed."""
        if value != pmc.eventsel:
            pmc.eventsel = value
            self.request_reprogram(1 << pmc.idx)

    def write_fixed_ctr_ctrl(self, value: int) -> None:
        """reprogram_fixed_counters: reprogram the counters whose 4-bit field changed."""
        if value == self.fixed_ctr_ctrl:
            return
        diff, self.fixed_ctr_ctrl = value ^ self.fixed_ctr_ctrl, value
        for pmc in self.fixed:
            if fixed_ctrl_field(diff, pmc):
                self.pmc_in_use |= 1 << pmc.idx
                self.request_reprogram(1 << pmc.idx)

    def write_global_ctrl(self, value: int) -> None:
        """kvm_pmu_set_msr(GLOBAL_CTRL): reprogram the counters whose enable changed."""
        if value != self.global_ctrl:
            diff, self.global_ctrl = value ^ self.global_ctrl, value
            self.reprogram_counters(diff)

    def read_global_ctrl(self) -> int:
        """GLOBAL_CTRL as the guest reads it."""
        return self.global_ctrl

    def read_global_status(self) -> int:
        """GLOBAL_STATUS as the guest reads it."""
        return self.global_status

    def write_global_status(self, clear: int, set_: int) -> None:
        """GLOBAL_STATUS after a write-1-to-clear (OVF_CTRL, STATUS_CLR) or write-1-to-set
        (STATUS_SET) register, or an overflow."""
        self.global_status = (self.global_status & ~clear) | set_

    # -- KVM_REQ_PMU -----------------------------------------------------------------------
    def handle_event(self, cpu: Pcpu) -> Gen:
        """kvm_pmu_handle_event: take the reprogram bitmap and reprogram what it names."""
        bitmap, self.reprogram_pmi = self.reprogram_pmi, 0
        yield from self.reprogram_pmcs(cpu, [p for p in self.all_pmcs() if bitmap >> p.idx & 1])

    @abstractmethod
    def reprogram_pmcs(self, cpu: Pcpu, pmcs: list[PmcT]) -> Gen:
        """reprogram_counter for each of ``pmcs`` (GP first, as kvm_for_each_pmc), with
        KVM's cost, then what the design does after the loop."""

    # -- emulated instructions ------------------------------------------------------------
    def instruction_retired(self) -> None:
        """kvm_pmu_instruction_retired -> kvm_pmu_trigger_event: the instruction KVM skipped
        counts on every counter of instructions retired whose ring matches the guest's CPL
        (cpl_is_matched)."""
        ring = FIXED_OS if self.vcpu.cpl == 0 else FIXED_USR
        for pmc, field in self.counting_instructions():
            if field & ring:
                self.incr_counter(pmc, field)

    @abstractmethod
    def counting_instructions(self) -> Iterable[tuple[PmcT, int]]:
        """The counters counting instructions retired that may count now, each with its
        ring and PMI bits as a fixed counter's field (``ring_field``)."""

    @abstractmethod
    def incr_counter(self, pmc: PmcT, field: int) -> None:
        """kvm_pmu_incr_counter: one more instruction on ``pmc`` (``field`` as above)."""

    # -- overflow and PMI ------------------------------------------------------------------
    def overflow(self, pmc: PmcT, intr: bool) -> None:
        """__kvm_perf_overflow: set the status bit, request a PMI if the counter has INT."""
        self.write_global_status(0, 1 << pmc.idx)
        if intr:
            self.vcpu.request(KVM_REQ_PMI)

    def deliver_pmi(self, cpu: Pcpu) -> Gen:
        """kvm_pmu_deliver_pmi: the vendor's deliver_pmi (Intel: the legacy LBR freeze),
        then through the virtual LVTPC (which masks itself on Intel)."""
        yield from ()
        if self.lbr is not None:
            self.lbr.deliver_pmi()
        return self.vcpu.deliver_lvtpc()
