"""The mediated vPMU's vendor ops: the mediated series' part of ``kvm_pmu_ops`` (v6 27/44,
Linux 7.0), what Intel (vmx/pmu_intel.c) and AMD (svm/pmu.c) do differently while the guest
owns the PMU: where the guest's GLOBAL_CTRL is between a VM-exit and the put (Intel's VMCS
saves it at every exit; AMD's stays in the PMU), what a selector's hardware copy adds (AMD:
count in the guest only), the vendor's part of a load and a put (``mediated_load``,
``mediated_put``), and what the host must have.

Upstream keeps these in the same ``kvm_pmu_ops`` as the shared ops (``vpmu.vpmu.x86.ops``);
here they live in the design's folder, so a design touches no shared file.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import X86PmuCaps
from vpmu.hw.x86.cpu import x86_cpu
from vpmu.vpmu.x86.ops import AMD_OPS, INTEL_OPS, AmdOps, IntelOps, X86PmuOps, ops_for

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.vpmu.designs.mediated.switch import MsrTally
    from vpmu.vpmu.designs.mediated.vcpu import MediatedVcpu


class MediatedOps(X86PmuOps):
    """The ops every vendor of a mediated vPMU has; the vendor's subclass says."""

    def host_refusal(self, host: X86PmuCaps) -> str:
        """kvm_pmu_ops.is_mediated_pmu_supported: what the host lacks ("" if nothing)."""
        raise NotImplementedError

    def eventsel_hw(self, eventsel: int) -> int:
        """A selector's hardware copy once the event filter has had its say."""
        raise NotImplementedError

    def read_global_ctrl(self, vc: MediatedVcpu, hw: Any) -> int:
        """The guest's GLOBAL_CTRL while KVM runs (``hw``: the PMU while loaded, else None)."""
        raise NotImplementedError

    def write_global_ctrl(self, hw: Any, value: int) -> None:
        """kvm_pmu_ops.write_global_ctrl: a guest GLOBAL_CTRL write that exited."""
        raise NotImplementedError

    def vm_entry(self, vc: MediatedVcpu, cpu: Pcpu) -> None:
        """What VM-entry switches of the PMU by itself."""

    def vm_exit(self, vc: MediatedVcpu, cpu: Pcpu) -> None:
        """What VM-exit switches of the PMU by itself."""

    def mediated_load(self, vc: MediatedVcpu, t: MsrTally) -> None:
        """kvm_pmu_ops.mediated_load, after the counters and selectors are loaded: the
        guest's GLOBAL_STATUS and the vendor's enables."""
        raise NotImplementedError

    def mediated_put(self, vc: MediatedVcpu, t: MsrTally) -> None:
        """kvm_pmu_ops.mediated_put, before the counters are saved: the global registers."""
        raise NotImplementedError

    def put_clear_all(self, vc: MediatedVcpu, t: MsrTally) -> None:
        """``clear_on_put=all``, after the counters: the vendor's other control registers."""

    def save_status(self, vc: MediatedVcpu, t: MsrTally) -> None:
        """Save the guest's GLOBAL_STATUS and clear it in the hardware."""
        vc.global_status = t.rd(self.GLOBAL_STATUS) & vc.counter_mask
        if vc.global_status:
            t.wr(self.GLOBAL_STATUS_CLR, vc.global_status)


@dataclass(frozen=True)
class MediatedIntelOps(IntelOps, MediatedOps):
    """vmx/pmu_intel.c's mediated ops: GLOBAL_CTRL is in the VMCS, FIXED_CTR_CTRL is
    switched by load and put."""

    def host_refusal(self, host: X86PmuCaps) -> str:
        """An Intel PMU v4+ with full-width writes (GLOBAL_CTRL through the VMCS, or the v6
        autostore fallback pre-SPR)."""
        if host.version < 4 or not host.fw_write:
            return (f"an Intel PMU v4+ with full-width writes (the host has v{host.version}"
                    f"{'' if host.fw_write else ', no full-width writes'})")
        return ""

    def eventsel_hw(self, eventsel: int) -> int:
        """The guest's selector as filtered."""
        return eventsel

    def read_global_ctrl(self, vc: MediatedVcpu, hw: Any) -> int:
        """Saved at every VM-exit: KVM's copy."""
        return vc.global_ctrl

    def write_global_ctrl(self, hw: Any, value: int) -> None:
        """The VMCS field is KVM's copy, loaded at the next VM-entry."""

    def vm_entry(self, vc: MediatedVcpu, cpu: Pcpu) -> None:
        """VM-entry loads the guest GLOBAL_CTRL from the VMCS."""
        x86_cpu(cpu.hw).x86_pmu.wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, vc.hw_global_ctrl())

    def vm_exit(self, vc: MediatedVcpu, cpu: Pcpu) -> None:
        """VM-exit saves the guest GLOBAL_CTRL and loads the host's 0."""
        pmu = x86_cpu(cpu.hw).x86_pmu
        if vc.caps.has_global_ctrl:
            vc.global_ctrl = pmu.regs.get("GLOBAL_CTRL", 0)
        pmu.wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)

    def mediated_load(self, vc: MediatedVcpu, t: MsrTally) -> None:
        """intel_mediated_pmu_load: fix the status bits that differ (OVF_CTRL the stale
        ones, STATUS_SET the guest's), then FIXED_CTR_CTRL's hardware copy."""
        hw_status = t.rd(self.GLOBAL_STATUS)
        guest_status = vc.global_status & vc.counter_mask
        stale = hw_status & ~guest_status & vc.counter_mask
        if stale:
            t.wr(self.GLOBAL_STATUS_CLR, stale)
        if guest_status & ~hw_status:
            t.wr(self.GLOBAL_STATUS_SET, guest_status & ~hw_status)
        t.wr(msrs.IA32_FIXED_CTR_CTRL, vc.fixed_ctr_ctrl_hw)

    def mediated_put(self, vc: MediatedVcpu, t: MsrTally) -> None:
        """intel_mediated_pmu_put: GLOBAL_CTRL was saved at the VM-exit; save the status,
        then zero FIXED_CTR_CTRL if the guest used it ("information leakage"), unless
        ``clear_on_put=none``."""
        self.save_status(vc, t)
        if vc.fixed_ctr_ctrl_hw and vc.clear_on_put != "none":
            t.wr(msrs.IA32_FIXED_CTR_CTRL, 0)

    def put_clear_all(self, vc: MediatedVcpu, t: MsrTally) -> None:
        """FIXED_CTR_CTRL, unless mediated_put zeroed it already."""
        if not vc.fixed_ctr_ctrl_hw:
            t.wr(msrs.IA32_FIXED_CTR_CTRL, 0)


