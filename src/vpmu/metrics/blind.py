"""Seed 000's blind spot (docs/sources.md), accumulated as the run goes: host code inside a guest
context after a host ``exclude_guest`` event opened on that CPU (``vpmu.metrics.mediated`` has the
vocabulary and the section's keys).

A ``Timelines`` listener: each segment of host code adds to the host time of every event
opened on its CPU (from its open on), and inside a guest context to its blind time, split
in-kvm / other and summed per context. The in-kvm part inside a fastpath ``VmExit`` is moved
to "fastpath": an exit's record comes when it ends, after the segments it covers, so each CPU
keeps the in-kvm blind pieces no later exit can still cover and the fastpath exits no later
piece can still fall in, and meets each newcomer with the other side (a few of each).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from vpmu.metrics.period import shift_times
from vpmu.metrics.timeline import HOST_MODES, CpuTimeline, RecordOrderError
from vpmu.metrics.units import ns
from vpmu.trace import PerfOpen, VmExit


class _Event:
    """One opened CPU-bound host exclude_guest event and its times so far (ps)."""

    __slots__ = ("fastpath", "gap", "gap_ps", "gaps", "host", "kvm", "open", "other", "rec",
                 "worst")

    def __init__(self, rec: PerfOpen) -> None:
        self.rec, self.open = rec, rec.t_ps
        self.host = self.kvm = self.other = self.fastpath = 0
        self.gap, self.gap_ps = -1, 0
        """The guest context the latest blind time fell in, and its blind time so far."""
        self.gaps = self.worst = 0

    def blind(self, gap: int, ps: int, in_kvm: bool) -> None:
        """``ps`` of blind time in guest context ``gap``."""
        if gap != self.gap:
            self.close_gap()
            self.gap = gap
        self.gap_ps += ps
        if in_kvm:
            self.kvm += ps
        else:
            self.other += ps

    def close_gap(self) -> None:
        """The current context has ended for this event: count it if it was blind."""
        if self.gap_ps:
            self.gaps += 1
            self.worst = max(self.worst, self.gap_ps)
            self.gap_ps = 0

    def section(self) -> dict[str, Any]:
        """The event's entry of the section (after ``close_gap``)."""
        ev, total = self.rec, self.kvm + self.other
        return {
            "cpu": ev.cpu, "event": ev.event, "name": ev.name, "opened_ns": ns(ev.t_ps),
            "host_ns": ns(self.host),
            "blind_ns": {"fastpath": ns(self.fastpath), "kvm": ns(self.kvm - self.fastpath),
                         "other": ns(self.other), "total": ns(total)},
            "blind_fraction": round(total / self.host, 6) if self.host else None,
            "worst_gap_ns": ns(self.worst), "gaps": self.gaps,
        }


class _Fastpath:
    """One CPU's in-kvm blind pieces and fastpath exit spans not yet met with each other."""

    __slots__ = ("exit_mark", "pieces", "spans", "union_end")

    def __init__(self) -> None:
        self.pieces: deque[tuple[int, int]] = deque()
        """In-kvm blind pieces that an exit not yet seen may still cover."""
        self.spans: deque[tuple[int, int]] = deque()
        """Fastpath exits (disjoint: each starts where the earlier ones end) that a piece
        not yet swept may still fall in."""
        self.exit_mark = -1
        """The latest exit's start: no later exit of this CPU starts before it."""
        self.union_end = -1

    def mark(self) -> tuple[Any, ...]:
        """The state a repeated period may move (``vpmu.metrics.period``)."""
        return self.exit_mark, self.union_end, tuple(self.pieces), tuple(self.spans)

    def shift(self, mark: tuple[Any, ...], periods: int, period_ps: int) -> None:
        """``periods`` more periods like the one since ``mark``: what it added moves later."""
        dt = periods * period_ps
        shift_times(self, ("exit_mark", "union_end"), mark[:2], dt)
        for queue, old in ((self.pieces, mark[2]), (self.spans, mark[3])):
            kept = set(old)
            moved = [(s + dt, e + dt) if (s, e) not in kept else (s, e) for s, e in queue]
            queue.clear()
            queue.extend(moved)


