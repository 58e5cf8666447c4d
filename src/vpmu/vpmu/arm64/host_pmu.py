"""The VM's host PMU (``kvm->arch.arm_pmu``): the one registered arm_pmu every vCPU's
perf events are created on, and the guest PMU it gives.

One function chooses it (``choose_arm_pmu``) so that KVM_ARM_VCPU_PMU_V3_SET_PMU and the
proposed fixed-counters-only PMU slot in beside the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpmu.arch.arm64.caps import ArmPmuCaps
from vpmu.vpmu.arm64.sysregs import kvm_pmu_caps

if TYPE_CHECKING:
    from vpmu.host.perf.core import PerfSubsystem
    from vpmu.host.perf.event import PmuIdentity


@dataclass(eq=False)
class KvmArch:
    """What KVM keeps per VM of its PMU (``struct kvm_arch``): the host PMU, once chosen,
    and the guest PMU it gives (PMCR_EL0.N = ``nr_pmu_counters``, PMCEID, PMUVer)."""

    arm_pmu: PmuIdentity | None = None
    guest_caps: ArmPmuCaps | None = None


def default_arm_pmu(perf: PerfSubsystem, cpu: int) -> PmuIdentity:
    """``kvm_arm_set_default_pmu`` (arch/arm64/kvm/pmu-emul.c@v6.16, from ``kvm_setup_vcpu``
    at KVM_ARM_VCPU_INIT since 6.7): the first registered PMU whose CPUs contain the CPU
    running the ioctl. Its supported CPUs are not narrowed: the vCPU may run anywhere, and
    its events count only on that PMU's CPUs."""
    return next(p for p in perf.pmus if cpu in p.cpus)


def choose_arm_pmu(kvm: KvmArch, perf: PerfSubsystem, cpu: int) -> None:
    """The VM's PMU at a vCPU's init on ``cpu``: kept if the VM has one (the first vCPU's
    choice holds for the VM), else the default. The guest PMU is that PMU's CPUs' caps as
    KVM narrows them."""
    if kvm.arm_pmu is not None:
        return
    pmu = default_arm_pmu(perf, cpu)
    caps = perf.host.cpus[min(pmu.cpus)].preset.caps
    if not isinstance(caps, ArmPmuCaps):
        raise ValueError(f"the arm64 vPMU needs an Arm host PMU, not {pmu.name!r}")
    kvm.arm_pmu, kvm.guest_caps = pmu, kvm_pmu_caps(caps)
