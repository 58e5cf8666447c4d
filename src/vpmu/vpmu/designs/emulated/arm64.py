"""``emulated`` on arm64: KVM's pmu-emul.c (``vpmu.vpmu.arm64``) for the VM's vCPUs.

One ``KvmArch`` per VM (the design object is per VM) holds the host PMU the first vCPU's
init chose. The x86-only options (``X86_ONLY``) are refused on an arm64 host if given.
"""

from __future__ import annotations

from collections.abc import Iterable

from vpmu.arch.arm64.caps import ArmPmuCaps
from vpmu.vpmu.arm64.access import ArmVcpuHandle
from vpmu.vpmu.arm64.handlers import KvmArmPmu
from vpmu.vpmu.arm64.host_pmu import KvmArch
from vpmu.vpmu.arm64.sysregs import kvm_pmu_caps

X86_ONLY = ("is_paused", "reuse_perf_events", "emulated_instructions", "lbr",
            "lbr_save_point", "lbr_ownership")
"""Options of x86's pmu.c / LBR code: pmu-emul.c has no paused events to skip, always
recreates events, counts no emulated instruction and has no LBR."""


def check_options(given: Iterable[str]) -> None:
    """Refuse an x86-only option given for an arm64 VM."""
    bad = sorted(set(given) & set(X86_ONLY))
    if bad:
        raise ValueError(f"design 'emulated' option {bad[0]} applies to x86 hosts only, not "
                         f"to an arm64 host")


def arm_guest_caps(host: ArmPmuCaps) -> ArmPmuCaps:
    """The guest PMU on the boot cluster's PMU (the VM's own is fixed at vCPU init)."""
    return kvm_pmu_caps(host)


def create_arm_vcpu(vcpu: ArmVcpuHandle, kvm: KvmArch) -> KvmArmPmu:
    """kvm_pmu_vcpu_init for one arm64 vCPU of the VM ``kvm``."""
    return KvmArmPmu(vcpu, kvm)
