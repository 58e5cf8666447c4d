"""The legacy (model-specific) LBR stack of an Intel PMU: its MSRs over a branch recorder.

The recorder (``vpmu.hw.branches``) holds the records; this module is the x86 face of it:

- it records while IA32_DEBUGCTL.LBR is set and (PMU v4+) GLOBAL_STATUS.LBR_FRZ is clear
  (SDM 18.4.8; the v2-v3 freeze on PMI clears DEBUGCTL.LBR itself, ``X86Pmu``);
- MSR_LBR_SELECT is its filter: bits 0-8 *suppress* a ring or a branch class when set, bit 9
  (EN_CALLSTACK) *enables* call-stack mode (SDM 18.4.8.2 and 18.9; perf's
  ``intel_pmu_setup_hw_lbr_filter``, arch/x86/events/intel/lbr.c@v6.6);
- FROM_i / TO_i / INFO_i and TOS read the records in the layout of the PMU's LBR format
  (IA32_PERF_CAPABILITIES[5:0]): 3 and 6 keep MISPRED in FROM[63], 4 also IN_TX / ABORT in
  FROM[62:61], 5 and 7 keep the flags and the elapsed cycles in LBR_INFO_i; 6 keeps the
  cycles in TO[63:48] (SDM 18.4.8.1; perf's ``lbr_format`` enum, arch/x86/events/perf_event.h).
  A write stores the fields it names, so software reads back what it wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpmu.arch.regs import RegisterSpec
from vpmu.arch.x86 import msrs
from vpmu.hw.branches import BranchFilter, BranchRecorder
from vpmu.hw.counting import RING_KERNEL, RING_USER
from vpmu.workloads.branches import BranchKind

if TYPE_CHECKING:
    from vpmu.hw.x86.pmu import X86Pmu

SELECT_KINDS = {"JCC": BranchKind.JCC, "NEAR_REL_CALL": BranchKind.NEAR_REL_CALL,
                "NEAR_IND_CALL": BranchKind.NEAR_IND_CALL, "NEAR_RET": BranchKind.NEAR_RET,
                "NEAR_IND_JMP": BranchKind.NEAR_IND_JMP, "NEAR_REL_JMP": BranchKind.NEAR_REL_JMP,
                "FAR_BRANCH": BranchKind.FAR}
"""MSR_LBR_SELECT's branch-class fields (each suppresses its class when set)."""
SELECT_RINGS = {"CPL_EQ_0": RING_KERNEL, "CPL_NEQ_0": RING_USER}

MISPRED = 63
IN_TX, ABORT = 62, 61
"""Format 4's FROM flags; formats 5 and 7 have them (MISPRED, IN_TSX, TSX_ABORT) in INFO."""
CYCLES_MASK = 0xFFFF
TIME_SHIFT = 48
"""Format 6: TO[63:48] holds the elapsed cycles."""
ADDRESS_BITS = 48


def _sign_extend(value: int, top: int) -> int:
    """``value``'s bits below ``top`` as a canonical 64-bit address (bit ``top - 1`` copied
    upwards)."""
    low = value & ((1 << top) - 1)
    return low | (((1 << 64) - 1) ^ ((1 << top) - 1)) if low >> (top - 1) & 1 else low


class Vmcs:
    """The VMCS fields the hardware itself switches at VM-entry and VM-exit that the model
    needs: GUEST_IA32_DEBUGCTL, loaded into DEBUGCTL at every entry and saved from it at
    every exit, which leaves DEBUGCTL zero (SDM Vol. 3C 27.3.1, 28.3.2.1; KVM sets both
    controls unconditionally: vmx.c ``setup_vmcs_config``). ``X86Cpu.vmcs`` is the one loaded
    on a CPU (vmx_vcpu_load), None between vCPUs.

    ``host_debugctl`` is not a VMCS field but KVM's ``vmx->host_debugctlmsr``: the host's
    DEBUGCTL as read at vmx_vcpu_load, written back after a VM-exit only when non-zero
    (vmx_vcpu_run, Linux v6.6)."""

    __slots__ = ("guest_debugctl", "host_debugctl")

    def __init__(self) -> None:
        self.guest_debugctl = 0
        self.host_debugctl = 0

    def __repr__(self) -> str:
        return f"Vmcs(guest_debugctl={self.guest_debugctl:#x})"


