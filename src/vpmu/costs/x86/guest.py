"""The guest part of the x86 presets' cost tables: the guest Linux kernel's own code.

The kernel's paths are shared with the host's table and every architecture's
(``vpmu.costs.kernel.guest_table``); only udelay(1) is x86's own number here. Nothing in it is
per part, so every x86 preset shares one table.
"""

from __future__ import annotations

from vpmu.costs import kernel

UDELAY_1US_CYCLES = 2_400
"""udelay(1) in amd_pmu_wait_on_overflow: 1 us at 2.4 GHz (sources.py)."""

GUEST_COSTS = kernel.guest_table(UDELAY_1US_CYCLES)
"""The guest table of every x86 preset."""
