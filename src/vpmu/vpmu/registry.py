"""The design registry: every folder under ``vpmu.vpmu.designs`` with an ``entry.py`` is a
design, and its ``ENTRY`` says everything the rest of the lab needs to know about it.

A new design is a new folder (its code and its ``entry.py``) and nothing else: the command
line lists it, specs resolve it, the conformance suites run under it with the expectations it
declares, and the scenario runner applies its mixing rule, all from the entry. Discovery runs
on first use, not at import (a design's package imports this layer's interfaces).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from vpmu.arch.lazy import resolve

T = TypeVar("T")


@dataclass(frozen=True)
class DesignEntry:
    """One design as the registry knows it."""

    name: str
    """The name specs use (``--design NAME:key=value``)."""
    order: int
    """Where it is listed (``vpmu designs``, the conformance sweep)."""
    factory: str
    """``module:Class`` of the design, imported when a VM first uses it."""
    arches: tuple[str, ...]
    """The architectures whose hosts it runs on (``PmuCaps.arch``): its vCPUs implement that
    architecture's guest access (x86: ``vpmu.vpmu.x86.access.X86GuestAccess``)."""
    defaults: Mapping[str, object] = field(default_factory=dict)
    """Its options and their typed defaults (``--design NAME:key=value`` sets them), in the
    order ``vpmu designs`` lists them and results report them."""
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """The values a string option may take, where they are a closed set."""
    host_requirement: str = ""
    """``module:function`` of ``(host PMU caps) -> str``: what the host lacks for this
    design ("" if nothing), checked when a VM is created; "" for no requirement."""
    conformance: Mapping[str, object] = field(default_factory=dict)
    """What the design documents as different from bare metal: keyword arguments of the
    conformance suites' ``Expectations`` (``vpmu.guest.conformance``)."""
    conformance_cases: tuple[tuple[str, str], ...] = ()
    """(design spec, preset) pairs the test suite runs every conformance suite under: the
    design's own regression matrix, options included."""
    host_mode: str | None = None
    """How the host's KVM runs this design's vPMUs (``perf``: perf-backed, ``mediated``: a
    module parameter for every VM); VMs whose designs have different modes cannot share a
    host. None: no PMU, no constraint."""
    exclusive_reason: str = ""
    """Why a design with its own ``host_mode`` excludes the others (for the error)."""
    default: bool = False
    """The design a VM gets when the scenario names none."""
    pmu_disabled: bool = False
    """What a VM is after ``KVM_CAP_PMU_CAPABILITY(KVM_PMU_CAP_DISABLE)``."""


@functools.cache
def design_entries() -> tuple[DesignEntry, ...]:
    """Every registered design, in listing order."""
    package = importlib.import_module("vpmu.vpmu.designs")
    entries = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.ispkg:
            module = importlib.import_module(f"{package.__name__}.{info.name}.entry")
            entries.append(module.ENTRY)
    return tuple(sorted(entries, key=lambda e: (e.order, e.name)))


class EntryView(Mapping[str, T]):
    """Design name -> ``of(entry)`` for every registered design, in listing order, read
    from the registry on each access (so a module can hold one at import time)."""

    def __init__(self, of: Callable[[DesignEntry], T]) -> None:
        self._of = of

    def __getitem__(self, name: str) -> T:
        found = entry(name)
        if found is None:
            raise KeyError(name)
        return self._of(found)

    def __iter__(self) -> Iterator[str]:
        return (e.name for e in design_entries())

    def __len__(self) -> int:
        return len(design_entries())


def entry(name: str) -> DesignEntry | None:
    """The entry of design ``name``, or None."""
    return next((e for e in design_entries() if e.name == name), None)


def designs_for(arch: str) -> tuple[DesignEntry, ...]:
    """The designs that run on hosts of ``arch``, in listing order."""
    return tuple(e for e in design_entries() if arch in e.arches)


def check_arch(name: str, arch: str) -> None:
    """Refuse design ``name`` on a host of ``arch`` if it does not run there."""
    found = entry(name)
    if found is not None and arch not in found.arches:
        supported = ", ".join(found.arches)
        raise ValueError(f"design {name!r} runs on {supported} hosts, not on an {arch} host")


def host_refusal(name: str, host_caps: object) -> str:
    """What the host lacks for design ``name`` ("" if nothing, or if it has no
    requirement)."""
    found = entry(name)
    if found is None or not found.host_requirement:
        return ""
    check: Callable[[object], str] = resolve(found.host_requirement)
    return check(host_caps)


def default_design() -> str:
    """The name of the design a VM gets by default."""
    return next(e.name for e in design_entries() if e.default)


def pmu_disabled_design() -> str:
    """The name of the design that models a VM whose PMU is disabled."""
    return next(e.name for e in design_entries() if e.pmu_disabled)


def mix_conflict(earlier: list[str], name: str) -> tuple[str, str] | None:
    """(the other design, why) if design ``name`` cannot share a host with VMs of the
    designs ``earlier``, else None."""
    mine = entry(name)
    if mine is None or mine.host_mode is None:
        return None
    for other_name in earlier:
        other = entry(other_name)
        if other is not None and other.host_mode not in (None, mine.host_mode):
            return other.name, mine.exclusive_reason or other.exclusive_reason
    return None