class X86Lbr:
    """One logical CPU's legacy LBR stack (``caps.lbr_depth`` entries, ``caps.lbr_format``)."""

    def __init__(self, pmu: X86Pmu) -> None:
        self.pmu = pmu
        self.format = pmu.caps.lbr_format
        self.recorder = BranchRecorder(pmu.caps.lbr_depth, pmu)
        pmu.recorder = self.recorder
        self._fields = msrs.LBR_SELECT_LSB
        self._filters: dict[int, BranchFilter] = {}
        self.owner: object | None = None
        """Whose LBR context was last saved or restored here (perf's ``last_task_ctx``):
        a restore for the same owner finds its stack still in place."""

    def __repr__(self) -> str:
        return f"X86Lbr(format={self.format}, depth={self.recorder.depth})"

    def sync(self) -> None:
        """Bring the records up to now (before a control changes)."""
        self.recorder.sync()

    def update(self) -> None:
        """The controls may have changed (after ``sync``): the enable and the filter."""
        regs, rec = self.pmu.regs, self.recorder
        frozen = self.pmu.caps.version >= 4 and \
            regs.get("GLOBAL_STATUS", 0) >> msrs.STATUS_LBR_FRZ & 1
        rec.enabled = bool(regs.get("IA32_DEBUGCTL", 0) >> msrs.DEBUGCTL_LBR & 1) and not frozen
        select = regs.get("MSR_LBR_SELECT", 0)
        flt = self._filters.get(select)
        if flt is None:
            flt = self._filters[select] = self._filter(select)
        rec.filter = flt
        self.pmu.recording = rec.enabled

    def _filter(self, select: int) -> BranchFilter:
        f = self._fields
        kinds = frozenset(k for name, k in SELECT_KINDS.items() if not select >> f[name] & 1)
        rings = frozenset(r for name, r in SELECT_RINGS.items() if not select >> f[name] & 1)
        return BranchFilter(kinds, rings, bool(select >> f["EN_CALLSTACK"] & 1))

    # -- the records' MSRs ----------------------------------------------------------------
    def read(self, spec: RegisterSpec) -> int:
        """The value of a record MSR (``Role.RECORD``) now."""
        rec = self.recorder
        rec.sync()
        i, fmt = spec.index, self.format
        if spec.storage == "LBR_TOS":
            return rec.tos
        if spec.storage == "LBR_FROM":
            if fmt in (3, 6):
                return rec.mispredicted[i] << MISPRED | rec.src[i] & ((1 << MISPRED) - 1)
            if fmt == 4:
                return rec.mispredicted[i] << MISPRED | rec.flags[i] | \
                    rec.src[i] & ((1 << ABORT) - 1)
            return rec.src[i]
        if spec.storage == "LBR_TO":
            if fmt == 6:
                return rec.cycles[i] << TIME_SHIFT | rec.dst[i] & ((1 << TIME_SHIFT) - 1)
            return rec.dst[i]
        return rec.mispredicted[i] << MISPRED | rec.flags[i] | rec.cycles[i]

    def write(self, spec: RegisterSpec, value: int) -> None:
        """Store the fields a record MSR write names (a restore, a clear, a test's write)."""
        rec = self.recorder
        rec.sync()
        i, fmt = spec.index, self.format
        if spec.storage == "LBR_TOS":
            rec.tos = value % rec.depth
        elif spec.storage == "LBR_FROM":
            flagged = fmt in (3, 4, 6)
            if flagged:
                rec.mispredicted[i] = bool(value >> MISPRED & 1)
            if fmt == 4:
                rec.flags[i] = value & (1 << IN_TX | 1 << ABORT)
            rec.src[i] = _sign_extend(value, ADDRESS_BITS) if flagged else value
        elif spec.storage == "LBR_TO":
            if fmt == 6:
                rec.cycles[i] = value >> TIME_SHIFT & CYCLES_MASK
                value = _sign_extend(value, ADDRESS_BITS)
            rec.dst[i] = value
        else:
            rec.mispredicted[i] = bool(value >> MISPRED & 1)
            rec.flags[i] = value & (1 << IN_TX | 1 << ABORT)
            rec.cycles[i] = value & CYCLES_MASK
