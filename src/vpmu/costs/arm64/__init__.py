"""The Arm presets' cost tables: host, KVM and guest numbers and their sources. The host and
guest tables are shared by every Arm preset; the KVM table's world switch depends on whether
the preset's cores have VHE (``vpmu.costs.arm64.kvm``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.arch.arm64.presets import ARM_PRESETS
from vpmu.costs.arm64.guest import GUEST_COSTS
from vpmu.costs.arm64.host import host_table
from vpmu.costs.arm64.kvm import VHE_PRESETS, kvm_table
from vpmu.costs.arm64.sources import SOURCES
from vpmu.costs.preset import PresetCosts

_HOST = host_table()

ARM_COSTS: Mapping[str, PresetCosts] = MappingProxyType({
    p.name: PresetCosts(host=_HOST, kvm=kvm_table(p.name), guest=GUEST_COSTS,
                        sources=SOURCES, kvm_nvhe=kvm_table(p.name, vhe=False)
                        if p.name in VHE_PRESETS else None)
    for p in ARM_PRESETS})
"""The cost table of every Arm preset, in preset order."""
