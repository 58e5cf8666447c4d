"""KVM's guest LBR (vmx/pmu_intel.c ``lbr_desc`` and vmx.c's DEBUGCTL, Linux v6.6; the series
"KVM: x86/pmu: Guest Last Branch Recording Enabling", v14, 1 Feb 2021, merged in v5.12).

A guest whose PERF_CAPABILITIES reports the host's LBR format gets the host's LBR stack:

- **DEBUGCTL** lives in the VMCS (GUEST_IA32_DEBUGCTL): a guest WRMSR always exits and stores
  it, keeping only the bits KVM supports (LBR and FREEZE_LBRS_ON_PMI with LBR enabled; a BTF
  or LBR bit it does not support is dropped silently, any other unsupported bit is #GP:
  ``vmx_get_supported_debugctl``); a RDMSR reads the VMCS. The hardware loads it at every
  VM-entry and saves it at every VM-exit, which zeroes the hardware's DEBUGCTL
  (``hw.x86.lbr.Vmcs``): host code never records into the guest's stack.
- **The guest LBR event** (``intel_pmu_create_guest_lbr_event``): created at the first
  intercepted access to an LBR MSR or a DEBUGCTL write with LBR set. While it is active the
  LBR MSRs are passed through (``vmx_passthrough_lbr_msrs``, before each VM-entry: here the
  intercept follows the event's state, which only changes inside exits); an intercepted
  access with the event active reads or writes the hardware register
  (``intel_pmu_handle_lbr_msrs_access``).
- **Freeze on PMI** for a v2-v3 guest (``intel_pmu_legacy_freezing_lbrs_on_pmi``): delivering
  a virtual PMI clears DEBUGCTL.LBR in the VMCS if the guest set FREEZE_LBRS_ON_PMI.
- **Lazy release** (``intel_pmu_cleanup``): at the first KVM_REQ_PMU after the vCPU thread is
  scheduled back in, the event is released if the guest's DEBUGCTL.LBR is clear (only that
  bit is consulted, whatever the series' cover letter says of LBR MSR accesses).

Not modelled yet: the event as a host perf event (its creation cost is charged, but host perf
does not schedule it against host LBR users, nor save and restore the stack at the vCPU
thread's switches).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpmu.arch.faults import Fault
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import X86PmuCaps
from vpmu.hw.x86.cpu import x86_cpu
from vpmu.hw.x86.lbr import Vmcs
from vpmu.vpmu.lifecycle import Gen

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu

DEBUGCTL_LBR = 1 << msrs.DEBUGCTL_LBR
DEBUGCTL_BTF = 1 << 1
DEBUGCTL_FREEZE_LBRS = 1 << msrs.DEBUGCTL_FREEZE_LBRS_ON_PMI


def lbr_msrs(caps: X86PmuCaps) -> frozenset[int]:
    """intel_pmu_is_valid_lbr_msr: LBR_SELECT, TOS and the FROM/TO/INFO entries."""
    depth = caps.lbr_depth
    info = range(msrs.MSR_LBR_INFO_0, msrs.MSR_LBR_INFO_0 + depth) if caps.lbr_format >= 5 \
        else range(0)
    return frozenset({msrs.MSR_LBR_SELECT, msrs.MSR_LBR_TOS,
                      *range(msrs.MSR_LBR_NHM_FROM, msrs.MSR_LBR_NHM_FROM + depth),
                      *range(msrs.MSR_LBR_NHM_TO, msrs.MSR_LBR_NHM_TO + depth), *info})


class GuestLbrEvent:
    """The guest LBR perf event (pinned, exclude_host, call-stack branch sampling)."""

    def __init__(self, created_ps: int) -> None:
        self.created_ps = created_ps
        self.active = True
        """PERF_EVENT_STATE_ACTIVE (no host LBR user takes it yet: see the module doc)."""

    def __repr__(self) -> str:
        return f"GuestLbrEvent(created_ps={self.created_ps}, active={self.active})"


class VcpuLbr:
    """One vCPU's LBR state as KVM keeps it (``lbr_desc`` and the VMCS's DEBUGCTL)."""

    def __init__(self, caps: X86PmuCaps, vmcs: Vmcs) -> None:
        self.caps = caps
        self.msrs = lbr_msrs(caps)
        self.vmcs = vmcs
        self.event: GuestLbrEvent | None = None
        self.created = 0
        """Guest LBR events created so far."""
        self.released = 0

    def __repr__(self) -> str:
        return f"VcpuLbr(event={self.event!r})"

    def intercepts(self, addr: int) -> bool:
        """The MSR bitmap for an LBR MSR: passed through while the event is active."""
        return self.event is None or not self.event.active

    # -- DEBUGCTL (vmx_get_msr / vmx_set_msr) -----------------------------------------------
    def get_debugctl(self) -> int:
        """The guest's DEBUGCTL, from the VMCS."""
        return self.vmcs.guest_debugctl

    def set_debugctl(self, cpu: Pcpu, value: int) -> Gen:
        """vmx_set_msr(MSR_IA32_DEBUGCTLMSR): unsupported BTF dropped, other unsupported
        bits #GP; the event created when LBR is set."""
        supported = DEBUGCTL_LBR | DEBUGCTL_FREEZE_LBRS
        invalid = value & ~supported
        value &= ~(invalid & DEBUGCTL_BTF)
        if invalid & ~DEBUGCTL_BTF:
            return Fault.GP
        self.vmcs.guest_debugctl = value
        if value & DEBUGCTL_LBR:
            yield from self._create(cpu)
        return None

    # -- the LBR MSRs (intel_pmu_handle_lbr_msrs_access) ------------------------------------
    def get_msr(self, cpu: Pcpu, addr: int) -> Gen:
        """An intercepted read: the hardware's register if the event is active, else 0."""
        yield from self._create(cpu)
        if self.event is None or not self.event.active:
            return 0
        return x86_cpu(cpu.hw).x86_pmu.rdmsr(addr)

    def set_msr(self, cpu: Pcpu, addr: int, value: int) -> Gen:
        """An intercepted write: to the hardware if the event is active, else dropped."""
        yield from self._create(cpu)
        if self.event is None or not self.event.active:
            return None
        fault = x86_cpu(cpu.hw).x86_pmu.wrmsr(addr, value)
        return fault

    def _create(self, cpu: Pcpu) -> Gen:
        """intel_pmu_create_guest_lbr_event, if there is none; its perf_event_create cost.
        The first LBR user of a CPU starts from a clean stack (perf's intel_pmu_lbr_add
        resets it: intel_pmu_lbr_reset)."""
        if self.event is not None:
            return
        costs = cpu.host.costs
        self.event = GuestLbrEvent(cpu.host.env.now_ps)
        self.created += 1
        lbr = x86_cpu(cpu.hw).x86_pmu.lbr
        if lbr is not None:
            lbr.recorder.clear()
        yield from cpu.kernel_work(costs.perf_ctx_lock_cycles
                                   + costs.perf_call_work_cycles["create"],
                                   "perf_event_create (guest LBR)")

    # -- KVM's hooks --------------------------------------------------------------------------
    def deliver_pmi(self) -> None:
        """intel_pmu_legacy_freezing_lbrs_on_pmi (PMU v2-v3 guests)."""
        if 1 < self.caps.version < 4 and self.vmcs.guest_debugctl & DEBUGCTL_FREEZE_LBRS:
            self.vmcs.guest_debugctl &= ~DEBUGCTL_LBR

    def cleanup(self) -> None:
        """intel_pmu_cleanup: release the event if the guest's DEBUGCTL.LBR is clear."""
        if self.event is not None and not self.vmcs.guest_debugctl & DEBUGCTL_LBR:
            self.event = None
            self.released += 1
