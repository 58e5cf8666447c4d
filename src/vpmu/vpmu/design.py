"""The hypervisor's PMU: what a design is, design specs, and resolving them by name.

A design is chosen by name, with options: ``NAME`` or ``NAME:key=value,key=value`` (for
example ``emulated:is_paused=false``). ``Design`` is the per-VM object (what the VM's guests
see, the options), whatever the architecture; what it creates per vCPU is the state KVM keeps
in ``struct kvm_pmu``: the neutral lifecycle of ``vpmu.vpmu.lifecycle`` plus the guest access
of each architecture it runs on (x86: ``vpmu.vpmu.x86.access``, where an x86 design finds
``X86VcpuHandle`` and ``X86VcpuPmu``). Designs are found in ``vpmu.vpmu.registry``, which
says which architectures each runs on.

Vocabulary (the KVM ``NOTE:`` block): an *MSR address*, an *RDPMC index* (ECX) and a *global
counter index* (GP i = i, fixed i = 32 + i), as in ``vpmu.arch.x86.caps``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from vpmu.arch.caps import PmuCaps
from vpmu.arch.lazy import resolve
from vpmu.vpmu import registry
from vpmu.vpmu.lifecycle import (
    KVM_REQ_PMI,
    KVM_REQ_PMU,
    Gen,
    NoGuestContext,
    VcpuBase,
    VcpuLifecycle,
)


class Design(Protocol):
    """One vPMU design for one VM."""

    name: str
    options: Mapping[str, object]

    def guest_caps(self, host: Any) -> PmuCaps:
        """The PMU the guest enumerates (x86: CPUID.0xA, PERF_CAPABILITIES, the AMD leaves),
        from the host's (an architecture's own caps type: each design takes those of the
        architectures it runs on)."""
        ...

    def create_vcpu(self, vcpu: Any) -> VcpuLifecycle:
        """kvm_pmu_init for one vCPU (``vcpu`` is the architecture's handle, e.g.
        ``X86VcpuHandle``; the result also implements that architecture's guest access)."""
        ...


def enforces_event_filter(design: object) -> bool:
    """Whether a design enforces KVM_SET_PMU_EVENT_FILTER for its VM: every design does
    unless it says otherwise (``mediated:passthrough=all``, whose guest programs the
    selectors without an exit, has ``enforces_event_filter`` False)."""
    return bool(getattr(design, "enforces_event_filter", True))


_DESIGN_NAME = re.compile(r"[A-Za-z0-9_-]+")
_OPTION_KEY = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class DesignSpec:
    """A design named with options: ``NAME`` or ``NAME:key=value,key=value``."""

    name: str
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> DesignSpec:
        """Parse a spec (the one grammar of design specs: files, ``--design`` and ``--set``
        alike); errors say what was expected and where. Each option is given once, and a
        ``:`` is followed by at least one ``key=value``."""
        name, colon, rest = text.partition(":")
        if not _DESIGN_NAME.fullmatch(name):
            raise ValueError(f"design must be NAME or NAME:key=value,..., not {text!r}")
        options: dict[str, str] = {}
        for item in rest.split(",") if colon else ():
            key, eq, value = (part.strip() for part in item.partition("="))
            if not eq or not _OPTION_KEY.fullmatch(key):
                raise ValueError(f"design option must be key=value, not {item!r} in {text!r}")
            if key in options:
                raise ValueError(f"design option {key} must be given once, not twice in "
                                 f"{text!r}")
            options[key] = value
        return cls(name, tuple(options.items()))

    def __str__(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        return f"{self.name}:{opts}" if opts else self.name


OPTION_TYPES: dict[type, Callable[[str], object]] = {
    bool: lambda v: {"true": True, "1": True, "false": False, "0": False}[v.lower()],
    int: int, str: str,
}


def coerce_options(name: str, defaults: Mapping[str, object],
                   given: tuple[tuple[str, str], ...],
                   choices: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, object]:
    """Merge option strings into a design's typed defaults; unknown keys, bad values and
    values outside an option's ``choices`` fail."""
    result = dict(defaults)
    for key, raw in given:
        if key not in defaults:
            raise ValueError(f"design {name!r} option must be one of {sorted(defaults)}, "
                             f"not {key!r}")
        kind = type(defaults[key])
        try:
            result[key] = OPTION_TYPES[kind](raw)
        except (KeyError, ValueError):
            raise ValueError(f"design {name!r} option {key} must be a {kind.__name__}, "
                             f"not {raw!r}") from None
    for key, allowed in (choices or {}).items():
        if result[key] not in allowed:
            raise ValueError(f"design {name!r} option {key} must be one of {list(allowed)}, "
                             f"not {result[key]!r}")
    return result


DESIGNS: Mapping[str, str] = registry.EntryView(lambda e: e.factory)
"""Registered designs (``vpmu.vpmu.registry``): name -> "module:Class", imported when first
used."""


def make_design(spec: str | DesignSpec) -> Design:
    """Build the design a spec names (the one place design names are resolved)."""
    s = DesignSpec.parse(spec) if isinstance(spec, str) else spec
    target = DESIGNS.get(s.name)
    if target is None:
        raise ValueError(f"design must be one of {sorted(DESIGNS)}, not {s.name!r}")
    design: Design = resolve(target)(dict(s.options))
    return design


def instant(value: object) -> Gen:
    """A kernel op that takes no simulated time and returns ``value``."""
    yield from ()
    return value


@dataclass(frozen=True)
class DesignInfo:
    """What ``vpmu designs`` shows of a design: its one-line summary and its options as
    ``key -> (default, choices)`` (no choices for a boolean or free value)."""

    name: str
    summary: str
    options: dict[str, tuple[object, tuple[str, ...]]]


def design_info(name: str) -> DesignInfo:
    """The summary (the design module's first docstring line) and options of a design."""
    found = registry.entry(name)
    if found is None:
        raise ValueError(f"design must be one of {sorted(DESIGNS)}, not {name!r}")
    module = resolve(found.factory.partition(":")[0])
    summary = (module.__doc__ or name).strip().splitlines()[0].replace("``", "")
    choices, defaults = found.choices, found.defaults
    return DesignInfo(name, summary, {k: (v, tuple(choices.get(k, ()))) for k, v in
                                      defaults.items()})


__all__ = ["DESIGNS", "KVM_REQ_PMI", "KVM_REQ_PMU", "Design", "DesignInfo", "DesignSpec", "Gen",
           "NoGuestContext", "VcpuBase", "VcpuLifecycle", "coerce_options", "design_info",
           "instant", "make_design"]
