"""The ``lbr`` section: where a guest's LBR stack was saved and restored, how often and at
what cost (seed 002's question), accumulated from ``LbrContext`` records.

Keys (null when the run saved and restored no LBR stack):

- ``saves``, ``restores``: how many, in all;
- ``cycles``, ``time_ns``: what they took, in all;
- ``by_why``: per save point ("thread-switch", "vm-transition"): ``saves``, ``restores``,
  ``msrs`` (the MSR accesses), ``cycles``, and ``cycles_per_guest_s``: cycles per second of
  guest execution (the vCPUs' guest-user and guest-kernel time).
"""

from __future__ import annotations

from typing import Any, ClassVar

from vpmu.metrics.units import ns
from vpmu.trace import LbrContext


class LbrSwitches:
    """Saves and restores of guest LBR stacks, by save point."""

    TOTALS: ClassVar[tuple[str, ...]] = ("rows", "cost_ps")
    """Its fields, all sums (``vpmu.metrics.period.Totals``)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, int]] = {}
        """why -> {saves, restores, msrs, cycles}."""
        self.cost_ps = 0

    def feed(self, r: LbrContext) -> None:
        """Count one save or restore."""
        row = self.rows.get(r.why)
        if row is None:
            row = self.rows[r.why] = {"saves": 0, "restores": 0, "msrs": 0, "cycles": 0}
        row["saves" if r.op == "save" else "restores"] += 1
        row["msrs"] += r.msrs
        row["cycles"] += r.cycles
        self.cost_ps += r.cost_ps

    def section(self, guest_ps: int) -> dict[str, Any] | None:
        """The section, given the vCPUs' guest time (null if nothing was saved)."""
        if not self.rows:
            return None
        by_why = {why: {**row, "cycles_per_guest_s": round(row["cycles"] * 10**12 / guest_ps, 1)
                        if guest_ps else None}
                  for why, row in sorted(self.rows.items())}
        return {"saves": sum(r["saves"] for r in self.rows.values()),
                "restores": sum(r["restores"] for r in self.rows.values()),
                "cycles": sum(r["cycles"] for r in self.rows.values()),
                "time_ns": ns(self.cost_ps), "by_why": by_why}
