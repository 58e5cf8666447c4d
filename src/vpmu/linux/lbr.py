"""perf's legacy-LBR filter map (arch/x86/events/intel/lbr.c@v6.6 ``hsw_lbr_sel_map`` and
``intel_pmu_setup_hw_lbr_filter``), shared by the host's perf and a guest's: the same Linux.

Branch types are PERF_SAMPLE_BRANCH_* names without the prefix (``vpmu.uapi.perf_event`` has
their bits); LBR_SELECT fields are the SDM's names (Table 17-13). LBR_SELECT suppresses the
rings and classes that are *not* captured and enables call-stack mode with EN_CALLSTACK.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CLASSES = ("JCC", "NEAR_REL_CALL", "NEAR_IND_CALL", "NEAR_RET", "NEAR_IND_JMP", "NEAR_REL_JMP",
           "FAR_BRANCH")
CAPTURE: Mapping[str, tuple[str, ...]] = {
    "USER": ("CPL_NEQ_0",),
    "KERNEL": ("CPL_EQ_0",),
    "ANY": CLASSES,
    "ANY_CALL": ("NEAR_REL_CALL", "NEAR_IND_CALL", "FAR_BRANCH"),
    "ANY_RETURN": ("NEAR_RET", "FAR_BRANCH"),
    "IND_CALL": ("NEAR_IND_CALL",),
    "CALL_STACK": ("NEAR_REL_CALL", "NEAR_IND_CALL", "NEAR_RET", "EN_CALLSTACK"),
}
"""What each branch type captures (LBR_SELECT field names)."""
SUPPRESSING = ("CPL_EQ_0", "CPL_NEQ_0", *CLASSES)
"""The fields that suppress when set (EN_CALLSTACK enables)."""


def lbr_select(types: Iterable[str], lsb: Mapping[str, int]) -> int:
    """The LBR_SELECT value capturing ``types`` (``lsb``: each field's bit)."""
    captured = {name for t in types for name in CAPTURE.get(t, ())}
    value = sum(1 << lsb[n] for n in SUPPRESSING if n not in captured)
    return value | (1 << lsb["EN_CALLSTACK"] if "EN_CALLSTACK" in captured else 0)


def freezes_on_pmi(types: Iterable[str]) -> bool:
    """__intel_pmu_lbr_enable sets DEBUGCTL.FREEZE_LBRS_ON_PMI unless in call-stack mode
    ("LBR callstack does not work well with FREEZE_LBRS_ON_PMI")."""
    return "CALL_STACK" not in set(types)
