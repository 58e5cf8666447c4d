"""How an arm64 KVM_RUN ends before the guest runs (arch/arm64/kvm/arm.c@v6.16
kvm_arch_vcpu_load, kvm_vcpu_exit_request, kvm_arch_vcpu_ioctl_run).

- ``FailEntryExit``: the vCPU was loaded on a CPU outside ``kvm->arch.supported_cpus``
  (only narrowed by KVM_ARM_VCPU_PMU_V3_SET_PMU): vcpu_load sets ON_UNSUPPORTED_CPU (vcpu_put
  clears it), and the run loop, before entering, returns KVM_RUN = 0 with exit_reason
  KVM_EXIT_FAIL_ENTRY, hardware_entry_failure_reason KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED (1)
  and fail_entry.cpu. KVM never moves the thread: pinning is userspace's.
- ``RunRefused``: KVM_RUN failed (kvm_arm_pmu_v3_enable's EINVAL), or the VMM gave up on a
  PMU attribute before it (``AttrRefused``).

Either is the vCPU thread's result (a value, not an exception): the model's VMM stops the
vCPU, as QEMU does on a failed entry ("KVM: entry failed, hardware error 0x1").
"""

from __future__ import annotations

from dataclasses import dataclass

KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED = 1


@dataclass(frozen=True, slots=True)
class FailEntryExit:
    """``struct kvm_run`` after KVM_EXIT_FAIL_ENTRY."""

    cpu: int
    """fail_entry.cpu: where the vCPU was loaded."""
    t_ps: int
    hardware_entry_failure_reason: int = KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED
    exit_reason: int = KVM_EXIT_FAIL_ENTRY


@dataclass(frozen=True, slots=True)
class RunRefused:
    """KVM_RUN was never entered: the failing call and its errno's name."""

    call: str
    errno: str
