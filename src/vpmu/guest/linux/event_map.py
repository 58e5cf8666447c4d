"""perf's event names and what the x86 driver makes of them: encoding and counter constraint.

Generic hardware events map through ``intel_perfmon_event_map`` (the architectural events,
dropped when CPUID.0xA:EBX marks them unavailable) or AMD's Zen map; ``rNNNN`` is a raw event
select. Intel's fixed-counter constraints (intel/core.c FIXED_EVENT_CONSTRAINT): INST_RETIRED.ANY
0x00c0 on FIXED0, CPU_CLK_UNHALTED.THREAD 0x003c on FIXED1 (both also on any GP counter), and
the pseudo event 0x0300 (ref-cycles) on FIXED2 only. Model-specific GP-counter constraints
are not modelled (assumption: none of these events has one on the presets).
"""

from __future__ import annotations

from dataclasses import dataclass

from vpmu.arch.x86 import events as ev
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE
from vpmu.guest.linux.boot import PmuInfo

GENERIC_ALIASES = {
    "cycles": "cycles", "cpu-cycles": "cycles", "instructions": "instructions",
    "branches": "branches", "branch-instructions": "branches",
    "branch-misses": "branch-misses", "cache-references": "cache-references",
    "cache-misses": "cache-misses", "ref-cycles": "ref-cycles",
}
"""perf's names (tools/perf/util/parse-events.c) and the generic event each means."""

_INTEL_EBX_BIT = {"cycles": 0, "instructions": 1, "cache-references": 3, "cache-misses": 4,
                  "branches": 5, "branch-misses": 6}
"""intel_arch_events_map: the CPUID.0xA:EBX bit of each generic event."""

INTEL_REF_CYCLES = ev.INTEL_FIXED_PSEUDO_ENCODING[2]
"""Linux's pseudo encoding of ref-cycles (0x0300): schedulable on FIXED2 only."""

AMD_EVENT_MAP = {"cycles": 0x0076, "instructions": 0x00C0, "cache-references": 0xFF60,
                 "cache-misses": 0x0964, "branches": 0x00C2, "branch-misses": 0x00C3}
"""AMD's Zen map, amd_f17h_perfmon_event_map (umask << 8 | event); ref-cycles has no AMD
encoding."""

X86_RAW_EVENT_MASK = 0xFF | 0xFF << 8 | msrs.EVTSEL_EDGE | msrs.EVTSEL_INV | 0xFF << 24
"""Event, umask, EDGE, INV, CMASK: what a raw config keeps (USR/OS/INT come from the attr)."""
AMD64_RAW_EVENT_MASK = X86_RAW_EVENT_MASK | 0xF << 32
"""Plus AMD's event select bits 11:8 (selector bits 35:32)."""

INTEL_FIXED_EVENTS = {0x00C0: 0, 0x003C: 1, INTEL_REF_CYCLES: 2}
"""Encoding -> fixed counter (FIXED_EVENT_CONSTRAINT)."""
INTEL_GENERIC_ENCODINGS = {name: ev.INTEL_ARCH_EVENTS[bit].encoding
                           for name, bit in _INTEL_EBX_BIT.items()} | {
    "ref-cycles": INTEL_REF_CYCLES}
