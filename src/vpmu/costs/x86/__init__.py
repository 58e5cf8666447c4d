"""The x86 presets' cost tables: each preset's host, KVM and guest numbers and their sources."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.costs.preset import PresetCosts
from vpmu.costs.x86.guest import GUEST_COSTS
from vpmu.costs.x86.host import WRMSR_CYCLES, host_table
from vpmu.costs.x86.kvm import kvm_table
from vpmu.costs.x86.sources import SOURCES

X86_COSTS: Mapping[str, PresetCosts] = MappingProxyType({
    name: PresetCosts(host=host_table(name), kvm=kvm_table(name), guest=GUEST_COSTS,
                      sources=SOURCES)
    for name in WRMSR_CYCLES})
"""The cost table of every x86 preset, in preset order."""
