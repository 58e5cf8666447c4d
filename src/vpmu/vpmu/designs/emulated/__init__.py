"""``emulated``: KVM's perf-backed vPMU (arch/x86/kvm/pmu.c@v6.6), the default.

Every PMU MSR access and RDPMC exits; KVM keeps the guest's registers in ``struct kvm_pmu`` and
counts with host perf events (pinned, exclude_host, bound to the vCPU thread), reprogrammed
before the next entry when KVM_REQ_PMU is pending.

Options (``emulated:key=value``):
- ``is_paused`` (default true, upstream since 5.15, 2021): skip perf calls on paused events;
  false reproduces the 2021 baseline of seed 001 (Like Xu, "[PATCH] KVM: x86/pmu: Introduce
  pmc->is_paused to reduce the call time of perf interfaces", 28 Jul 2021).
- ``reuse_perf_events`` (default true, upstream since 5.5: Like Xu, "[PATCH v4 5/6] KVM:
  x86/vPMU: Reuse perf_event to avoid unnecessary pmc_reprogram_counter", 27 Oct 2019): pause and
  resume the perf event instead of releasing and re-creating it on every reprogram; false is the
  2019 baseline.
- ``emulated_instructions`` (default true, upstream since 5.18, 2022): instructions KVM skips
  (MSR, RDPMC, CPUID exits) count on the guest's instructions-retired counters; false is the
  kernel seed 001 was measured on.
- ``lbr`` (default true, upstream since 5.12, 2021): the guest's PERF_CAPABILITIES reports the
  host's legacy LBR format and the guest gets the LBR stack (``vpmu.vpmu.x86.lbr``); as
  userspace asks for it (QEMU ``-cpu host,migratable=no``); never on an architectural-LBR
  host. False: no LBR format, as a migratable CPU model gives.
- ``lbr_save_point`` (default ``thread-switch``, upstream): where the guest's LBR stack is
  saved and restored: when perf switches the vCPU thread's LBR context, or
  ``vm-transition``, at every VM-exit and VM-entry (seed 002's alternative: Wei Wang and Peter
  Zijlstra, "Re: [PATCH v7 08/12] KVM/x86/vPMU: Add APIs to support host save/restore the
  guest lbr stack", 9 Jul 2019).
- ``lbr_ownership`` (default ``first-come``): who keeps the LBR when a host perf LBR user and
  the guest both want it (``vpmu.host.perf.lbr``): the older claim (Wei Wang's proposal in
  the thread), ``cpu-event-precedence``, where a host CPU event reclaims it (Peter
  Zijlstra's scheduling order; the v14 series' stated intent), or ``guest-precedence``, what
  upstream perf does (the guest always wins on its CPU).

On an arm64 host the design is arch/arm64/kvm/pmu-emul.c (``vpmu.vpmu.arm64``, built by
``designs/emulated/arm64.py``); every option above is x86's and is refused there if given.
Its own options ``pmu`` and ``nr_counters`` (the vCPU PMU attributes, see
``designs/emulated/arm64.py``) are refused on an x86 host and appear in an arm64 VM's options
only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from vpmu.vpmu.design import coerce_options
from vpmu.vpmu.designs.emulated.entry import ENTRY
from vpmu.vpmu.designs.emulated.pmc import PmcOps
from vpmu.vpmu.designs.emulated.vcpu import EmulatedVcpu
from vpmu.vpmu.x86.access import X86VcpuHandle
from vpmu.vpmu.x86.ops import CapLimits, ops_for

LIMITS = CapLimits(max_gp=8, max_fixed=3)
"""KVM_MAX_NR_INTEL_GP_COUNTERS, KVM_MAX_NR_FIXED_COUNTERS (and KVM_MAX_PMU_VERSION)."""


class EmulatedPmu:
    """The ``emulated`` design."""

    name = "emulated"
    defaults: Mapping[str, object] = ENTRY.defaults

    def __init__(self, options: Mapping[str, str]) -> None:
        from vpmu.vpmu.designs.emulated.arm64 import ARM64_DEFAULTS
        merged = coerce_options(self.name, {**self.defaults, **ARM64_DEFAULTS},
                                tuple(options.items()), ENTRY.choices)
        self.arm64_options = {k: merged.pop(k) for k in ARM64_DEFAULTS}
        """``pmu`` and ``nr_counters``: joined to ``options`` on an arm64 host only."""
        self.options = merged
        self.given = tuple(options)
        """The options the spec named (an x86-only one is refused on arm64)."""
        self.kvm_arch: Any = None
        """arm64: the VM's ``KvmArch`` (its host PMU), made at the first vCPU."""

    def __repr__(self) -> str:
        return f"EmulatedPmu(options={self.options!r})"

    def guest_caps(self, host: Any) -> Any:
        """kvm_init_pmu_capability: version capped at 2, at most 8 GP and 3 fixed counters;
        PERF_CAPABILITIES keeps full-width writes and (option ``lbr``) the LBR format.
        arm64: PMUVer capped at PMUv3p5, PMCEID as KVM gives it (``designs/emulated/arm64``)."""
        from vpmu.vpmu.designs.emulated import arm64
        if host.arch == "arm64":
            arm64.check_options(self.given)
            arm64.vmm_config(self.arm64_options)
            self.options.update(self.arm64_options)
            return arm64.arm_guest_caps(host)
        arm64.check_x86_options(self.given)
        return ops_for(host).refresh(host, replace(LIMITS, lbr=bool(self.options["lbr"])))

    def create_vcpu(self, vcpu: Any) -> Any:
        """kvm_pmu_init + refresh for one vCPU with the VM's guest PMU (arm64:
        kvm_pmu_vcpu_init, the VM's ``KvmArch`` shared by its vCPUs)."""
        if vcpu.caps.arch == "arm64":
            from vpmu.vpmu.arm64.host_pmu import KvmArch
            from vpmu.vpmu.designs.emulated import arm64
            if self.kvm_arch is None:
                self.kvm_arch = KvmArch()
            return arm64.create_arm_vcpu(vcpu, self.kvm_arch,
                                         arm64.vmm_config(self.arm64_options))
        return self._create_x86_vcpu(vcpu)

    def _create_x86_vcpu(self, vcpu: X86VcpuHandle) -> EmulatedVcpu:
        ops = PmcOps(vcpu.kapi, is_paused=bool(self.options["is_paused"]),
                     reuse=bool(self.options["reuse_perf_events"]))
        return EmulatedVcpu(vcpu, vcpu.caps, ops,
                            count_emulated=bool(self.options["emulated_instructions"]),
                            lbr_save_point=str(self.options["lbr_save_point"]),
                            lbr_ownership=str(self.options["lbr_ownership"]))
