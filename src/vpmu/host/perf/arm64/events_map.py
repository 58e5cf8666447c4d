"""perf's generic hardware events on Arm PMUv3, and the PMU's sysfs event names.

From drivers/perf/arm_pmuv3.c@7d6904bf26b9 (the v6.6 merge window, the first tree with the
Cortex-A520/A720 entries):

- ``armv8_pmuv3_perf_map`` and ``__armv8_pmuv3_map_event(_id)`` are shared with the guest
  Linux's driver (``vpmu.linux.arm_pmuv3``, by the generic event's name): here a
  ``PERF_COUNT_HW_*`` id is translated to that name (``evsel__hw_names``). ``branches`` is
  PC_WRITE_RETIRED where PMCEID says the core has it, else BR_RETIRED, else unsupported; a
  common event (1-0x3F) the PMU's PMCEID bitmap lacks is -ENOENT for a generic event; a raw
  config is taken as given, CHAIN (0x1E) refused (``assign.event_constraint``).
- ``armv8_pmuv3_event_attrs``: the sysfs event names, the common events' names in lower case,
  each visible only if PMCEID has it (``armv8pmu_event_attr_is_visible``); no ``chain``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.arm64.caps import ArmPmuCaps
from vpmu.host.perf.tool_events import HW_EVENT_NAMES
from vpmu.linux.arm_pmuv3 import map_generic
from vpmu.uapi.perf_event import PERF_COUNT_HW_MAX


def hw_event_config(caps: ArmPmuCaps, hw_id: int) -> int | None:
    """The common event a generic event programs on this PMU, or None (-ENOENT)."""
    if not 0 <= hw_id < PERF_COUNT_HW_MAX:
        raise ValueError(f"hw_id must be a PERF_COUNT_HW_* id in 0..{PERF_COUNT_HW_MAX - 1}, "
                         f"not {hw_id!r}")
    return map_generic(HW_EVENT_NAMES[hw_id], caps.events)


def sysfs_events(caps: ArmPmuCaps) -> Mapping[str, int]:
    """/sys/bus/event_source/devices/<pmu>/events: the implemented common events by name."""
    return MappingProxyType({name.lower(): number
                             for number, name in arm_ev.COMMON_EVENTS.items()
                             if number in caps.events and number != arm_ev.CHAIN})
