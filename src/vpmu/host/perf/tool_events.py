"""The perf tool's event syntax, whatever the PMU (tools/perf/util/parse-events.c,
parse-events.l, evsel.c; the behaviour of perf v6.6):

- legacy symbols (``cycles``, ``branch-misses``...) are ``PERF_TYPE_HARDWARE`` events;
- ``rNNNN`` is a raw ``PERF_TYPE_RAW`` config;
- a core PMU's sysfs event (``/sys/bus/event_source/devices/<pmu>/events``: Intel's
  ``slots``, Arm's ``cpu_cycles``...) is the config the file gives;
- ``pmu/term/`` names the PMU (``armv8_cortex_a72/cycles/``); ``term`` is one of the above or
  ``event=0xNN``;
- ``:ukhGHp`` (or the letters after ``pmu/term/``) set the exclude bits (``get_event_modifier``).

Which names a PMU has and what its generic events program are its driver's
(``PerfDriver.sysfs_events``, ``hw_config``); the tool's wildcarding over several core PMUs
is ``vpmu.host.tools``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from vpmu.uapi.perf_event import (
    PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
    PERF_COUNT_HW_CPU_CYCLES,
    PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
    PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
    PERF_TYPE_HARDWARE,
    PERF_TYPE_RAW,
)

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


class PmuTerm(NamedTuple):
    """A ``pmu/term/mods`` spec split: the PMU's name and ``term:mods`` to parse for it."""

    pmu: str
    spec: str


SPEC = re.compile(r"(?P<name>[a-zA-Z][a-zA-Z0-9_-]*)(?::(?P<mods>[ukhGHp]+))?")
RAW = re.compile(r"r(?P<hex>[0-9a-fA-F]{1,16})")
_PMU_TERM = re.compile(r"(?P<pmu>[a-z][a-z0-9_]*)/(?P<term>[^/]+)/(?P<mods>[ukhGHp]*)")
_EVENT_TERM = re.compile(r"event=(?:0x)?(?P<hex>[0-9a-fA-F]{1,4})")
_PRIV = "ukh"
"""Modifiers that pick privilege levels; G and H pick guest/host in the same way."""


def bad_spec(aliases: Mapping[str, int], spec: str) -> ValueError:
    """The error of a spec the tool does not know (every name it would take, listed)."""
    names = ", ".join([*HW_EVENT_SYMBOLS, *aliases])
    return ValueError(f"event must be one of {names} or rNNNN (hex), optionally followed by "
                      f"':' and modifiers from 'ukhGHp' (p at most 3 times), not {spec!r}")


def modifiers(mods: str) -> Modifiers:
    """``get_event_modifier``: the first of u/k/h excludes all three, then each named one is
    re-included; the first of G/H does the same for guest/host; each p raises precise_ip."""
    priv = {m: any(c in _PRIV for c in mods) and m not in mods for m in _PRIV}
    gh = {m: any(c in "GH" for c in mods) and m not in mods for m in "GH"}
    return Modifiers(exclude_user=priv["u"], exclude_kernel=priv["k"], exclude_hv=priv["h"],
                     exclude_host=gh["H"], exclude_guest=gh["G"], precise_ip=mods.count("p"))


def _resolve(aliases: Mapping[str, int], name: str) -> tuple[int, int] | None:
    """(type, config) for an event name, or None if the tool would not know it."""
    if name in HW_EVENT_SYMBOLS:
        return PERF_TYPE_HARDWARE, HW_EVENT_SYMBOLS[name]
    if name in aliases:
        return PERF_TYPE_RAW, aliases[name]
    raw = RAW.fullmatch(name)
    return (PERF_TYPE_RAW, int(raw["hex"], 16)) if raw else None


def parse_spec(aliases: Mapping[str, int], spec: str) -> ParsedEvent:
    """A spec without a PMU (``cycles``, ``r1c2:kH``, a sysfs event of ``aliases``), as
    (type, config, modifiers); a sysfs event comes out as ``PERF_TYPE_RAW`` with its config."""
    match = SPEC.fullmatch(spec) if isinstance(spec, str) else None
    event = _resolve(aliases, match["name"]) if match else None
    mods = (match["mods"] or "") if match else ""
    if match is None or event is None or mods.count("p") > 3:
        raise bad_spec(aliases, spec)
    return ParsedEvent(event[0], event[1], modifiers(mods))


def split_pmu_term(spec: str) -> PmuTerm | None:
    """``pmu/term/mods`` as the PMU's name and ``term:mods`` (``event=0xNN`` becomes
    ``rNN``); None for a spec that names no PMU."""
    match = _PMU_TERM.fullmatch(spec)
    if match is None:
        return None
    term = match["term"]
    event = _EVENT_TERM.fullmatch(term)
    if event is not None:
        term = f"r{event['hex']}"
    return PmuTerm(match["pmu"], f"{term}:{match['mods']}" if match["mods"] else term)


def is_legacy(parsed: ParsedEvent) -> bool:
    """A generic (legacy) hardware event: the tool opens one per core PMU on a host with
    several (``parse_events_add_numeric(..., wildcard=true)``)."""
    return parsed.type == PERF_TYPE_HARDWARE
