"""One preset's cost table: host, KVM and guest costs together, and where each number comes
from.

A number is named ``<part>.<field>`` or ``<part>.<field>[<key>]`` (``host.tick_cycles``,
``kvm.exit_handler_cycles[CPUID]``). Its source is the entry under that name or, for a
mapping's number, under its field's name when one text covers every key. The table refuses to
be built with a number that has no source or a source that names no number, so a new cost
cannot arrive without saying where it comes from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from vpmu.costs.guest import GuestCosts
from vpmu.costs.host import CostTable
from vpmu.costs.kvm import KvmCosts
from vpmu.costs.values import number_fields, number_name, numbers

PARTS = ("host", "kvm", "guest")
"""The parts of a preset's table, in the order the docs list them."""

SOURCE_KINDS = ("cited", "derived", "fitted", "estimate")
"""How a source entry starts (``"<kind>: ..."``): a published figure used as it is; arithmetic
on published figures or on other entries (which it names); a value chosen so that the model
reproduces a published measurement; an assumption, with its reasoning."""


@dataclass(frozen=True, slots=True)
class PresetCosts:
    """Everything one CPU preset's work costs, and each number's source."""

    host: CostTable
    """Host-kernel work (``vpmu.host``: perf, scheduler, interrupts, instructions)."""
    kvm: KvmCosts | None
    """KVM's own work per VM-exit (``vpmu.machine``, ``vpmu.vpmu``); None on an architecture
    whose VMs are not modelled (every built-in preset has one today), where a VM is
    refused."""
    guest: GuestCosts
    """The guest Linux kernel's own code (``vpmu.guest.linux``)."""
    sources: Mapping[str, str]
    """Where each number comes from, by number name (see the module docstring)."""
    kvm_nvhe: KvmCosts | None = None
    """KVM's costs when the host runs nVHE on a preset whose cores have VHE (arm64's
    ``[host] vhe = false``, ``kvm-arm.mode=nvhe``): the same numbers with the nVHE world
    switch (``vpmu.costs.arm64.kvm``); None where the preset has only one mode."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        for name in self.number_names():
            self.source(name)
        known = set(self.number_names()) | set(self._field_names())
        for name, text in self.sources.items():
            if name not in known:
                raise ValueError(f"sources[{name!r}] names no number of this table")
            if text.split(":", 1)[0] not in SOURCE_KINDS:
                raise ValueError(f"sources[{name!r}] must start with one of "
                                 f"{[k + ':' for k in SOURCE_KINDS]}, not {text[:20]!r}")

    def numbers(self) -> Iterator[tuple[str, int | Fraction]]:
        """Every number of the table by name, host then KVM then guest, in field order."""
        for part in self.parts:
            for field, key, value in numbers(getattr(self, part)):
                assert isinstance(value, int | Fraction)   # the parts refuse anything else
                yield f"{part}.{number_name(field, key)}", value

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts this table has (``PARTS`` less ``kvm`` where it has none)."""
        return tuple(p for p in PARTS if getattr(self, p) is not None)

    def number_names(self) -> tuple[str, ...]:
        """The names of every number of the table."""
        return tuple(name for name, _ in self.numbers())

    def source(self, number: str) -> str:
        """Where ``number`` comes from: its own entry, else its field's entry."""
        field = number.split("[", 1)[0]
        text = self.sources.get(number, self.sources.get(field))
        if text is None:
            raise ValueError(f"{number} has no source entry")
        return text

    def _field_names(self) -> Iterator[str]:
        for part in self.parts:
            yield from (f"{part}.{f}" for f in number_fields(getattr(self, part)))
