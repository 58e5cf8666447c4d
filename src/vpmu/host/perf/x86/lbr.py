"""perf's x86 LBR code for host LBR users (arch/x86/events/intel/lbr.c@v6.6).

- **The filter**: ``vpmu.linux.lbr`` (the same for a guest's Linux).
- **Enable / disable** (``__intel_pmu_lbr_enable`` / ``_disable``): LBR_SELECT, then
  DEBUGCTL.LBR (with FREEZE_LBRS_ON_PMI outside call-stack mode).
- **Reset** (``intel_pmu_lbr_reset_64``): FROM, TO and (format 5+) INFO of every entry written
  with 0, then LBR_SELECT = 0.
- **Read** (``intel_pmu_lbr_read_64``, at each sample): TOS, then the entries newest first.
  Assumption: the walk stops at the first empty FROM, as the save does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpmu.arch.x86 import msrs
from vpmu.linux.lbr import freezes_on_pmi, lbr_select
from vpmu.uapi.perf_event import branch_types

if TYPE_CHECKING:
    from vpmu.host.perf.attr import PerfEventAttr
    from vpmu.hw.branches import BranchRecorder
    from vpmu.hw.x86.lbr import X86Lbr
    from vpmu.hw.x86.pmu import X86Pmu

class X86HostLbr:
    """One CPU's LBR as host perf drives it."""

    def __init__(self, pmu: X86Pmu, lbr: X86Lbr) -> None:
        self.pmu = pmu
        self.hw = lbr
        self.per_entry = msrs.lbr_entry_msrs(pmu.caps.lbr_format)

    def __repr__(self) -> str:
        return f"X86HostLbr({self.hw!r})"

    @property
    def recorder(self) -> BranchRecorder:
        """The stack."""
        return self.hw.recorder

    def enable(self, attr: PerfEventAttr) -> None:
        """__intel_pmu_lbr_enable: the filter, then DEBUGCTL.LBR (and the freeze)."""
        types = branch_types(attr.branch_sample_type, exclude_user=attr.exclude_user,
                             exclude_kernel=attr.exclude_kernel)
        self._write(msrs.MSR_LBR_SELECT, lbr_select(types, msrs.LBR_SELECT_LSB))
        bits = 1 << msrs.DEBUGCTL_LBR
        bits |= 1 << msrs.DEBUGCTL_FREEZE_LBRS_ON_PMI if freezes_on_pmi(types) else 0
        self._set_debugctl(self.pmu.regs.get("IA32_DEBUGCTL", 0) | bits)

    def disable(self) -> None:
        """__intel_pmu_lbr_disable: DEBUGCTL.LBR and the freeze cleared."""
        bits = 1 << msrs.DEBUGCTL_LBR | 1 << msrs.DEBUGCTL_FREEZE_LBRS_ON_PMI
        self._set_debugctl(self.pmu.regs.get("IA32_DEBUGCTL", 0) & ~bits)

    def _set_debugctl(self, value: int) -> None:
        """The host's DEBUGCTL. In guest mode perf runs from the IPI that made the vCPU exit,
        and its write lasts only until the next VM-entry: after every VM-exit KVM writes back
        the value it read at vcpu load (``Vmcs.host_debugctl``), which perf does not update.
        The model drops that short-lived write."""
        if not self.pmu.guest:
            self._write(msrs.IA32_DEBUGCTL, value)

    def reset(self) -> int:
        """intel_pmu_lbr_reset_64: every entry and LBR_SELECT zeroed; the WRMSRs it took. A
        later restore of whoever saved last finds FROM[TOS] zero and restores in full
        (__intel_pmu_lbr_restore's reset check)."""
        self.recorder.clear()
        self.hw.owner = None
        self._write(msrs.MSR_LBR_SELECT, 0)
        return self.per_entry * self.recorder.depth + 1

    def read(self) -> tuple[int, int, int]:
        """intel_pmu_lbr_read_64 at a sample: (RDMSRs, records, of them recorded in guest
        mode)."""
        live = self.recorder.live()
        return 1 + self.per_entry * live, live, self.recorder.guest_records(live)

    def _write(self, addr: int, value: int) -> None:
        fault = self.pmu.wrmsr(addr, value)
        if fault is not None:
            raise AssertionError(f"perf's WRMSR {addr:#x} <- {value:#x} faulted: a model bug")
