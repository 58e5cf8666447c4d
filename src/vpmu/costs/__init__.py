"""One cost table per CPU preset: host, KVM and guest costs together, each number with its
source.

``COSTS[preset]`` is a ``PresetCosts``: ``host`` (host-kernel work, ``CostTable``), ``kvm``
(KVM's own work per VM-exit, ``KvmCosts``), ``guest`` (the guest Linux kernel's own code,
``GuestCosts``) and ``sources`` (where each number comes from). Data only: this layer sits
beside ``vpmu.uapi`` and imports only ``vpmu.arch`` (the presets' clocks and counters).
``vpmu.host.costs``, ``vpmu.vpmu.costs`` and ``vpmu.guest.linux.costs`` are views of it.

Each architecture builds its presets' tables in its own module (``vpmu.costs.x86``); adding
an architecture adds its module and one entry below.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.arch.presets import PRESETS
from vpmu.costs.arm64 import ARM_COSTS
from vpmu.costs.preset import PresetCosts
from vpmu.costs.values import number_name, numbers
from vpmu.costs.x86 import X86_COSTS

COSTS: Mapping[str, PresetCosts] = MappingProxyType({**X86_COSTS, **ARM_COSTS})
"""The cost table of every built-in preset, by preset name."""


def preset_costs(preset_name: str) -> PresetCosts:
    """The cost table of a preset; the error lists the valid names."""
    try:
        return COSTS[preset_name]
    except KeyError:
        raise ValueError(
            f"preset must be one of {sorted(COSTS)}, not {preset_name!r}") from None


def part_sources(part: str, arch: str = "x86") -> Mapping[str, str]:
    """Where each number of one part (``"host"``, ``"kvm"``, ``"guest"``) of ``arch``'s
    presets comes from: by field name, or by ``field[key]`` where the keys of a mapping field
    have sources of their own. Sources are per preset (``COSTS[name].source``), but the
    presets of one architecture give a number the same reason, so the first one's stand for
    all."""
    first = next(c for name, c in COSTS.items() if PRESETS[name].caps.arch == arch)
    table = getattr(first, part)
    return MappingProxyType({
        name: first.source(f"{part}.{name}")
        for name in dict.fromkeys(f if f"{part}.{f}" in first.sources else number_name(f, k)
                                  for f, k, _ in numbers(table))})


__all__ = ["COSTS", "PresetCosts", "part_sources", "preset_costs"]
