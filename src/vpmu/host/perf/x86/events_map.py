"""perf's generic hardware events, each vendor's map to a raw event select, and event names.

Modelled on Linux (from memory of the kernel and perf-tool sources; each fact written from
memory rather than checked against a tree is marked "(recalled)"):

- ``include/uapi/linux/perf_event.h``: ``PERF_TYPE_*`` and ``PERF_COUNT_HW_*``.
- ``arch/x86/events/intel/core.c``: ``intel_perfmon_event_map`` and the rule that clears an
  architectural event CPUID.0xA:EBX marks unavailable (``intel_arch_events_map``) (recalled).
- ``arch/x86/events/amd/core.c``: ``amd_perfmon_event_map`` (pre-Zen) and the Zen 1/2/4
  maps chosen by ``amd_pmu_event_map`` (recalled).
- ``arch/x86/events/core.c``: ``x86_setup_perfctr``: an id past the map is ``-EINVAL``, a map
  entry of 0 is ``-ENOENT`` ("<not supported>" in ``perf stat``) (recalled).
- ``tools/perf/util/parse-events.c``: event symbols and aliases, ``rNNNN`` raw events and the
  ``:ukhGHp`` modifiers (``get_event_modifier``) (recalled); ``evsel.c``: ``evsel__hw_names``.

The x86 core PMU registers itself with type ``PERF_TYPE_RAW``, so a raw config and a sysfs
alias of the core PMU (Intel's ``slots``) both come out as ``(PERF_TYPE_RAW, config)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.arch.caps import PmuCaps
from vpmu.arch.x86.caps import X86PmuCaps, cpuid
from vpmu.host.perf.tool_events import (
    HW_EVENT_NAMES,
    HW_EVENT_SYMBOLS,
    Modifiers,
    ParsedEvent,
    parse_spec,
)
from vpmu.uapi.perf_event import (
    PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
    PERF_COUNT_HW_BRANCH_MISSES,
    PERF_COUNT_HW_BUS_CYCLES,
    PERF_COUNT_HW_CACHE_MISSES,
    PERF_COUNT_HW_CACHE_REFERENCES,
    PERF_COUNT_HW_CPU_CYCLES,
    PERF_COUNT_HW_INSTRUCTIONS,
    PERF_COUNT_HW_MAX,
    PERF_COUNT_HW_REF_CPU_CYCLES,
    PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
    PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
    PERF_TYPE_HARDWARE,
    PERF_TYPE_RAW,
)

Cpu = str | PmuCaps
"""Whom a map is for: a vendor name (``"intel"``, ``"amd"``) or a PMU's capabilities. Caps
refine the answer the way the kernel does at boot (AMD generation, Intel CPUID.0xA:EBX)."""

_EventMap = Mapping[int, int]

intel_perfmon_event_map: _EventMap = MappingProxyType({
    PERF_COUNT_HW_CPU_CYCLES: 0x003C,
    PERF_COUNT_HW_INSTRUCTIONS: 0x00C0,
    PERF_COUNT_HW_CACHE_REFERENCES: 0x4F2E,
    PERF_COUNT_HW_CACHE_MISSES: 0x412E,
    PERF_COUNT_HW_BRANCH_INSTRUCTIONS: 0x00C4,
    PERF_COUNT_HW_BRANCH_MISSES: 0x00C5,
    PERF_COUNT_HW_BUS_CYCLES: 0x013C,
    PERF_COUNT_HW_REF_CPU_CYCLES: 0x0300,  # pseudo-encoding: fixed counter 2 only
})
"""Intel's generic map. The stalled-cycles entries are filled at boot only for Nehalem to
Ivy Bridge (recalled); every preset here is Skylake or later, so they stay unsupported."""

amd_perfmon_event_map: _EventMap = MappingProxyType({
    PERF_COUNT_HW_CPU_CYCLES: 0x0076,
    PERF_COUNT_HW_INSTRUCTIONS: 0x00C0,
    PERF_COUNT_HW_CACHE_REFERENCES: 0x077D,
    PERF_COUNT_HW_CACHE_MISSES: 0x077E,
    PERF_COUNT_HW_BRANCH_INSTRUCTIONS: 0x00C2,
    PERF_COUNT_HW_BRANCH_MISSES: 0x00C3,
    PERF_COUNT_HW_STALLED_CYCLES_FRONTEND: 0x00D0,  # "Decoder empty"
    PERF_COUNT_HW_STALLED_CYCLES_BACKEND: 0x00D1,   # "Dispatch stalls"
})
"""Pre-Zen AMD (K7 to family 16h) (recalled)."""

_ZEN_COMMON: dict[int, int] = {
    PERF_COUNT_HW_CPU_CYCLES: 0x0076,
    PERF_COUNT_HW_INSTRUCTIONS: 0x00C0,
    PERF_COUNT_HW_CACHE_REFERENCES: 0xFF60,
    PERF_COUNT_HW_CACHE_MISSES: 0x0964,
    PERF_COUNT_HW_BRANCH_INSTRUCTIONS: 0x00C2,
    PERF_COUNT_HW_BRANCH_MISSES: 0x00C3,
}

amd_zen1_perfmon_event_map: _EventMap = MappingProxyType({
    **_ZEN_COMMON,
    PERF_COUNT_HW_STALLED_CYCLES_FRONTEND: 0x0287,
    PERF_COUNT_HW_STALLED_CYCLES_BACKEND: 0x0187,
})
"""Zen and Zen+ (recalled)."""

amd_zen2_perfmon_event_map: _EventMap = MappingProxyType({
    **_ZEN_COMMON,
    PERF_COUNT_HW_STALLED_CYCLES_FRONTEND: 0x00A9,
})
"""Zen 2 and Zen 3 (recalled): no backend-stall event."""

amd_zen4_perfmon_event_map: _EventMap = MappingProxyType({
    **amd_zen2_perfmon_event_map,
    PERF_COUNT_HW_REF_CPU_CYCLES: 0x1_0000_0120,  # event 0x120 (select bits 35:32 = 1), umask 1
})
"""Zen 4 and later (recalled): adds ref-cycles."""

_ZEN2_MODELS_17H = ((0x30, 0x4F), (0x60, 0x7F), (0x90, 0x91), (0xA0, 0xAF))
_ZEN1_MODELS_17H = ((0x00, 0x2F), (0x50, 0x5F))
_ZEN4_MODELS_19H = ((0x10, 0x1F), (0x60, 0xAF))
"""Model ranges behind X86_FEATURE_ZEN1/ZEN2/ZEN4 (``arch/x86/kernel/cpu/amd.c``) (recalled)."""

_INTEL_ARCH_EVENT_IDS = (
    PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS, PERF_COUNT_HW_BUS_CYCLES,
    PERF_COUNT_HW_CACHE_REFERENCES, PERF_COUNT_HW_CACHE_MISSES,
    PERF_COUNT_HW_BRANCH_INSTRUCTIONS, PERF_COUNT_HW_BRANCH_MISSES,
)
"""``intel_arch_events_map``: the generic id behind CPUID.0xA:EBX bit i (bit 2, "reference
cycles", is the 0x013c encoding perf calls bus-cycles) (recalled)."""


def _vendor(cpu: Cpu) -> str:
    """The vendor name, validated: the one place a bad vendor is reported."""
    vendor = cpu if isinstance(cpu, str) else cpu.vendor
    if vendor not in ("intel", "amd"):
        raise ValueError(f"vendor must be 'intel' or 'amd', not {vendor!r}")
    return vendor


def _in_ranges(model: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= model <= hi for lo, hi in ranges)


def _amd_event_map(family: int, model: int) -> _EventMap:
    """``amd_pmu_event_map``: newest generation first, as the kernel tests its feature bits."""
    if family >= 0x1A or (family == 0x19 and _in_ranges(model, _ZEN4_MODELS_19H)):
        return amd_zen4_perfmon_event_map
    if family == 0x19 or (family == 0x17 and _in_ranges(model, _ZEN2_MODELS_17H)):
        return amd_zen2_perfmon_event_map
    if family == 0x17 and _in_ranges(model, _ZEN1_MODELS_17H):
        return amd_zen1_perfmon_event_map
    return amd_perfmon_event_map


def _intel_event_map(caps: X86PmuCaps) -> _EventMap:
    """The Intel map with the events CPUID.0xA:EBX marks unavailable zeroed, as at boot."""
    ebx = cpuid(caps, 0xA)[1]
    gone = {hw for bit, hw in enumerate(_INTEL_ARCH_EVENT_IDS) if ebx >> bit & 1}
    return MappingProxyType({k: v for k, v in intel_perfmon_event_map.items() if k not in gone})


def perfmon_event_map(cpu: Cpu) -> _EventMap:
    """``x86_pmu.event_map`` for this CPU: generic id -> raw config; absent ids are -ENOENT.

    A bare ``"amd"`` means the presets' generation (Zen 4 and 5, the Zen 4 map).
    """
    vendor = _vendor(cpu)
    if vendor == "intel":
        return _intel_event_map(cpu) if isinstance(cpu, X86PmuCaps) else intel_perfmon_event_map
    if isinstance(cpu, X86PmuCaps):
        return _amd_event_map(cpu.family, cpu.model)
    return amd_zen4_perfmon_event_map


def _check_hw_id(hw_id: int) -> None:
    """An id past the table is the caller's bug here (perf_event_open says -EINVAL)."""
    if not 0 <= hw_id < PERF_COUNT_HW_MAX:
        raise ValueError(f"hw_id must be a PERF_COUNT_HW_* id in 0..{PERF_COUNT_HW_MAX - 1}, "
                         f"not {hw_id!r}")


def hw_event_config(cpu: Cpu, hw_id: int) -> int | None:
    """The raw config a generic event programs, or None where perf answers -ENOENT."""
    _check_hw_id(hw_id)
    return perfmon_event_map(cpu).get(hw_id)


PMU_EVENT_ALIASES: Mapping[str, Mapping[str, int]] = MappingProxyType({
    "intel": MappingProxyType({"slots": 0x0400}),  # sysfs cpu/events/slots: event=0,umask=4
    "amd": MappingProxyType({}),
})
"""Named events of the core PMU from sysfs (``/sys/bus/event_source/devices/cpu/events``)
that a preset can count (recalled); the perf tool turns them into raw configs."""


def event_name(type_: int, config: int) -> str:
    """The name perf prints for an event: ``cycles``, ``branches``..., raw as ``rNNNN``."""
    if type_ == PERF_TYPE_HARDWARE:
        _check_hw_id(config)
        return HW_EVENT_NAMES[config]
    if type_ == PERF_TYPE_RAW:
        return f"r{config:x}"
    raise ValueError(f"type must be PERF_TYPE_HARDWARE (0) or PERF_TYPE_RAW (4), not {type_!r}")


def parse_event(cpu: Cpu, spec: str) -> ParsedEvent:
    """Parse ``perf -e``-style specs: ``cycles``, ``branch-misses:u``, ``r01c2:kH``.

    A generic event parses on every vendor, as in the perf tool: whether the vendor maps it
    is the kernel's answer at open time (``hw_event_config``). The vendor matters for the
    core PMU's named sysfs events (Intel ``slots``). Not modelled: the perf tool's defaults
    for events without ``G``/``H`` (whether it sets ``exclude_guest``, by default or with
    ``:u``, has changed between perf versions, recalled) -- host tools apply that policy.
    """
    return parse_spec(PMU_EVENT_ALIASES[_vendor(cpu)], spec)


__all__ = [  # the uapi ids are re-exported: the perf tool side reads them here
    "HW_EVENT_NAMES",
    "HW_EVENT_SYMBOLS",
    "PERF_COUNT_HW_BRANCH_INSTRUCTIONS",
    "PERF_COUNT_HW_BRANCH_MISSES",
    "PERF_COUNT_HW_BUS_CYCLES",
    "PERF_COUNT_HW_CACHE_MISSES",
    "PERF_COUNT_HW_CACHE_REFERENCES",
    "PERF_COUNT_HW_CPU_CYCLES",
    "PERF_COUNT_HW_INSTRUCTIONS",
    "PERF_COUNT_HW_MAX",
    "PERF_COUNT_HW_REF_CPU_CYCLES",
    "PERF_COUNT_HW_STALLED_CYCLES_BACKEND",
    "PERF_COUNT_HW_STALLED_CYCLES_FRONTEND",
    "PERF_TYPE_HARDWARE",
    "PERF_TYPE_RAW",
    "PMU_EVENT_ALIASES",
    "Cpu",
    "Modifiers",
    "ParsedEvent",
    "amd_perfmon_event_map",
    "amd_zen1_perfmon_event_map",
    "amd_zen2_perfmon_event_map",
    "amd_zen4_perfmon_event_map",
    "event_name",
    "hw_event_config",
    "intel_perfmon_event_map",
    "parse_event",
    "perfmon_event_map",
]
