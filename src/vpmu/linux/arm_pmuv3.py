"""Linux's arm_pmuv3 driver as pure functions and data, shared by the host's perf driver
(``vpmu.host.perf.arm64``) and the guest Linux's (``vpmu.guest.linux.arm_pmuv3``): the same
driver, so what it decides lives once, here.

From torvalds/linux@7d6904bf26b9 (the v6.6 merge window), drivers/perf/arm_pmuv3.c and
include/linux/perf/arm_pmuv3.h:

- the PMCR_EL0, PMEVTYPER and overflow-register constants the driver writes with;
- ``armv8_pmuv3_perf_map`` and ``__armv8_pmuv3_map_event(_id)``: the common event a generic
  event programs (``branches``: PC_WRITE_RETIRED where PMCEID has it, else BR_RETIRED, else
  unsupported), only if the PMU's PMCEID bitmap has it; a raw event's low 16 bits, CHAIN
  refused;
- ``armv8pmu_set_event_filter``: the exclusions as PMEVTYPER's P / U / NSH bits;
- ``armv8pmu_event_needs_bias``: where a 32-bit event is biased on a 64-bit counter;
- ``armv8pmu_reset``: the registers it writes, in its order.

Each driver keeps its own counter numbering (the host the architecture's, event counter n is
n and the cycle counter 31; the guest the kernel's ``idx``, 0 the cycle counter) and its own
``perf_event_attr``; these take what they need as arguments. The PMCEID bitmap is
``vpmu.arch.arm64.events.events_of``. Generic events are named as ``perf stat`` prints them
(``evsel__hw_names``: ``cycles``, ``branches``...), not by their ``PERF_COUNT_HW_*`` id, which
this package may not import (``vpmu.uapi``): the host translates its ids at its edge.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from types import MappingProxyType
from typing import Final

from vpmu.arch.arm64 import events as arm_ev

U32_MAX: Final = 0xFFFF_FFFF

# -- PMCR_EL0 (ARMV8_PMU_PMCR_*) ------------------------------------------------------------
ARMV8_PMU_PMCR_E: Final = 1 << 0
"""Enable every counter (the global enable, ``armv8pmu_start`` / ``armv8pmu_stop``)."""
ARMV8_PMU_PMCR_P: Final = 1 << 1
"""Reset the event counters."""
ARMV8_PMU_PMCR_C: Final = 1 << 2
"""Reset the cycle counter."""
ARMV8_PMU_PMCR_LC: Final = 1 << 6
"""The cycle counter overflows at 64 bits."""
ARMV8_PMU_PMCR_LP: Final = 1 << 7
"""The event counters overflow at 64 bits (PMUv3p5)."""
ARMV8_PMU_PMCR_N_SHIFT: Final = 11
ARMV8_PMU_PMCR_N_MASK: Final = 0x1F
"""PMCR_EL0.N: the number of event counters."""
ARMV8_PMU_PMCR_MASK: Final = 0xFF
"""The PMCR_EL0 bits Linux writes (``armv8pmu_pmcr_write`` masks every write)."""

# -- PMEVTYPER<n>_EL0 / PMCCFILTR_EL0 -------------------------------------------------------
ARMV8_PMU_EVTYPE_EVENT: Final = 0xFFFF
"""The event field of a type and of a config ("config:0-15" in sysfs format/event)."""
ARMV8_PMU_EVTYPE_MASK: Final = 0xC800_FFFF
"""The PMEVTYPER bits Linux writes: P, U, NSH and the event (``armv8pmu_write_evtype``)."""
ARMV8_PMU_EXCLUDE_EL1: Final = 1 << 31
"""P: do not count at EL1."""
ARMV8_PMU_EXCLUDE_EL0: Final = 1 << 30
"""U: do not count at EL0."""
ARMV8_PMU_INCLUDE_EL2: Final = 1 << 27
"""NSH: count at EL2 too. The filter bits Linux writes are these three; NSK/NSU stay 0."""

# -- overflow and counter widths ------------------------------------------------------------
ARMV8_PMU_OVSR_MASK: Final = U32_MAX
"""``armv8pmu_getreset_flags`` keeps the low 32 bits of PMOVSCLR_EL0."""
ARMV8_PMUV3_MAX_COMMON_EVENTS: Final = 0x40
"""The common events PMCEID0/1_EL0 describe (0x00-0x3F)."""
BIAS: Final = 0xFFFF_FFFF_0000_0000
"""``GENMASK_ULL(63, 32)`` (``armv8pmu_bias_long_counter``): a 32-bit event on a 64-bit counter
is written with these bits set, so it overflows where a 32-bit counter would, and read with
them cleared."""


def needs_bias(*, is_64bit: bool, long_event_counters: bool, cycle_counter: bool) -> bool:
    """``armv8pmu_event_needs_bias``: a 32-bit event on a 64-bit counter, the cycle counter
    (PMCR_EL0.LC) or, with PMUv3p5's long event counters (LP), any."""
    return not is_64bit and (long_event_counters or cycle_counter)


