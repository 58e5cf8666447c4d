"""A skipped period's effect on the accumulators, measured on one copy and applied to many.

An idle fast-forward (``vpmu.machine.ffwd``) emits a block of records that repeats ``times``
times, each copy one period later (``Trace.repeat``). Folding every copy costs as much as
running them. But once the metrics have seen one copy, every later copy meets the same state
shifted by a period, so it adds the same amount to every total and moves every time in the
state by the period. ``RunMetrics.repeat`` therefore folds two copies record by record (the
first brings the state in phase, the second is measured) and adds the rest in one step:

- *totals* (``Totals``): every integer sum of an additive accumulator (counts, picoseconds,
  per-key counters), added ``k`` times the second copy's difference;
- *times*: each CPU timeline's clock, context end and last mode / selectors record, and each
  CPU's fastpath bookkeeping, moved ``k`` periods later if the copy moved them; the context
  index grows by ``k`` times its step;
- *the rest* (``Fixed``: blind time per host event, pollution stretches, leak observations,
  which hold maxima and first-N lists, not sums): must not change over the measured copy;
  if it did, the remaining copies are folded one by one instead (exact, only slower).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

Sums = dict[tuple[Any, ...], int]
"""Every integer total of some accumulators, keyed by (accumulator index, field, keys...)."""


class Totals:
    """The additive fields of some accumulators: ``(accumulator, field names)`` pairs, each
    field an int or a (nested) dict of ints, and each only ever summed into."""

    def __init__(self, parts: Iterable[tuple[Any, tuple[str, ...]]]) -> None:
        self.parts = list(parts)

    def read(self) -> Sums:
        """Every total now."""
        out: Sums = {}
        for i, (acc, names) in enumerate(self.parts):
            for name in names:
                _flatten(getattr(acc, name), (i, name), out)
        return out

    def add(self, before: Sums, after: Sums, times: int) -> None:
        """Add ``times`` x (``after`` - ``before``) to every total."""
        for key, value in after.items():
            delta = (value - before.get(key, 0)) * times
            if delta:
                self._add_at(key, delta)

    def _add_at(self, key: tuple[Any, ...], delta: int) -> None:
        i, name, *path = key
        acc = self.parts[i][0]
        if not path:
            setattr(acc, str(name), getattr(acc, str(name)) + delta)
            return
        table = getattr(acc, str(name))
        for k in path[:-1]:
            table = table[k]
        table[path[-1]] = table.get(path[-1], 0) + delta


def _flatten(value: Any, key: tuple[Any, ...], out: Sums) -> None:
    if isinstance(value, int):
        out[key] = value
    else:
        for k, sub in value.items():
            _flatten(sub, (*key, k), out)


def shift_times(state: Any, fields: tuple[str, ...], before: tuple[Any, ...], dt: int) -> None:
    """Move each of ``state``'s time ``fields`` (an int of ps, or a record with ``t_ps``)
    ``dt`` later if it changed since ``before`` (its values then, in order)."""
    for name, old in zip(fields, before, strict=True):
        now = getattr(state, name)
        if now is old or now == old or now is None:
            continue
        setattr(state, name, now + dt if isinstance(now, int) else replace(now, t_ps=now.t_ps + dt))