"""intel_perfmon_event_map: perf's generic event -> ``umask << 8 | event`` on Intel."""
_QUALIFIERS = msrs.EVTSEL_EDGE | msrs.EVTSEL_INV | 0xFF << 24
"""An event with any of these cannot use a fixed counter."""


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A parsed event name: the generic event or raw select, and the :u / :k modifiers."""

    name: str
    generic: str | None
    raw: int | None
    exclude_user: bool = False
    exclude_kernel: bool = False
    exclude_hv: bool = False
    """A ``:u`` or ``:k`` modifier also excludes the hypervisor (parse-events.c: any of them
    sets exclude_hv unless ``h`` is given); only the Arm driver reads it."""


def parse_event(name: str) -> EventSpec:
    """``cycles``, ``branch-misses:u``, ``r412e``... (an unknown name is a user error)."""
    base, _, mods = name.partition(":")
    if mods and set(mods) - set("uk"):
        raise ValueError(f"event modifiers must be among 'u' and 'k', not {mods!r} in {name!r}")
    excl_user, excl_kernel = bool(mods) and "u" not in mods, bool(mods) and "k" not in mods
    excl_hv = bool(mods)
    if base in GENERIC_ALIASES:
        return EventSpec(name, GENERIC_ALIASES[base], None, excl_user, excl_kernel, excl_hv)
    if base.startswith("r") and len(base) > 1:
        try:
            raw = int(base[1:], 16)
        except ValueError:
            raw = -1
        if 0 <= raw < 1 << 64:
            return EventSpec(name, None, raw, excl_user, excl_kernel, excl_hv)
    raise ValueError(f"event must be one of {sorted(GENERIC_ALIASES)} or rNNNN, "
                     f"not {name!r}")


@dataclass(frozen=True, slots=True)
class EventGroup:
    """One ``-e`` argument of the perf tools: a single event, or a group ``{a,b,...}`` that
    perf opens with the first as leader (group_fd) and the kernel schedules all-or-nothing;
    ``{...}:S`` samples through the leader only, reading the whole group in each sample
    (tools/perf/util/parse-events.c: the ``S`` modifier, leader sampling)."""

    members: tuple[str, ...]
    is_group: bool = False
    leader_sampling: bool = False


def parse_group(text: str) -> EventGroup:
    """``cycles``, ``{cycles,instructions}``, ``{cycles,instructions:u}:S``: each member as
    :func:`parse_event` takes it (a bad one is a user error, as is a bad group)."""
    if not text.startswith("{"):
        parse_event(text)
        return EventGroup((text,))
    body, closed, mods = text[1:].partition("}")
    if not closed or "{" in body or "}" in mods:
        raise ValueError(f"an event group must be '{{event,event,...}}' with an optional "
                         f"':S', not {text!r}")
    if mods not in ("", ":S"):
        raise ValueError(f"an event group's modifier must be ':S' (leader sampling), not "
                         f"{mods!r} in {text!r}")
    members = tuple(body.split(","))
    if not all(members):
        raise ValueError(f"an event group must list events separated by ',', not {text!r}")
    for name in members:
        parse_event(name)
    return EventGroup(members, is_group=True, leader_sampling=mods == ":S")


def event_select(spec: EventSpec, info: PmuInfo) -> int | None:
    """The event select bits (no USR/OS/INT/EN) for ``spec``, or None: not supported."""
    if spec.raw is not None:
        return spec.raw & (X86_RAW_EVENT_MASK if info.is_intel else AMD64_RAW_EVENT_MASK)
    assert spec.generic is not None
    if not info.is_intel:
        return AMD_EVENT_MAP.get(spec.generic)
    if spec.generic == "ref-cycles":
        return INTEL_REF_CYCLES
    bit = _INTEL_EBX_BIT[spec.generic]
    if not info.view.arch_event_available(bit):
        return None  # intel_pmu_init zeroes the map entry: the open fails
    arch = ev.INTEL_ARCH_EVENTS[bit]
    return arch.encoding


def constraint(select: int, info: PmuInfo) -> int:
    """Global counter indices the event may use; 0 means it can never be scheduled."""
    gp = (1 << info.n_gp) - 1
    if not info.is_intel:
        return gp
    fixed = INTEL_FIXED_EVENTS.get(select & 0xFFFF)
    if fixed is None or select & _QUALIFIERS:
        return gp
    fixed_bit = 1 << (FIXED_IDX_BASE + fixed) if fixed in info.fixed else 0
    return fixed_bit if select & 0xFFFF == INTEL_REF_CYCLES else fixed_bit | gp