# -- the generic event map ------------------------------------------------------------------
_E = arm_ev.BY_NAME
ARMV8_PMUV3_PERF_MAP: Mapping[str, int] = MappingProxyType({
    "cycles": _E["CPU_CYCLES"],
    "instructions": _E["INST_RETIRED"],
    "cache-references": _E["L1D_CACHE"],
    "cache-misses": _E["L1D_CACHE_REFILL"],
    "branch-misses": _E["BR_MIS_PRED"],
    "bus-cycles": _E["BUS_CYCLES"],
    "stalled-cycles-frontend": _E["STALL_FRONTEND"],
    "stalled-cycles-backend": _E["STALL_BACKEND"],
})
"""``armv8_pmuv3_perf_map``, by the generic event's name. It has no ``branches``
(PERF_COUNT_HW_BRANCH_INSTRUCTIONS: ``BRANCH_EVENTS``) and no ``ref-cycles`` (unsupported).
The per-core ``*_map_event`` functions (A53, A57/A72, N1, A520, A720...) add only cache maps
(``PERF_TYPE_HW_CACHE``, not modelled), so this one map serves every core."""
BRANCH_EVENTS: tuple[int, ...] = (_E["PC_WRITE_RETIRED"], _E["BR_RETIRED"])
"""``__armv8_pmuv3_map_event_id``: ``branches`` is the first of these PMCEID has."""


def map_generic(name: str, pmceid: Set[int]) -> int | None:
    """``__armv8_pmuv3_map_event`` for a generic event (PERF_TYPE_HARDWARE): the common event
    it programs, or None (-ENOENT: not in the map, or not in the PMU's PMCEID bitmap; the
    per-core extra event map it would try next is empty on every modelled core)."""
    if name == "branches":
        return next((e for e in BRANCH_EVENTS if e in pmceid), None)
    event = ARMV8_PMUV3_PERF_MAP.get(name)
    if event is None or not 0 < event < ARMV8_PMUV3_MAX_COMMON_EVENTS or event not in pmceid:
        return None
    return event


def map_raw(config: int) -> int | None:
    """``__armv8_pmuv3_map_event`` for a raw event: its low 16 bits, taken as given (an
    IMPLEMENTATION DEFINED event may be anything); None for CHAIN (-EINVAL: "it never makes
    sense for a user to open one in isolation")."""
    event = config & ARMV8_PMU_EVTYPE_EVENT
    return None if event == arm_ev.CHAIN else event


# -- the event filter ---------------------------------------------------------------------
def event_filter(*, hyp_mode: bool, exclude_user: bool, exclude_kernel: bool,
                 exclude_hv: bool, exclude_host: bool = False,
                 exclude_guest: bool = False) -> int:
    """``armv8pmu_set_event_filter``: the attr's exclusions as PMEVTYPER's P / U / NSH bits.
    In hyp mode (a VHE kernel at EL2, ``is_kernel_in_hyp_mode``) the kernel *is* the
    hypervisor: exclude_hv is ignored, exclude_guest excludes EL1 (the guests' kernels) and
    exclude_host EL0; otherwise EL2 is counted unless exclude_hv or exclude_host. (exclude_idle
    is -EPERM before this.)"""
    base = 0
    if hyp_mode:
        if not exclude_kernel and not exclude_host:
            base |= ARMV8_PMU_INCLUDE_EL2
        if exclude_guest:
            base |= ARMV8_PMU_EXCLUDE_EL1
        if exclude_host:
            base |= ARMV8_PMU_EXCLUDE_EL0
    elif not exclude_hv and not exclude_host:
        base |= ARMV8_PMU_INCLUDE_EL2
    if exclude_kernel:  # "Filter out !VHE kernels and guest kernels"
        base |= ARMV8_PMU_EXCLUDE_EL1
    if exclude_user:
        base |= ARMV8_PMU_EXCLUDE_EL0
    return base


# -- reset --------------------------------------------------------------------------------
def reset_writes(*, long_event_counters: bool) -> tuple[tuple[str, int], ...]:
    """``armv8pmu_reset``'s register writes in its order: every counter disabled
    (``armv8pmu_disable_counter(U32_MAX)``), every interrupt disabled and every overflow flag
    cleared (``armv8pmu_disable_intens``), then PMCR_EL0 = P | C | LC, with LP where the event
    counters are 64-bit (``armv8pmu_has_long_event``), masked as ``armv8pmu_pmcr_write`` does.
    The ISBs between them are not register writes."""
    pmcr = ARMV8_PMU_PMCR_P | ARMV8_PMU_PMCR_C | ARMV8_PMU_PMCR_LC
    if long_event_counters:
        pmcr |= ARMV8_PMU_PMCR_LP
    return (("PMCNTENCLR_EL0", U32_MAX), ("PMINTENCLR_EL1", U32_MAX),
            ("PMOVSCLR_EL0", U32_MAX), ("PMCR_EL0", pmcr & ARMV8_PMU_PMCR_MASK))
