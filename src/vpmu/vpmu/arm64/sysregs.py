"""The guest's PMU system registers as KVM presents them: the hardware's declarations
(``vpmu.arch.arm64.sysregs``) with KVM's rules as data where they differ
(arch/arm64/kvm/sys_regs.c@v6.16 access_pm*, arch/arm64/kvm/pmu-emul.c@v6.16).

Shared with the hardware: the encodings, the SET/CLEAR pairs, the ACTION bits of PMCR_EL0
and PMSWINC_EL0, the RAZ/WI bits of counters at or above N, the EL0 gates of PMUSERENR_EL0
and the UNDEF of a per-counter register naming a counter at or above N other than 31
(``access_fault``: KVM's ``check_pmu_access_disabled`` and ``pmu_counter_idx_valid``).

KVM's own:
- the guest's PMU (``kvm_pmu_caps``): PMUVer capped at PMUv3p5, PMCEID with SW_INCR and
  CHAIN always set and the STALL_SLOT events cleared (PMMIR_EL1 is RAZ), N the VM's counter
  count (``nr_pmu_counters``, the host PMU's by default);
- PMEVTYPER<n>_EL0 / PMCCFILTR_EL0 keep only the evtCount and the P and U filter bits
  (``kvm_pmu_evtyper_mask``: NSH needs a guest EL2, NSK / NSU / M a guest EL3, never here);
- PMCR_EL0 reads N from the VM and IMP / IDCODE as 0 (``reset_pmcr`` stores only LC;
  ``kvm_vcpu_read_pmcr`` overlays N).
"""

from __future__ import annotations

import dataclasses

from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.arm64.caps import CYCLE_IDX, PMUVER_V3P5, ArmPmuCaps
from vpmu.arch.arm64.sysregs import FILTER_FIELDS, event_count_field, pmu_sysregs
from vpmu.arch.regs import Field, RegisterSpec, Role

PMCR_E, PMCR_P, PMCR_C, PMCR_LC, PMCR_LP = 1 << 0, 1 << 1, 1 << 2, 1 << 6, 1 << 7
EXCLUDE_EL1 = 1 << 31
"""PMEVTYPER<n>_EL0.P (ARMV8_PMU_EXCLUDE_EL1)."""
EXCLUDE_EL0 = 1 << 30
"""PMEVTYPER<n>_EL0.U (ARMV8_PMU_EXCLUDE_EL0)."""
STALL_SLOT_EVENTS = frozenset({arm_ev.BY_NAME["STALL_SLOT_BACKEND"],
                               arm_ev.BY_NAME["STALL_SLOT_FRONTEND"],
                               arm_ev.BY_NAME["STALL_SLOT"]})
"""Cleared from the guest's PMCEID0/1 (``kvm_pmu_get_pmceid``): they need PMMIR_EL1, which
KVM reads as zero."""
GUEST_FILTER_FIELDS = tuple(f for f in FILTER_FIELDS if f.name in ("U", "P"))
"""The filter bits ``kvm_pmu_evtyper_mask`` keeps for a guest without EL2 or EL3."""


def kvm_pmu_caps(host: ArmPmuCaps) -> ArmPmuCaps:
    """The PMU a guest enumerates on a host PMU: ID_AA64DFR0_EL1.PMUVer at most PMUv3p5
    (``kvm_arm_pmu_get_pmuver_limit``), PMCEID as ``kvm_pmu_get_pmceid``, PMCR_EL0.N the
    host PMU's (the default ``nr_pmu_counters``); no FEAT_PMUv3_ICNTR (the version cap)."""
    events = (host.events | {arm_ev.SW_INCR, arm_ev.CHAIN}) - STALL_SLOT_EVENTS
    return host.replace(pmuver=min(host.pmuver, PMUVER_V3P5), icntr=False,
                        events=frozenset(events))


def _kvm_view(spec: RegisterSpec, caps: ArmPmuCaps) -> RegisterSpec:
    """A hardware declaration narrowed to what KVM keeps (the evtyper mask)."""
    is_type = spec.role is Role.SELECTOR or (spec.role is Role.INDIRECT
                                             and spec.storage == "PMEVTYPER")
    if not is_type:
        return spec
    count: tuple[Field, ...] = () if spec.index == CYCLE_IDX else (event_count_field(caps),)
    return dataclasses.replace(spec, fields=(*count, *GUEST_FILTER_FIELDS))


def kvm_sysregs(caps: ArmPmuCaps) -> dict[str, RegisterSpec]:
    """The guest's PMU system registers by name, for a guest PMU ``caps``."""
    return {s.name: _kvm_view(s, caps) for s in pmu_sysregs(caps)}


def reset_pmcr(caps: ArmPmuCaps) -> int:
    """``reset_pmcr``: LC when the guest cannot run AArch32 at EL0, nothing else stored."""
    return 0 if caps.aarch32_el0 else PMCR_LC


def fixup_pmcr(caps: ArmPmuCaps, value: int) -> int:
    """``kvm_pmu_handle_pmcr``'s fixups of a written PMCR_EL0: LP cleared below PMUv3p5, LC
    forced without AArch32 EL0 (``access_pmcr``); P and C are actions and are not stored."""
    if not caps.long_event_counters:
        value &= ~PMCR_LP
    if not caps.aarch32_el0:
        value |= PMCR_LC
    return value & ~(PMCR_P | PMCR_C)
