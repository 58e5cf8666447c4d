"""The host's view of the cost tables: what each piece of host-kernel work costs, per preset.

The numbers and their sources live in ``vpmu.costs`` (one table per preset, host, KVM and
guest together); this module keeps the names the host and its callers use. Values are core
cycles of the preset except ``ipi_latency_ns`` (docs/costs.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.costs import COSTS, part_sources, preset_costs
from vpmu.costs.host import PERF_CALLS, CostTable

COST_TABLES: Mapping[str, CostTable] = MappingProxyType(
    {name: costs.host for name, costs in COSTS.items()})
"""The cost table of every built-in preset, by preset name."""


def cost_table(preset_name: str) -> CostTable:
    """The host cost table of a preset; the error lists the valid names."""
    return preset_costs(preset_name).host


COST_SOURCES: Mapping[str, str] = part_sources("host")
"""Where every ``CostTable`` field comes from, by field name."""

__all__ = ["COST_SOURCES", "COST_TABLES", "PERF_CALLS", "CostTable", "cost_table"]
