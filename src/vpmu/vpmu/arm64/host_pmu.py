"""The VM's host PMU (``kvm->arch.arm_pmu``): the one registered arm_pmu every vCPU's
perf events are created on, the guest PMU it gives, and the VM-wide PMU configuration the
vCPU attributes set (``attrs.py``).

One function chooses the default (``choose_arm_pmu``, at KVM_ARM_VCPU_INIT); SET_PMU
(``attrs.set_attr``) replaces it and narrows ``supported_cpus``; the proposed
fixed-counters-only PMU opens the cycle counter's event on the PMU of the vCPU's current
CPU (``pmu_for_cpu``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vpmu.arch.arm64.caps import ArmPmuCaps
from vpmu.vpmu.arm64.sysregs import kvm_pmu_caps

if TYPE_CHECKING:
    from vpmu.host.perf.core import PerfSubsystem
    from vpmu.host.perf.event import PmuIdentity
    from vpmu.vpmu.arm64.pmu_filter import FilterBitmap


@dataclass(eq=False)
class KvmArch:
    """What KVM keeps per VM of its PMU (``struct kvm_arch``): the host PMU, once chosen,
    the guest PMU it gives, and the configuration of the PMU attributes."""

    arm_pmu: PmuIdentity | None = None
    guest_caps: ArmPmuCaps | None = None
    """The guest PMU of ``arm_pmu`` before N and the filter (``kvm_pmu_caps``)."""
    host_caps: ArmPmuCaps | None = None
    """``arm_pmu``'s hardware caps (its maximum N)."""
    host_pmuver: int = 0
    """The host's sanitised PMUVer (the lowest of its PMUs): the filter's event space."""
    supported_cpus: frozenset[int] | None = None
    """``kvm->arch.supported_cpus``: None is every CPU (the default PMU does not narrow it);
    SET_PMU makes it the PMU's CPUs."""
    nr_pmu_counters: int | None = None
    """``kvm->arch.nr_pmu_counters`` (PMCR_EL0.N); None before a PMU is set."""
    pmu_filter: FilterBitmap | None = None
    explicit: bool = False
    """KVM_ARCH_FLAG_PMU_V3_EXPLICIT (the proposal): SET_PMU was used."""
    fixed_counters_only: bool = False
    """The proposal's KVM_ARM_VCPU_PMU_V3_FIXED_COUNTERS_ONLY is set."""
    partitioned: bool = False
    """The partitioned PMU series' KVM_ARM_VCPU_PMU_V3_ENABLE_PARTITION is set."""
    max_guest_counters: int = 0
    """With ``partitioned``: the event counters a guest may own (the driver's)."""
    ran_once: bool = False
    """``kvm_vm_has_ran_once``: the configuration is frozen."""
    configured: bool = False
    """The VMM has applied the VM-wide attributes (through the first vCPU)."""
    vcpus: list[Any] = field(default_factory=list)
    """Every vCPU's ``VcpuPmuAttrs`` (the IRQ rule compares them)."""


def default_arm_pmu(perf: PerfSubsystem, cpu: int) -> PmuIdentity:
    """``kvm_arm_set_default_pmu`` (arch/arm64/kvm/pmu-emul.c@v6.16, from ``kvm_setup_vcpu``
    at KVM_ARM_VCPU_INIT since 6.7): the first registered PMU whose CPUs contain the CPU
    running the ioctl. Its supported CPUs are not narrowed: the vCPU may run anywhere, and
    its events count only on that PMU's CPUs."""
    return pmu_for_cpu(perf, cpu)


def pmu_for_cpu(perf: PerfSubsystem, cpu: int) -> PmuIdentity:
    """``kvm_pmu_probe_armpmu(cpu)``: the first registered PMU covering ``cpu``."""
    return next(p for p in perf.pmus if cpu in p.cpus)


def arm_caps(perf: PerfSubsystem, pmu: PmuIdentity) -> ArmPmuCaps:
    """A host PMU's hardware caps (those of its first CPU)."""
    caps = perf.host.cpus[min(pmu.cpus)].preset.caps
    if not isinstance(caps, ArmPmuCaps):
        raise ValueError(f"the arm64 vPMU needs an Arm host PMU, not {pmu.name!r}")
    return caps


def set_arm_pmu(kvm: KvmArch, perf: PerfSubsystem, pmu: PmuIdentity) -> None:
    """``kvm_arm_set_pmu``: the VM's PMU, and N reset to its maximum."""
    caps = arm_caps(perf, pmu)
    kvm.arm_pmu, kvm.host_caps, kvm.guest_caps = pmu, caps, kvm_pmu_caps(caps)
    kvm.nr_pmu_counters = caps.n_counters
    kvm.host_pmuver = min(arm_caps(perf, p).pmuver for p in perf.pmus)


def choose_arm_pmu(kvm: KvmArch, perf: PerfSubsystem, cpu: int) -> None:
    """The VM's PMU at a vCPU's init on ``cpu``: kept if the VM has one (the first vCPU's
    choice holds for the VM), else the default. The guest PMU is that PMU's CPUs' caps as
    KVM narrows them."""
    if kvm.arm_pmu is not None:
        return
    set_arm_pmu(kvm, perf, default_arm_pmu(perf, cpu))
