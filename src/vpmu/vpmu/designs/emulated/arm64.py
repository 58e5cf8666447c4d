"""``emulated`` on arm64: KVM's pmu-emul.c (``vpmu.vpmu.arm64``) for the VM's vCPUs.

One ``KvmArch`` per VM (the design object is per VM) holds the host PMU and the PMU
configuration. The x86-only options (``X86_ONLY``) are refused on an arm64 host if given,
the arm64-only ones (``ARM64_DEFAULTS``) on an x86 host.

Options (arm64 only):
- ``pmu`` (default ``default``): ``default`` sets no PMU (KVM picks the PMU of the CPU
  running KVM_ARM_VCPU_INIT; counters are frozen on other clusters); a host PMU's name
  (``armv8_cortex_a53``) is KVM_ARM_VCPU_PMU_V3_SET_PMU (the vCPUs may only run on its CPUs:
  KVM_RUN fails entry elsewhere, the thread's affinity is userspace's to set);
  ``fixed-counters-only`` is the proposal's opt-in (N = 0, the cycle counter on any CPU).
- ``nr_counters`` (default ``default``: the PMU's N): KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vpmu.arch.arm64.caps import ArmPmuCaps
from vpmu.vpmu.arm64.access import ArmVcpuHandle
from vpmu.vpmu.arm64.handlers import KvmArmPmu
from vpmu.vpmu.arm64.host_pmu import KvmArch
from vpmu.vpmu.arm64.sysregs import kvm_pmu_caps
from vpmu.vpmu.arm64.vmm import PMU_DEFAULT, VmmPmuConfig

X86_ONLY = ("is_paused", "reuse_perf_events", "emulated_instructions", "lbr",
            "lbr_save_point", "lbr_ownership")
"""Options of x86's pmu.c / LBR code: pmu-emul.c has no paused events to skip, always
recreates events, counts no emulated instruction and has no LBR."""
ARM64_DEFAULTS: Mapping[str, object] = {"pmu": PMU_DEFAULT, "nr_counters": "default"}
"""Options of the arm64 PMU attributes; in a VM's options only on an arm64 host (an x86
VM's options, and its results, are unchanged)."""


def check_options(given: Iterable[str]) -> None:
    """Refuse an x86-only option given for an arm64 VM."""
    bad = sorted(set(given) & set(X86_ONLY))
    if bad:
        raise ValueError(f"design 'emulated' option {bad[0]} applies to x86 hosts only, not "
                         f"to an arm64 host")


def check_x86_options(given: Iterable[str]) -> None:
    """Refuse an arm64-only option given for an x86 VM."""
    bad = sorted(set(given) & set(ARM64_DEFAULTS))
    if bad:
        raise ValueError(f"design 'emulated' option {bad[0]} applies to arm64 hosts only "
                         f"(the vCPU PMU attributes), not to an x86 host")


def vmm_config(options: Mapping[str, object]) -> VmmPmuConfig:
    """The VMM's PMU configuration from the options (``nr_counters`` an integer or
    ``default``)."""
    raw = str(options.get("nr_counters", "default"))
    n: int | None = None
    if raw != "default":
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"design 'emulated' option nr_counters must be an integer or "
                             f"'default', not {raw!r}") from None
    return VmmPmuConfig(pmu=str(options.get("pmu", PMU_DEFAULT)), nr_counters=n)


def arm_guest_caps(host: ArmPmuCaps) -> ArmPmuCaps:
    """The guest PMU on the boot cluster's PMU (the VM's own is fixed at vCPU init)."""
    return kvm_pmu_caps(host)


def create_arm_vcpu(vcpu: ArmVcpuHandle, kvm: KvmArch,
                    config: VmmPmuConfig | None = None) -> KvmArmPmu:
    """kvm_pmu_vcpu_init for one arm64 vCPU of the VM ``kvm``."""
    return KvmArmPmu(vcpu, kvm, config)
