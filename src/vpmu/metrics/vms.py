"""Each VM's own exits and PMIs, for the results' ``vms`` block: a scenario with several VMs
(different designs, or one VM profiled beside an unprofiled neighbour) is described VM by VM
as well as in the run's totals.

Keyed by the VM's name (unique in a scenario), as ``VmExit`` and ``GuestPmi`` records carry it.
Only sums are kept, so an idle fast-forward adds its skipped periods like every other total
(``vpmu.metrics.period.Totals``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from vpmu.metrics.units import ns, ranked
from vpmu.trace import GuestPmi, VmExit


class PerVm:
    """VM-exits by reason and their time, and guest PMIs and their handler time, per VM."""

    TOTALS: ClassVar[tuple[str, ...]] = ("exits", "exit_ps", "pmis", "pmi_ps")
    """Its fields, all sums (``vpmu.metrics.period.Totals``)."""

    def __init__(self) -> None:
        self.exits: dict[str, Counter[str]] = {}
        """VM name -> VMX reason -> exits."""
        self.exit_ps: Counter[str] = Counter()
        self.pmis: Counter[str] = Counter()
        self.pmi_ps: Counter[str] = Counter()
        """VM name -> the PMIs' handler latencies summed."""

    def exit(self, e: VmExit) -> None:
        """Count one exit for its VM."""
        self.exits.setdefault(e.vm, Counter())[e.reason] += 1
        self.exit_ps[e.vm] += e.cost_ps

    def pmi(self, p: GuestPmi) -> None:
        """Count one guest PMI for its VM."""
        self.pmis[p.vm] += 1
        self.pmi_ps[p.vm] += p.latency_ps

    def section(self, vm: str) -> dict[str, Any]:
        """One VM's exits (total, by reason, time) and PMIs (count, mean handler latency)."""
        by_reason = self.exits.get(vm, Counter())
        pmis = self.pmis[vm]
        return {"vm_exits": {"total": sum(by_reason.values()), "by_reason": ranked(by_reason),
                             "time_ns": ns(self.exit_ps[vm])},
                "guest_pmi": {"count": pmis, "handler_latency_mean_ns":
                              ns(self.pmi_ps[vm] / pmis) if pmis else None}}