def _meet(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return max(a[0], b[0]), min(a[1], b[1])


class HostProfiling:
    """The ``host_profiling`` section, fed ``PerfOpen`` and ``VmExit`` records and the CPUs'
    timeline segments."""

    def __init__(self) -> None:
        self.events: dict[int, list[_Event]] = {}
        self.refused: list[PerfOpen] = []
        self.fastpath: dict[int, _Fastpath] = {}

    def fixed(self) -> tuple[Any, ...]:
        """What a repeated period must leave alone to be added in bulk: every event's times
        (blind gaps and maxima are not sums) and the refusals (``vpmu.metrics.period``)."""
        return len(self.refused), tuple(
            (ev.host, ev.kvm, ev.other, ev.fastpath, ev.gap, ev.gap_ps, ev.gaps, ev.worst)
            for evs in self.events.values() for ev in evs)

    def open(self, o: PerfOpen) -> None:
        """A perf event opened or refused: CPU-bound exclude_guest opens are measured."""
        if o.errno:
            self.refused.append(o)
        elif o.cpu >= 0 and not o.task and o.exclude_guest:
            self.events.setdefault(o.cpu, []).append(_Event(o))

    def exit(self, x: VmExit) -> None:
        """A VM-exit of ``[t_ps, t_ps + cost_ps)``; a fastpath one meets the pieces kept."""
        fp = self.fastpath.get(x.cpu)
        if fp is None:
            fp = self.fastpath[x.cpu] = _Fastpath()
        if x.t_ps < fp.exit_mark:
            raise RecordOrderError(f"CPU {x.cpu}: a VM-exit starting at {x.t_ps} ps after "
                                   f"one starting at {fp.exit_mark} ps")
        fp.exit_mark = x.t_ps
        while fp.pieces and fp.pieces[0][1] <= x.t_ps:
            fp.pieces.popleft()
        if not x.fastpath:
            return
        span = (max(x.t_ps, fp.union_end), x.t_ps + x.cost_ps)
        fp.union_end = max(fp.union_end, span[1])
        if span[0] < span[1]:
            for piece in fp.pieces:
                self._fastpath_time(x.cpu, *_meet(span, piece))
            fp.spans.append(span)

    def segment(self, tl: CpuTimeline, start_ps: int, end_ps: int, in_context: bool) -> None:
        """Host time, blind time and in-kvm blind pieces of one segment."""
        cpu = tl.cpu
        fp = self.fastpath.get(cpu)
        if fp is not None:
            while fp.spans and fp.spans[0][1] <= start_ps:
                fp.spans.popleft()
        events = self.events.get(cpu)
        mode = tl.mode
        if not events or mode is None or mode.mode not in HOST_MODES or end_ps <= start_ps:
            return
        in_kvm = mode.mode == "in-kvm"
        for ev in events:
            s = max(start_ps, ev.open)
            if s < end_ps:
                ev.host += end_ps - s
                if in_context:
                    ev.blind(tl.gap, end_ps - s, in_kvm)
        if in_context and in_kvm:
            if fp is None:
                fp = self.fastpath[cpu] = _Fastpath()
            piece = (start_ps, end_ps)
            for span in fp.spans:
                self._fastpath_time(cpu, *_meet(span, piece))
            fp.pieces.append(piece)

    def _fastpath_time(self, cpu: int, start_ps: int, end_ps: int) -> None:
        """``[start_ps, end_ps)`` (if not empty) was in-kvm blind time inside a fastpath
        exit: it counts for each event of the CPU from its open on."""
        for ev in self.events.get(cpu, ()):
            s = max(start_ps, ev.open)
            if s < end_ps:
                ev.fastpath += end_ps - s

    def section(self) -> dict[str, Any] | None:
        """The section, once the timelines have finished: see ``vpmu.metrics.mediated``."""
        opened = sorted((ev for evs in self.events.values() for ev in evs),
                        key=lambda ev: (ev.rec.cpu, ev.rec.event, ev.rec.t_ps))
        refused = sorted(self.refused, key=lambda o: (o.t_ps, o.cpu, o.event))
        if not opened and not refused:
            return None
        for ev in opened:
            ev.close_gap()
        # the whole host's: blind time over host time, summed over the events opened
        blind, host = sum(ev.kvm + ev.other for ev in opened), sum(ev.host for ev in opened)
        return {"events": [ev.section() for ev in opened],
                "refused": [{"t_ns": ns(o.t_ps), "cpu": o.cpu, "name": o.name,
                             "errno": o.errno} for o in refused],
                "blind_ns_total": ns(blind),
                "worst_gap_ns": ns(max((ev.worst for ev in opened), default=0)),
                "blind_fraction": round(blind / host, 6) if host else None}
