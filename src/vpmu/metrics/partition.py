"""The ``arm64.partition`` block: what a partitioned PMU's reservations cost the host's perf.

Folded from ``PmuPartition`` records (a vCPU's load took the guest's counters on a CPU, its
put gave them back):

- ``loads`` / ``puts``: the reservations and releases;
- ``reserved_counters``: the counters one reservation takes from the host (the guest's
  maximum and the cycle counter);
- ``reserved_ns``: CPU time during which some vCPU held a reservation (summed over CPUs; a
  reservation still held when the run ends counts to the end), and ``counter_ns_lost``: the
  same weighted by the counters reserved: counter-time host perf could not use;
- ``host_events_moved``: host events a reservation had to take off the guest's counters,
  ``host_events_lost``: those that found no other counter (a flexible event waits for its
  turn, a pinned one goes to ERROR state), ``pinned_warnings``: moved events that were
  pinned (the series' "Pinned host event squeezed out by KVM guest PMU partition").

The block is None without ``PmuPartition`` records (every design but ``partitioned``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from vpmu.metrics.units import ns
from vpmu.trace.records import PmuPartition


class PartitionUse:
    """The feed of ``PmuPartition`` records (a ``RunMetrics`` part)."""

    TOTALS: ClassVar[tuple[str, ...]] = ("loads", "puts", "reserved_ps", "counter_ps",
                                         "moved", "lost", "pinned")
    """Its fields, all sums (``vpmu.metrics.period.Totals``)."""

    def __init__(self) -> None:
        self.loads: dict[str, int] = {}
        self.puts: dict[str, int] = {}
        self.reserved_ps: dict[str, int] = {}
        self.counter_ps: dict[str, int] = {}
        self.moved: dict[str, int] = {}
        self.lost: dict[str, int] = {}
        self.pinned: dict[str, int] = {}
        self.held: dict[int, tuple[str, int, int]] = {}
        """CPU -> (vCPU, since, counters) of the reservation held there."""
        self.counters = 0

    def __repr__(self) -> str:
        return f"PartitionUse(loads={sum(self.loads.values())})"

    def feed(self, r: PmuPartition) -> None:
        """A load (reservation) or a put (release)."""
        task = f"{r.vm}/vcpu{r.vcpu}"
        if r.state == "guest":
            self.counters = r.reserved.bit_count()
            self.held[r.cpu] = (task, r.t_ps, self.counters)
            for acc, n in ((self.loads, 1), (self.moved, r.moved), (self.lost, r.lost),
                           (self.pinned, r.pinned)):
                acc[task] = acc.get(task, 0) + n
            return
        self.puts[task] = self.puts.get(task, 0) + 1
        self._release(r.cpu, r.t_ps)

    def _release(self, cpu: int, t_ps: int) -> None:
        held = self.held.pop(cpu, None)
        if held is None:
            return
        _held_until(self.reserved_ps, self.counter_ps, held, t_ps)

    def fixed(self) -> tuple[Any, ...]:
        """What is not a sum (``vpmu.metrics.period``)."""
        return tuple(sorted(self.held.items())), self.counters

    def section(self, tasks: Sequence[str], end_ps: int | None) -> dict[str, Any] | None:
        """The block for the vCPU threads ``tasks`` (None without reservations)."""
        if not self.loads:
            return None
        reserved, counter = dict(self.reserved_ps), dict(self.counter_ps)
        if end_ps is not None:
            for held in self.held.values():
                _held_until(reserved, counter, held, end_ps)

        def total(acc: dict[str, int]) -> int:
            return sum(acc.get(t, 0) for t in tasks)
        return {"loads": total(self.loads), "puts": total(self.puts),
                "reserved_counters": self.counters, "reserved_ns": ns(total(reserved)),
                "counter_ns_lost": ns(total(counter)), "host_events_moved": total(self.moved),
                "host_events_lost": total(self.lost), "pinned_warnings": total(self.pinned)}


def _held_until(reserved: dict[str, int], counter: dict[str, int],
                held: tuple[str, int, int], t_ps: int) -> None:
    """Add a reservation ``held`` (vCPU, since, counters) up to ``t_ps`` to the vCPU's
    reserved time and counter-time."""
    task, since, counters = held
    reserved[task] = reserved.get(task, 0) + t_ps - since
    counter[task] = counter.get(task, 0) + counters * (t_ps - since)
