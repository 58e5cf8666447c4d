"""Each CPU's state over time, swept record by record: the mode it runs in (``ModeChange``),
the guest selectors left enabled on it (``GuestSelectors``) and whether a mediated guest's
PMU context is on it (``PmuContext``).

Vocabulary (docs/guide/README.md, "Metrics"):

- A CPU is in a mode from its change until its next one; before its first change it is in
  none (nothing is counted).
- *guest context*: ``[load, put end)`` on one CPU, from a ``PmuContext`` "guest" record's
  ``t_ps`` to the next "host" record's ``t_ps + cost_ps`` (the end of the run if no put
  follows). A load while loaded and a put while the host's context is on change nothing;
  contexts that touch or overlap (a put that ends at or after the next load) are one, and
  each context has an index (``gap``), counted per CPU.

The sweep needs each CPU's records of these kinds in time order, which is how a run emits
them: every one is an instant, emitted at the simulated time it happens. A record that goes
back in time on its CPU is a RecordOrderError (the metrics would be wrong, not late). So the
state of ``[t, next record)`` is known when the next record arrives: the timeline hands each
such *segment* to its listeners, and they fold it in; nothing is kept but the current state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Protocol

from vpmu.metrics.period import shift_times
from vpmu.trace import GuestSelectors, ModeChange, PmuContext

HOST_MODES = frozenset({"host-user", "host-kernel", "in-kvm"})
"""``vpmu.host.modes.Mode`` values that are host code (metrics may not import ``vpmu.host``)."""


class RecordOrderError(RuntimeError):
    """A CPU's instant records arrived out of time order: the model broke the invariant the
    streamed metrics rely on (or hand-made records were not sorted)."""


class Listener(Protocol):
    """Folds in each segment of every CPU's timeline."""

    def segment(self, tl: CpuTimeline, start_ps: int, end_ps: int, in_context: bool) -> None:
        """``[start_ps, end_ps)`` of ``tl.cpu`` held ``tl``'s current state (mode, selectors,
        context ``tl.gap`` if ``in_context``). Segments of a CPU come in time order and tile
        its time from its first record; some are empty (two records at one time)."""
        ...


class CpuTimeline:
    """One CPU's current state and the time it holds from (``t``)."""

    __slots__ = ("cpu", "ctx_end", "gap", "listeners", "loaded", "mode", "sel", "t")

    def __init__(self, cpu: int, t_ps: int, listeners: tuple[Listener, ...]) -> None:
        self.cpu = cpu
        self.t = t_ps
        self.listeners = listeners
        self.mode: ModeChange | None = None
        self.sel: GuestSelectors | None = None
        self.loaded = False
        """A load is in force (no put since)."""
        self.ctx_end = -1
        """Without a load in force: the end of the current context's latest put (the
        context lasts until then; a load at or before it continues the context)."""
        self.gap = -1
        """The current (or last) guest context's index on this CPU."""

    def advance(self, t_ps: int) -> None:
        """Hand ``[self.t, t_ps)`` to the listeners, split where a put's end falls in it."""
        start = self.t
        if t_ps < start:
            raise RecordOrderError(f"CPU {self.cpu}: a record at {t_ps} ps after one at "
                                   f"{start} ps (each CPU's instant records must come in "
                                   "time order)")
        end = self.ctx_end
        if not self.loaded and start < end < t_ps:
            self._hand(start, end, True)
            self._hand(end, t_ps, False)
        else:
            self._hand(start, t_ps, self.loaded or start < end)
        self.t = t_ps

    TIMES: ClassVar[tuple[str, ...]] = ("t", "ctx_end", "mode", "sel")
    """The state that holds times (``vpmu.metrics.period``)."""

    def mark(self) -> tuple[Any, ...]:
        """The state a repeated period may move: its times, then the context index."""
        return self.t, self.ctx_end, self.mode, self.sel, self.gap

    def shift(self, mark: tuple[Any, ...], periods: int, period_ps: int) -> None:
        """``periods`` more periods like the one since ``mark``: times that moved move
        ``periods`` periods later, the context index grows by as many steps."""
        shift_times(self, self.TIMES, mark[:4], periods * period_ps)
        self.gap += periods * (self.gap - mark[4])

    def _hand(self, start_ps: int, end_ps: int, in_context: bool) -> None:
        for listener in self.listeners:
            listener.segment(self, start_ps, end_ps, in_context)

    def context(self, r: PmuContext) -> None:
        """A load ("guest") or put ("host") at the current time."""
        if r.state == "guest" and not self.loaded:
            if r.t_ps > self.ctx_end:
                self.gap += 1
            self.loaded = True
        elif r.state == "host" and self.loaded:
            self.loaded = False
            self.ctx_end = max(self.ctx_end, r.t_ps + r.cost_ps)


class Timelines:
    """Every CPU's timeline, fed the records that change them (a ``RunMetrics`` part)."""

    def __init__(self, listeners: Iterable[Listener]) -> None:
        self.listeners = tuple(listeners)
        self.cpus: dict[int, CpuTimeline] = {}

    def _at(self, cpu: int, t_ps: int) -> CpuTimeline:
        tl = self.cpus.get(cpu)
        if tl is None:
            tl = self.cpus[cpu] = CpuTimeline(cpu, t_ps, self.listeners)
        else:
            tl.advance(t_ps)
        return tl

    def mode(self, r: ModeChange) -> None:
        """The CPU enters a mode."""
        self._at(r.cpu, r.t_ps).mode = r

    def selectors(self, r: GuestSelectors) -> None:
        """A guest's selectors are (or are no longer) enabled on the CPU."""
        self._at(r.cpu, r.t_ps).sel = r

    def context(self, r: PmuContext) -> None:
        """A mediated load or put on the CPU."""
        self._at(r.cpu, r.t_ps).context(r)

    def finish(self, end_ps: int) -> None:
        """The run ended: each CPU's last state holds until ``end_ps``."""
        for tl in self.cpus.values():
            tl.advance(max(end_ps, tl.t))


class ModeTime:
    """Time each task spent in each mode, from the CPUs' mode changes (task -> mode -> ps)."""

    TOTALS: ClassVar[tuple[str, ...]] = ("ps",)
    """Its fields, all sums (``vpmu.metrics.period.Totals``)."""

    def __init__(self) -> None:
        self.ps: dict[str, dict[str, int]] = {}

    def segment(self, tl: CpuTimeline, start_ps: int, end_ps: int, in_context: bool) -> None:
        """Add the segment to its mode's task."""
        m = tl.mode
        if m is not None:
            slot = self.ps.setdefault(m.task, {})
            slot[m.mode] = slot.get(m.mode, 0) + end_ps - start_ps