@dataclass(frozen=True)
class MediatedAmdOps(AmdOps, MediatedOps):
    """svm/pmu.c's mediated ops: GLOBAL_CTL is switched by load and put and stays in the
    PMU in between; selectors count in the guest only."""

    def host_refusal(self, host: X86PmuCaps) -> str:
        """AMD PerfMonV2 (the global registers)."""
        return "" if host.perfmon_v2 else "AMD PerfMonV2 (the host does not have it)"

    def eventsel_hw(self, eventsel: int) -> int:
        """GuestOnly set, HostOnly cleared."""
        return (eventsel | msrs.AMD_EVTSEL_GUEST_ONLY) & ~msrs.AMD_EVTSEL_HOST_ONLY

    def read_global_ctrl(self, vc: MediatedVcpu, hw: Any) -> int:
        """In the PMU while the context is loaded, else KVM's copy."""
        if hw is not None:
            return int(hw.regs.get("GLOBAL_CTRL", 0))
        return vc.global_ctrl

    def write_global_ctrl(self, hw: Any, value: int) -> None:
        """amd_pmu_write_global_ctrl: to the PMU while the context is loaded."""
        if hw is not None:
            hw.wrmsr(self.PERF_GLOBAL_CTRL, value)

    def mediated_load(self, vc: MediatedVcpu, t: MsrTally) -> None:
        """amd_mediated_pmu_load: clear whatever status is set, STATUS_SET the guest's, then
        GLOBAL_CTL (no VMCB field does it)."""
        hw_status = t.rd(self.GLOBAL_STATUS)
        if hw_status:
            t.wr(self.GLOBAL_STATUS_CLR, hw_status)
        t.wr(self.GLOBAL_STATUS_SET, vc.global_status & vc.counter_mask)
        t.wr(self.PERF_GLOBAL_CTRL, vc.hw_global_ctrl())

    def mediated_put(self, vc: MediatedVcpu, t: MsrTally) -> None:
        """amd_mediated_pmu_put: save GLOBAL_CTL (after VMRUN: the passed-through one) and
        zero it, then save the status."""
        hw_ctrl = t.rd(self.PERF_GLOBAL_CTRL)
        if vc.caps.has_global_ctrl:
            vc.global_ctrl = hw_ctrl
        t.wr(self.PERF_GLOBAL_CTRL, 0)
        self.save_status(vc, t)


def _extend(cls: type[MediatedIntelOps] | type[MediatedAmdOps], ops: X86PmuOps) -> MediatedOps:
    return cls(**{f.name: getattr(ops, f.name) for f in fields(ops)})


MEDIATED_INTEL_OPS = _extend(MediatedIntelOps, INTEL_OPS)
MEDIATED_AMD_OPS = _extend(MediatedAmdOps, AMD_OPS)
_BY_VENDOR = {INTEL_OPS: MEDIATED_INTEL_OPS, AMD_OPS: MEDIATED_AMD_OPS}


def mediated_ops_for(caps: X86PmuCaps) -> MediatedOps:
    """The mediated vendor ops of a PMU."""
    return _BY_VENDOR[ops_for(caps)]


def host_refusal(host: X86PmuCaps) -> str:
    """The registry entry's host requirement: kvm_pmu_ops.is_mediated_pmu_supported of the
    host's vendor, what the host lacks ("" if nothing)."""
    return mediated_ops_for(host).host_refusal(host)
