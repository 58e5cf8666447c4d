"""The hypervisor's view of the cost tables: what KVM's own work costs per VM-exit, per preset.

The numbers and their sources live in ``vpmu.costs`` (one table per preset, host, KVM and
guest together); this module keeps the names the hypervisor and its callers use.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.costs import COSTS, part_sources, preset_costs
from vpmu.costs.kvm import EXIT_REASONS as _EXIT_REASONS_BY_ARCH
from vpmu.costs.kvm import KvmCosts
from vpmu.costs.x86.kvm import PLAIN_EXIT_FITTED

EXIT_REASONS = _EXIT_REASONS_BY_ARCH["x86"]
"""The VMX exit reasons the model produces (names as KVM's trace prints them); SVM exits are
reported under the same names."""

KVM_COSTS: Mapping[str, KvmCosts] = MappingProxyType(
    {name: costs.kvm for name, costs in COSTS.items() if costs.kvm is not None})
"""KVM's costs for every built-in preset that has them (every one today, x86 and Arm; a
table's ``arch`` says whose exit reasons it prices)."""


def kvm_costs(preset_name: str, *, vhe: bool = True) -> KvmCosts:
    """The KVM cost table of a preset (``vhe=False``: of its host booted nVHE, where the
    preset's cores could run VHE); the error lists the valid names, or says that the
    preset's architecture has no KVM model yet."""
    costs = preset_costs(preset_name)
    found = costs.kvm if vhe or costs.kvm_nvhe is None else costs.kvm_nvhe
    if found is None:
        raise ValueError(f"preset {preset_name!r} has no KVM cost table: VMs on its "
                         "architecture are not modelled yet")
    return found


KVM_COST_SOURCES: Mapping[str, str] = part_sources("kvm")
"""Where every ``KvmCosts`` field of the x86 presets comes from, by field name
(``part_sources("kvm", "arm64")`` gives the Arm presets')."""

__all__ = ["EXIT_REASONS", "KVM_COSTS", "KVM_COST_SOURCES", "PLAIN_EXIT_FITTED", "KvmCosts",
           "kvm_costs"]
