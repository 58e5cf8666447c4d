"""What a guest's PMU exposes to the host, accumulated as the run goes: leaks (seed 003,
docs/sources.md) and
pollution (``vpmu.metrics.mediated`` has the vocabulary and the sections' keys)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from vpmu.metrics.timeline import HOST_MODES, CpuTimeline
from vpmu.metrics.units import ns
from vpmu.trace import CounterRead, LbrRead

MAX_OBSERVATIONS = 100
"""Leak observations listed in full; the count and per-guest totals cover all of them."""


class Leaks:
    """Guest-produced non-zero counter values host tasks read with RDPMC, and host perf
    samples whose LBR stack held guest branches: all counted, the first ``MAX_OBSERVATIONS``
    in time order kept (a few more between trims)."""

    def __init__(self) -> None:
        self.count = 0
        self.by_guest: Counter[str] = Counter()
        self.first: list[tuple[int, int, int, CounterRead | LbrRead]] = []
        """(t_ps, cpu, arrival, read): sorting these is the stable sort by (t_ps, cpu)."""

    def fixed(self) -> int:
        """What a repeated period must leave alone to be added in bulk: the observations
        (the first ones are kept, not summed; ``vpmu.metrics.period``)."""
        return self.count

    def feed(self, r: CounterRead) -> None:
        """One RDPMC read: a leak if a guest left a non-zero value."""
        if not r.origin or r.value == 0:
            return
        self._observe(r, r.origin)

    def lbr(self, r: LbrRead) -> None:
        """One host sample's branch stack: a leak if it held guest-mode records."""
        if r.guest_records > 0:
            self._observe(r, r.guest)

    def _observe(self, r: CounterRead | LbrRead, guest: str) -> None:
        self.first.append((r.t_ps, r.cpu, self.count, r))
        self.count += 1
        self.by_guest[guest] += 1
        if len(self.first) >= 2 * MAX_OBSERVATIONS:
            self.first = sorted(self.first)[:MAX_OBSERVATIONS]

    def leaks(self) -> dict[str, Any]:
        """The section."""
        seen = [r for _, _, _, r in sorted(self.first)[:MAX_OBSERVATIONS]]
        return {
            "count": self.count,
            "by_guest": dict(sorted(self.by_guest.items())),
            "observations": [_observation(r) for r in seen],
            "truncated": self.count > MAX_OBSERVATIONS,
        }


def _observation(r: CounterRead | LbrRead) -> dict[str, Any]:
    """One leak as the section lists it: an RDPMC read of a counter, or (path "lbr") a host
    perf sample whose branch stack held ``value`` guest records (no counter)."""
    if isinstance(r, CounterRead):
        return {"t_ns": ns(r.t_ps), "cpu": r.cpu, "observer": r.task, "path": "rdpmc",
                "counter": r.ecx, "value": r.value, "guest": r.origin}
    return {"t_ns": ns(r.t_ps), "cpu": r.cpu, "observer": f"perf event {r.event}",
            "path": "lbr", "counter": None, "value": r.guest_records, "guest": r.guest}


class Pollution:
    """Host code while a guest's enabled selectors sat on the CPU: a ``Timelines`` listener."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], list[int]] = {}
        """(cpu, guest) -> [host ps, counting ps]."""
        self.stretch: dict[int, tuple[int, int]] = {}
        """cpu -> (end, length) of its latest unbroken stretch."""
        self.worst = 0

    def fixed(self) -> tuple[Any, ...]:
        """What a repeated period must leave alone to be added in bulk: all of it (its
        stretches hold maxima, not sums; ``vpmu.metrics.period``)."""
        return (tuple((k, *v) for k, v in self.rows.items()), tuple(self.stretch.items()),
                self.worst)

    def segment(self, tl: CpuTimeline, start_ps: int, end_ps: int, in_context: bool) -> None:
        """Count the segment if it is host code with enabled guest selectors."""
        sel, mode = tl.sel, tl.mode
        if (sel is None or not sel.enabled or mode is None or mode.mode not in HOST_MODES
                or end_ps <= start_ps):
            return
        key = (tl.cpu, f"{sel.vm}/vcpu{sel.vcpu}")
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0, 0]
        span = end_ps - start_ps
        row[0] += span
        row[1] += span if sel.counting else 0
        last_end, length = self.stretch.get(tl.cpu, (-1, 0))
        length = length + span if start_ps == last_end else span
        self.stretch[tl.cpu] = (end_ps, length)
        self.worst = max(self.worst, length)

    def pollution(self) -> dict[str, Any]:
        """The section."""
        rows = self.rows
        return {
            "host_ns": ns(sum(r[0] for r in rows.values())),
            "counting_ns": ns(sum(r[1] for r in rows.values())),
            "by_cpu": [{"cpu": cpu, "guest": guest, "host_ns": ns(h), "counting_ns": ns(c)}
                       for (cpu, guest), (h, c) in sorted(rows.items()) if h],
            "worst_ns": ns(self.worst),
        }
