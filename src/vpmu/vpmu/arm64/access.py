"""How an arm64 guest reaches its vPMU, and the arm64 vCPU a design sees.

An arm64 design's per-vCPU state is an ``ArmVcpuPmu``: the neutral lifecycle
(``vpmu.vpmu.lifecycle``) plus the guest access of ``ArmGuestAccess``: every PMU system
register access traps (MDCR_EL2.TPM / TPMCR, set by ``kvm_arm_setup_mdcr_el2``) and reaches
the design by register name; the overflow interrupt leaves as a level on the vGIC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from vpmu.arch.arm64.caps import ArmPmuCaps
from vpmu.vpmu.lifecycle import Gen, VcpuBase, VcpuLifecycle

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu

KVM_REQ_IRQ_PENDING: Final = "KVM_REQ_IRQ_PENDING"
"""kvm_make_request(KVM_REQ_IRQ_PENDING) + kick: the overflow handler found an interrupt to
raise; the vCPU re-enters, and ``kvm_pmu_flush_hwstate`` pushes the level."""


class ArmVcpuHandle(VcpuBase, Protocol):
    """An arm64 vCPU as a design sees it."""

    caps: ArmPmuCaps
    """The VM's guest PMU as the boot cluster's PMU gives it (the vPMU recomputes it from
    the VM's host PMU at the vCPU's init)."""
    pin: int | None
    """The CPU the vCPU thread is pinned to, if any."""

    def vgic_inject_irq(self, level: bool) -> None:
        """kvm_vgic_inject_irq(kvm, vcpu, irq_num, level, owner): drive the PMU's PPI."""
        ...


class ArmGuestAccess(Protocol):
    """How an arm64 guest reaches its vPMU: trapped MRS / MSR of PMU system registers, and
    the interrupt state pushed at entry and exit."""

    def access_sys_reg(self, cpu: Pcpu, name: str, value: int | None, el: int) -> Gen:
        """A trapped MRS (``value`` None: the register's value) or MSR (None) at ``el``, or
        Fault.UNDEF."""
        ...

    def traps(self, name: str) -> bool:
        """Whether a guest access to PMU register ``name`` exits now (else the guest's MRS /
        MSR reaches the hardware: a partitioned PMU's loaded counters)."""
        ...

    def flush_hwstate(self) -> None:
        """kvm_pmu_flush_hwstate, before entry: push a changed interrupt level."""
        ...

    def vcpu_init(self, cpu: int) -> None:
        """KVM_ARM_VCPU_INIT on ``cpu``: the VM's host PMU is chosen if it has none; then
        the VMM's PMU attributes (a failure is ``setup_error``)."""
        ...

    @property
    def setup_error(self) -> object | None:
        """The VMM's failed PMU attribute (``vmm.AttrRefused``), or None."""
        ...

    def first_run(self) -> object | None:
        """kvm_arm_pmu_v3_enable at the first KVM_RUN: None, or the errno."""
        ...

    def vcpu_load(self, cpu: int) -> bool:
        """kvm_arch_vcpu_load on ``cpu``: True if the CPU is outside the VM's supported
        CPUs (ON_UNSUPPORTED_CPU)."""
        ...

    def counting_pmu_name(self, cpu: int) -> tuple[str, bool]:
        """The host PMU the vCPU's counters count on at ``cpu`` ("" before one is chosen)
        and whether one does (for the trace's ``VcpuLoad``)."""
        ...

    def peek_cycle_counter(self) -> int:
        """PMCCNTR_EL0 as the guest would read it now, without KVM's cost (a trace's view);
        -1 while the cycle counter has no perf event."""
        ...


class ArmVcpuPmu(VcpuLifecycle, ArmGuestAccess, Protocol):
    """What an arm64 vCPU holds of its design: the lifecycle and the guest access."""
