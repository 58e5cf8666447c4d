"""Lazy counting: a counter's value is a delta against the running segment's event totals.

While a CPU executes a ``Segment`` (a stream placed in time), a counting counter advances
linearly: after ``dt`` of the segment's ``duration_ps`` it has counted
``floor(total * dt / duration_ps)`` of its ``total`` for the segment. Exact integer arithmetic
gives the exact totals at the segment's end and lets the overflow instant be computed in
closed form, so a counter costs nothing while it runs and one kernel event when it overflows.

The counter-mask (CMASK), invert (INV) and edge (EDGE) qualifiers are applied on the rate
model (assumption, documented in docs/hardware.md): within a segment each cycle retires
``floor(r)`` or ``ceil(r)`` events with the fractional part spread evenly, ``r`` being the
per-cycle rate; CMASK=c counts the cycles with at least c events (INV: fewer than c), and
EDGE counts the rising edges of that condition, i.e. ``min(p, 1-p)`` of the cycles for a
condition true a fraction ``p`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from vpmu.workloads.streams import Stream

RING_KERNEL = 0
RING_USER = 3


@dataclass(frozen=True, slots=True)
class Segment:
    """A stream being executed from ``start_ps`` for ``duration_ps`` at privilege ``cpl``.

    ``cpl`` applies when the stream has no user/kernel split of its own.
    """

    stream: Stream
    start_ps: int
    duration_ps: int
    cpl: int
    seq: int
    """Distinguishes segments so cached per-segment totals are never reused by mistake."""

    @property
    def end_ps(self) -> int:
        """When the stream finishes."""
        return self.start_ps + self.duration_ps

    def ring_share(self, total: int, ring: int) -> int:
        """The part of ``total`` that happens at ``ring`` (RING_KERNEL, the OS bit's CPL 0,
        or RING_USER, the USR bit's CPL 1-3: SDM 21.2.1.1 and AMD APM 13.2.1)."""
        frac = self.stream.user_fraction
        if frac is None:
            return total if (ring == RING_USER) == (self.cpl != RING_KERNEL) else 0
        user = total * frac.numerator // frac.denominator
        return user if ring == RING_USER else total - user


@dataclass(frozen=True, slots=True)
class Qualifiers:
    """The event-select qualifiers that shape a count (SDM 20.2.1.1)."""

    cmask: int = 0
    inv: bool = False
    edge: bool = False

    @property
    def plain(self) -> bool:
        """No qualifier changes the count."""
        return self.cmask == 0 and not self.edge


def qualified_total(events: int, cycles: int, q: Qualifiers) -> int:
    """Apply CMASK/INV/EDGE to ``events`` spread over ``cycles`` (rate model above)."""
    if q.plain or cycles == 0:
        return events
    threshold = q.cmask or 1
    rate = Fraction(events, cycles)
    low = rate.numerator // rate.denominator
    frac_high = rate - low
    if threshold <= low:
        p = Fraction(1)
    elif threshold == low + 1:
        p = frac_high
    else:
        p = Fraction(0)
    if q.inv and q.cmask:
        p = 1 - p
    if q.edge:
        p = min(p, 1 - p)
    return int(p * cycles)


def count_at(total: int, duration_ps: int, elapsed_ps: int) -> int:
    """Events counted ``elapsed_ps`` into a segment whose counter total is ``total``."""
    if elapsed_ps >= duration_ps:
        return total
    return total * elapsed_ps // duration_ps


def time_to_reach(total: int, duration_ps: int, count: int) -> int | None:
    """Smallest elapsed time at which ``count_at`` reaches ``count``; None if never."""
    if count <= 0:
        return 0
    if count > total:
        return None
    return -(-count * duration_ps // total)
