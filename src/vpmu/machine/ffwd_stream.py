"""The main stream over skipped periods: its counts as step by step would leave them.

Why the fast-forward (``vpmu.machine.ffwd``) replays the stream rather than comparing it:
an interrupted slice leaves ``floor(total * elapsed / duration)`` of each event done
(``Stream.remainder``), with ``duration`` itself floored from the cycles left, so the
per-slice done amounts of the smaller events flip between d and d + 1 every few hundred
periods. Those counts change no timing, exit or record (no counter counts; the interrupts
come from timers), so the periods repeat regardless, and the stream is replayed with the
same integer arithmetic instead.

The replay is exact and cheap: :func:`steady_periods` proves, with linear inequalities in
the period index, for how many periods every slice leaves exactly the amounts it leaves in
the first, and those periods are applied at once (each count drops by the same total every
period); a period it cannot vouch for is computed slice by slice, as ``Stream.remainder``
would. The replay stops before a period in which a slice would not be interrupted (the
stream would end inside it).
"""

from __future__ import annotations

from vpmu.arch import events as ev
from vpmu.sim import PS_PER_US, cycles_to_ps

Slice = tuple[list[int], list[int], int]
"""One slice: the counts at its start, the amounts it leaves done, its length (ps)."""


def advance(counts: dict[str, int], elapsed: list[int], mhz: int, periods: int
            ) -> tuple[dict[str, int], int]:
    """The counts after up to ``periods`` periods, each interrupting the stream after the
    slices ``elapsed`` (ps), and how many periods that is (fewer if the stream would end)."""
    keys = list(counts)
    values, cycles, done = [counts[k] for k in keys], keys.index(ev.CYCLES), 0
    while done < periods:
        slices = period_slices(values, cycles, elapsed, mhz)
        if slices is None:
            break
        total = _total(slices)
        step = min(max(steady_periods(slices, cycles, mhz), 1), periods - done)
        values = [v - step * t for v, t in zip(values, total, strict=True)]
        done += step
    return dict(zip(keys, values, strict=True)), done


def period_slices(values: list[int], cycles: int, elapsed: list[int], mhz: int
                  ) -> list[Slice] | None:
    """One period's slices from ``values``, as ``Stream.remainder`` computes them (index
    ``cycles`` holds the cycles); None if one would finish (its length reaches the stream's
    duration, as ``Hardware.start`` computes it)."""
    out: list[Slice] = []
    for e in elapsed:
        duration = max(cycles_to_ps(values[cycles], mhz), 1)
        if e >= duration:
            return None
        done = [v * e // duration for v in values]
        out.append((values, done, e))
        values = [v - d for v, d in zip(values, done, strict=True)]
    return out


def _total(slices: list[Slice]) -> list[int]:
    """The amounts one period leaves done, per event."""
    return [sum(col) for col in zip(*(done for _, done, _ in slices), strict=True)]


def steady_periods(slices: list[Slice], cycles: int, mhz: int) -> int:
    """How many periods in a row (from the first of ``slices``) each slice leaves exactly the
    same amounts done (0 if the bounds cannot vouch even for the first). In period p a slice
    starts at ``v - p * total`` of each event ``v``; with D its duration, ``D * mhz`` lies in
    ``(C * 10^6 - mhz, C * 10^6]`` for C cycles (``cycles_to_ps`` floors
    ``C * 10^6 / mhz``), so ``floor(v * e / D) == d`` and ``e < D`` hold when three
    inequalities linear in p do; each holds on an interval of p from 0."""
    per, total = PS_PER_US, _total(slices)
    dc = total[cycles]
    if dc <= 0:
        return 0
    bound: int | None = None
    for counts, done, e in slices:
        c0 = counts[cycles]
        rows = [(c0 * per - mhz - e * mhz, dc * per, False)]
        for v0, d, dv in zip(counts, done, total, strict=True):
            rows.append((v0 * e * mhz - d * c0 * per, dv * e * mhz - d * dc * per, False))
            rows.append(((d + 1) * (c0 * per - mhz) - v0 * e * mhz,
                         (d + 1) * dc * per - dv * e * mhz, True))
        for a, b, strict in rows:
            last = _last_p(a, b, strict)
            if last is not None:
                bound = last if bound is None else min(bound, last)
            if bound is not None and bound < 0:
                return 0
    return 1 << 62 if bound is None else bound + 1


def _last_p(a: int, b: int, strict: bool) -> int | None:
    """The last p >= 0 with ``a - b * p >= 0`` (``> 0`` if strict); None: every p; -1: none."""
    if a < 0 or (strict and a == 0):
        return -1
    if b <= 0:
        return None
    return (a - 1) // b if strict else a // b
