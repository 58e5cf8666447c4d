"""The guest part of the Arm presets' cost tables: the guest Linux kernel's own code on arm64.

The kernel's paths are shared with the host's table and every architecture's
(``vpmu.costs.kernel.guest_table``); only udelay(1) is Arm's own number here. One table for
every Arm preset.
"""

from __future__ import annotations

from vpmu.costs import kernel

UDELAY_1US_CYCLES = 1_000
"""udelay(1): 1 us at about 1 GHz; unused on Arm (sources.py)."""

GUEST_COSTS = kernel.guest_table(UDELAY_1US_CYCLES)
"""The guest table of every Arm preset."""
