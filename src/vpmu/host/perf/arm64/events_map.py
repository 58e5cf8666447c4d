"""perf's generic hardware events on Arm PMUv3, and the PMU's sysfs event names.

From drivers/perf/arm_pmuv3.c@7d6904bf26b9 (the v6.6 merge window, the first tree with the
Cortex-A520/A720 entries):

- ``armv8_pmuv3_perf_map``: the generic ids every arm_pmuv3 PMU maps the same way. The
  per-core ``*_map_event`` functions (A53, A57/A72, N1, A520, A720...) add only cache maps
  (``PERF_TYPE_HW_CACHE``, which the model does not open), so one map serves every preset.
- ``__armv8_pmuv3_map_event_id``: ``branch-instructions`` is PC_WRITE_RETIRED where PMCEID
  says the core has it, else BR_RETIRED, else unsupported.
- ``__armv8_pmuv3_map_event``: a common event (1-0x3F) the PMU's PMCEID bitmap lacks is
  -ENOENT for a generic event; a raw config is taken as given (an IMPLEMENTATION DEFINED
  event may be anything); CHAIN (0x1E) is refused (-EINVAL: "never makes sense ... in
  isolation").
- ``armv8_pmuv3_event_attrs``: the sysfs event names, the common events' names in lower case,
  each visible only if PMCEID has it (``armv8pmu_event_attr_is_visible``); no ``chain``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.arm64.caps import ArmPmuCaps
from vpmu.uapi.perf_event import (
    PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
    PERF_COUNT_HW_BRANCH_MISSES,
    PERF_COUNT_HW_BUS_CYCLES,
    PERF_COUNT_HW_CACHE_MISSES,
    PERF_COUNT_HW_CACHE_REFERENCES,
    PERF_COUNT_HW_CPU_CYCLES,
    PERF_COUNT_HW_INSTRUCTIONS,
    PERF_COUNT_HW_MAX,
    PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
    PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
)

ARMV8_PMU_EVTYPE_EVENT = 0xFFFF
"""The event field of a config ("config:0-15" in sysfs format/event)."""
ARMV8_PMUV3_MAX_COMMON_EVENTS = 0x40
_E = arm_ev.BY_NAME

armv8_pmuv3_perf_map: Mapping[int, int] = MappingProxyType({
    PERF_COUNT_HW_CPU_CYCLES: _E["CPU_CYCLES"],
    PERF_COUNT_HW_INSTRUCTIONS: _E["INST_RETIRED"],
    PERF_COUNT_HW_CACHE_REFERENCES: _E["L1D_CACHE"],
    PERF_COUNT_HW_CACHE_MISSES: _E["L1D_CACHE_REFILL"],
    PERF_COUNT_HW_BRANCH_MISSES: _E["BR_MIS_PRED"],
    PERF_COUNT_HW_BUS_CYCLES: _E["BUS_CYCLES"],
    PERF_COUNT_HW_STALLED_CYCLES_FRONTEND: _E["STALL_FRONTEND"],
    PERF_COUNT_HW_STALLED_CYCLES_BACKEND: _E["STALL_BACKEND"],
})
"""Generic id -> common event; an id not here is unsupported (ref-cycles has no Arm event)."""

BRANCH_EVENTS = (_E["PC_WRITE_RETIRED"], _E["BR_RETIRED"])
"""``branch-instructions``: the first of these the PMU implements."""


def hw_event_config(caps: ArmPmuCaps, hw_id: int) -> int | None:
    """The common event a generic event programs on this PMU, or None (-ENOENT)."""
    if not 0 <= hw_id < PERF_COUNT_HW_MAX:
        raise ValueError(f"hw_id must be a PERF_COUNT_HW_* id in 0..{PERF_COUNT_HW_MAX - 1}, "
                         f"not {hw_id!r}")
    if hw_id == PERF_COUNT_HW_BRANCH_INSTRUCTIONS:
        return next((e for e in BRANCH_EVENTS if e in caps.events), None)
    event = armv8_pmuv3_perf_map.get(hw_id)
    if event is None or not 0 < event < ARMV8_PMUV3_MAX_COMMON_EVENTS or \
            event not in caps.events:
        return None
    return event


def sysfs_events(caps: ArmPmuCaps) -> Mapping[str, int]:
    """/sys/bus/event_source/devices/<pmu>/events: the implemented common events by name."""
    return MappingProxyType({name.lower(): number
                             for number, name in arm_ev.COMMON_EVENTS.items()
                             if number in caps.events and number != arm_ev.CHAIN})
