"""perf's generic hardware events, each vendor's map to a raw event select, and event names.

Modelled on Linux (from memory of the kernel and perf-tool sources; each fact recalled rather
than copied from a tree is marked ``[mem]``):

- ``include/uapi/linux/perf_event.h``: ``PERF_TYPE_*`` and ``PERF_COUNT_HW_*``.
- ``arch/x86/events/intel/core.c``: ``intel_perfmon_event_map`` and the rule that clears an
  architectural event CPUID.0xA:EBX marks unavailable (``intel_arch_events_map``) [mem].
- ``arch/x86/events/amd/core.c``: ``amd_perfmon_event_map`` (pre-Zen) and the Zen 1/2/4
  maps chosen by ``amd_pmu_event_map`` [mem].
- ``arch/x86/events/core.c``: ``x86_setup_perfctr``: an id past the map is ``-EINVAL``, a map
  entry of 0 is ``-ENOENT`` ("<not supported>" in ``perf stat``) [mem].
- ``tools/perf/util/parse-events.c``: event symbols and aliases, ``rNNNN`` raw events and the
  ``:ukhGHp`` modifiers (``get_event_modifier``) [mem]; ``evsel.c``: ``evsel__hw_names``.

The x86 core PMU registers itself with type ``PERF_TYPE_RAW``, so a raw config and a sysfs
alias of the core PMU (Intel's ``slots``) both come out as ``(PERF_TYPE_RAW, config)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from vpmu.arch.x86.caps import X86PmuCaps, cpuid
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

Cpu = str | X86PmuCaps
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
Ivy Bridge [mem]; every preset here is Skylake or later, so they stay unsupported."""

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
"""Pre-Zen AMD (K7 to family 16h) [mem]."""

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
"""Zen and Zen+ [mem]."""

amd_zen2_perfmon_event_map: _EventMap = MappingProxyType({
    **_ZEN_COMMON,
    PERF_COUNT_HW_STALLED_CYCLES_FRONTEND: 0x00A9,
})
"""Zen 2 and Zen 3 [mem]: no backend-stall event."""

amd_zen4_perfmon_event_map: _EventMap = MappingProxyType({
    **amd_zen2_perfmon_event_map,
    PERF_COUNT_HW_REF_CPU_CYCLES: 0x1_0000_0120,  # event 0x120 (select bits 35:32 = 1), umask 1
})
"""Zen 4 and later [mem]: adds ref-cycles."""

_ZEN2_MODELS_17H = ((0x30, 0x4F), (0x60, 0x7F), (0x90, 0x91), (0xA0, 0xAF))
_ZEN1_MODELS_17H = ((0x00, 0x2F), (0x50, 0x5F))
_ZEN4_MODELS_19H = ((0x10, 0x1F), (0x60, 0xAF))
"""Model ranges behind X86_FEATURE_ZEN1/ZEN2/ZEN4 (``arch/x86/kernel/cpu/amd.c``) [mem]."""

_INTEL_ARCH_EVENT_IDS = (
    PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS, PERF_COUNT_HW_BUS_CYCLES,
    PERF_COUNT_HW_CACHE_REFERENCES, PERF_COUNT_HW_CACHE_MISSES,
    PERF_COUNT_HW_BRANCH_INSTRUCTIONS, PERF_COUNT_HW_BRANCH_MISSES,
)
"""``intel_arch_events_map``: the generic id behind CPUID.0xA:EBX bit i (bit 2, "reference
cycles", is the 0x013c encoding perf calls bus-cycles) [mem]."""


def _vendor(cpu: Cpu) -> str:
    """The vendor name, validated: the one place a bad vendor is reported."""
    vendor = cpu.vendor if isinstance(cpu, X86PmuCaps) else cpu
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


HW_EVENT_NAMES: tuple[str, ...] = (
    "cycles", "instructions", "cache-references", "cache-misses", "branches",
    "branch-misses", "bus-cycles", "stalled-cycles-frontend", "stalled-cycles-backend",
    "ref-cycles",
)
"""``evsel__hw_names``: the names ``perf stat`` prints, by generic id."""

HW_EVENT_SYMBOLS: Mapping[str, int] = MappingProxyType({
    **{name: hw for hw, name in enumerate(HW_EVENT_NAMES)},
    "cpu-cycles": PERF_COUNT_HW_CPU_CYCLES,
    "branch-instructions": PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
    "idle-cycles-frontend": PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
    "idle-cycles-backend": PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
})
"""``event_symbols_hw``: every symbol and alias the perf tool accepts for a generic event."""

