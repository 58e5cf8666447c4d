"""How an x86 guest reaches its vPMU, and the x86 vCPU a design sees.

An x86 design's per-vCPU state is an ``X86VcpuPmu``: the neutral lifecycle
(``vpmu.vpmu.lifecycle``) plus the guest-access ops of ``X86GuestAccess``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from vpmu.arch.x86.caps import X86PmuCaps
from vpmu.hw.x86.lbr import Vmcs
from vpmu.vpmu.lifecycle import Gen, VcpuBase, VcpuLifecycle

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu


class X86VcpuHandle(VcpuBase, Protocol):
    """An x86 vCPU as a design sees it."""

    caps: X86PmuCaps
    """The PMU the guest enumerates (after the design's caps and the scenario's shape)."""
    lvtpc: int
    """The guest's virtual LVTPC."""
    vmcs: Vmcs
    """The vCPU's VMCS (the DEBUGCTL the hardware switches at entry and exit)."""

    def deliver_lvtpc(self) -> bool:
        """kvm_apic_local_deliver(APIC_LVTPC): inject per the virtual LVTPC unless it is
        masked (and mask it, for an Intel guest); True if injected."""
        ...


class X86GuestAccess(Protocol):
    """How an x86 guest reaches its vPMU: MSRs (with the MSR bitmap's intercepts), RDPMC and
    the virtual LVTPC (``kvm_pmu_ops``' get/set_msr, rdpmc_ecx_to_pmc, is_valid_msr)."""

    def is_valid_msr(self, addr: int) -> bool:
        """kvm_pmu_is_valid_msr: ``addr`` is a PMU MSR of this vCPU's PMU."""
        ...

    def intercepts_msr(self, addr: int) -> bool:
        """A guest RDMSR/WRMSR of ``addr`` exits (MSR bitmap)."""
        ...

    def intercepts_rdpmc(self) -> bool:
        """Guest RDPMC exits."""
        ...

    def get_msr(self, cpu: Pcpu, addr: int) -> Gen:
        """kvm_pmu_get_msr: the value, or Fault.GP (an MSR the vPMU does not have)."""
        ...

    def set_msr(self, cpu: Pcpu, addr: int, value: int) -> Gen:
        """kvm_pmu_set_msr: None, or Fault.GP."""
        ...

    def rdpmc(self, cpu: Pcpu, ecx: int) -> Gen:
        """kvm_pmu_rdpmc: the value, or Fault.GP."""
        ...

    def lvtpc_written(self, cpu: Pcpu) -> int:
        """The guest wrote its virtual LVTPC (a loaded context may need the hardware's);
        kernel cycles spent."""
        ...


class X86VcpuPmu(VcpuLifecycle, X86GuestAccess, Protocol):
    """An x86 design's per-vCPU state (``struct kvm_pmu``)."""
