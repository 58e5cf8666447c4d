"""The main stream over skipped periods: its counts as step by step would leave them.

Why the fast-forward (``vpmu.machine.ffwd``) replays the stream rather than comparing it:
an interrupted slice leaves ``floor(total * elapsed / duration)`` of each event done
(``Stream.remainder``), with ``duration`` itself floored from the cycles left, so the
per-slice done amounts of the smaller events flip between d and d + 1 every few hundred
periods. Those counts change no timing, exit or record (no counter counts; the interrupts
come from timers), so the periods repeat regardless, and the stream is replayed with the
same integer arithmetic instead.

The replay is exact and cheap. Each event is replayed on its own: only the cycles decide
a slice's duration, so given the cycles' trajectory the events are independent of one
another. For one event, linear inequalities in the period index (:func:`_bound`) prove for
how many periods every slice leaves exactly the amount it leaves in the first; those
periods are applied at once (the count drops by the same total every period), and a period
they cannot vouch for is computed slice by slice, as ``Stream.remainder`` would. The cycles
go first (:func:`_cycle_runs`): their runs fix every slice's duration and bound the other
events' runs; the replay stops before a period in which a slice would not be interrupted
(the stream would end inside it). An event whose rounding oscillates (a done amount near
an integer flips every few dozen periods) costs a few steps per flip, the others a few
steps in all.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpmu.arch import events as ev
from vpmu.sim import PS_PER_US, cycles_to_ps


@dataclass(frozen=True, slots=True)
class _Run:
    """Periods ``[start, end)`` in which every slice leaves the same cycles done."""

    start: int
    end: int
    cycles: tuple[int, ...]
    """The cycles left at each slice's start in period ``start``."""
    total: int
    """The cycles one period does (each slice's start drops by this every period)."""

    def starts(self, p: int) -> list[int]:
        """The cycles left at each slice's start in period ``p``."""
        return [c - (p - self.start) * self.total for c in self.cycles]


def advance(counts: dict[str, int], elapsed: list[int], mhz: int, periods: int
            ) -> tuple[dict[str, int], int]:
    """The counts after up to ``periods`` periods, each interrupting the stream after the
    slices ``elapsed`` (ps), and how many periods that is (fewer if the stream would end)."""
    runs = _cycle_runs(counts[ev.CYCLES], elapsed, mhz, periods)
    if not runs:
        return dict(counts), 0
    last = runs[-1]
    out = {k: _replay(v, runs, elapsed, mhz) for k, v in counts.items() if k != ev.CYCLES}
    out[ev.CYCLES] = last.cycles[0] - (last.end - last.start) * last.total
    return {k: out[k] for k in counts}, last.end


def _cycle_runs(cycles: int, elapsed: list[int], mhz: int, periods: int) -> list[_Run]:
    """The cycles' runs over up to ``periods`` periods, ending before a period in which a
    slice would reach the stream's duration (as ``Hardware.start`` computes it)."""
    runs: list[_Run] = []
    p = 0
    while p < periods:
        period = _cycle_period(cycles, elapsed, mhz)
        if period is None:
            break
        starts, done = period
        total = sum(done)
        rows = [(c * PS_PER_US - mhz - e * mhz, total * PS_PER_US, False)
                for c, e in zip(starts, elapsed, strict=True)]
        step = min(max(_bound(starts, total, starts, done, total, elapsed, mhz, rows), 1),
                   periods - p)
        runs.append(_Run(p, p + step, tuple(starts), total))
        cycles -= step * total
        p += step
    return runs


def _replay(value: int, runs: list[_Run], elapsed: list[int], mhz: int) -> int:
    """One event's count after the periods of ``runs``."""
    for run in runs:
        p = run.start
        while p < run.end and value:
            cycles = run.starts(p)
            starts, done = _event_period(value, cycles, elapsed, mhz)
            total = sum(done)
            step = max(_bound(cycles, run.total, starts, done, total, elapsed, mhz, []), 1)
            step = min(step, run.end - p)
            value -= step * total
            p += step
    return value


def _cycle_period(cycles: int, elapsed: list[int], mhz: int
                  ) -> tuple[list[int], list[int]] | None:
    """One period of the cycles from ``cycles``, as ``Hardware.start`` and
    ``Stream.remainder`` compute it: the cycles at each slice's start and each slice's done
    amount; None if a slice would reach the duration (the stream would end in it)."""
    starts, done = [], []
    for e in elapsed:
        duration = max(cycles_to_ps(cycles, mhz), 1)
        if e >= duration:
            return None
        starts.append(cycles)
        done.append(cycles * e // duration)
        cycles -= done[-1]
    return starts, done


def _event_period(value: int, cycles: list[int], elapsed: list[int], mhz: int
                  ) -> tuple[list[int], list[int]]:
    """One period of another event from ``value``: its count at each slice's start and each
    slice's done amount, the durations coming from the cycles at each slice's start."""
    starts, done = [], []
    for c, e in zip(cycles, elapsed, strict=True):
        starts.append(value)
        done.append(value * e // max(cycles_to_ps(c, mhz), 1))
        value -= done[-1]
    return starts, done


def _bound(cycles: list[int], dc: int, starts: list[int], done: list[int], dv: int,
           elapsed: list[int], mhz: int, rows: list[tuple[int, int, bool]]) -> int:
    """How many periods in a row (from the first) each slice leaves exactly the same amount
    ``done`` of an event (0 if the bounds cannot vouch even for the first). In period p a
    slice starts at ``v - p * dv`` of the event and ``C - p * dc`` cycles; with D its
    duration, ``D * mhz`` lies in ``(C * 10^6 - mhz, C * 10^6]`` (``cycles_to_ps`` floors
    ``C * 10^6 / mhz``), so ``floor(v * e / D) == d`` holds when two inequalities linear in
    p do; each holds on an interval of p from 0. ``rows`` adds more, as ``(a, b, strict)``
    for ``a - b * p >= 0`` (``> 0`` if strict)."""
    per = PS_PER_US
    if dc <= 0:
        return 0
    rows = list(rows)
    for c0, v0, d, e in zip(cycles, starts, done, elapsed, strict=True):
        rows.append((v0 * e * mhz - d * c0 * per, dv * e * mhz - d * dc * per, False))
        rows.append(((d + 1) * (c0 * per - mhz) - v0 * e * mhz,
                     (d + 1) * dc * per - dv * e * mhz, True))
    bound: int | None = None
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