PMU_EVENT_ALIASES: Mapping[str, Mapping[str, int]] = MappingProxyType({
    "intel": MappingProxyType({"slots": 0x0400}),  # sysfs cpu/events/slots: event=0,umask=4
    "amd": MappingProxyType({}),
})
"""Named events of the core PMU from sysfs (``/sys/bus/event_source/devices/cpu/events``)
that a preset can count [mem]; the perf tool turns them into raw configs."""


def event_name(type_: int, config: int) -> str:
    """The name perf prints for an event: ``cycles``, ``branches``..., raw as ``rNNNN``."""
    if type_ == PERF_TYPE_HARDWARE:
        _check_hw_id(config)
        return HW_EVENT_NAMES[config]
    if type_ == PERF_TYPE_RAW:
        return f"r{config:x}"
    raise ValueError(f"type must be PERF_TYPE_HARDWARE (0) or PERF_TYPE_RAW (4), not {type_!r}")


@dataclass(frozen=True, slots=True)
class Modifiers:
    """The ``perf_event_attr`` bits an event's ``:modifiers`` set, named as in the attr."""

    exclude_user: bool = False
    exclude_kernel: bool = False
    exclude_hv: bool = False
    exclude_host: bool = False
    exclude_guest: bool = False
    precise_ip: int = 0
    """``p`` count, 0-3: the skid the event asks for (PEBS on Intel, IBS on AMD)."""


class ParsedEvent(NamedTuple):
    """An event spec as the perf tool turns it into ``perf_event_attr`` fields."""

    type: int
    config: int
    modifiers: Modifiers


_SPEC = re.compile(r"(?P<name>[a-zA-Z][a-zA-Z0-9-]*)(?::(?P<mods>[ukhGHp]+))?")
_RAW = re.compile(r"r(?P<hex>[0-9a-fA-F]{1,16})")
_PRIV = "ukh"
"""Modifiers that pick privilege levels; G and H pick guest/host in the same way."""


def _bad_spec(vendor: str, spec: str) -> ValueError:
    names = ", ".join([*HW_EVENT_SYMBOLS, *PMU_EVENT_ALIASES[vendor]])
    return ValueError(f"event must be one of {names} or rNNNN (hex), optionally followed by "
                      f"':' and modifiers from 'ukhGHp' (p at most 3 times), not {spec!r}")


def _modifiers(mods: str) -> Modifiers:
    """``get_event_modifier``: the first of u/k/h excludes all three, then each named one is
    re-included; the first of G/H does the same for guest/host; each p raises precise_ip."""
    priv = {m: any(c in _PRIV for c in mods) and m not in mods for m in _PRIV}
    gh = {m: any(c in "GH" for c in mods) and m not in mods for m in "GH"}
    return Modifiers(exclude_user=priv["u"], exclude_kernel=priv["k"], exclude_hv=priv["h"],
                     exclude_host=gh["H"], exclude_guest=gh["G"], precise_ip=mods.count("p"))


def _resolve(vendor: str, name: str) -> tuple[int, int] | None:
    """(type, config) for an event name, or None if the tool would not know it."""
    if name in HW_EVENT_SYMBOLS:
        return PERF_TYPE_HARDWARE, HW_EVENT_SYMBOLS[name]
    if name in PMU_EVENT_ALIASES[vendor]:
        return PERF_TYPE_RAW, PMU_EVENT_ALIASES[vendor][name]
    raw = _RAW.fullmatch(name)
    return (PERF_TYPE_RAW, int(raw["hex"], 16)) if raw else None


def parse_event(cpu: Cpu, spec: str) -> ParsedEvent:
    """Parse ``perf -e``-style specs: ``cycles``, ``branch-misses:u``, ``r01c2:kH``.

    A generic event parses on every vendor, as in the perf tool: whether the vendor maps it
    is the kernel's answer at open time (``hw_event_config``). The vendor matters for the
    core PMU's named sysfs events (Intel ``slots``). Not modelled: the perf tool's defaults
    for events without ``G``/``H`` (whether it sets ``exclude_guest``, by default or with
    ``:u``, has changed between perf versions [mem]) -- host tools apply that policy.
    """
    vendor = _vendor(cpu)
    match = _SPEC.fullmatch(spec) if isinstance(spec, str) else None
    event = _resolve(vendor, match["name"]) if match else None
    mods = (match["mods"] or "") if match else ""
    if match is None or event is None or mods.count("p") > 3:
        raise _bad_spec(vendor, spec)
    return ParsedEvent(event[0], event[1], _modifiers(mods))


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
