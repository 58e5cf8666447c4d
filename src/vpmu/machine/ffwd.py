"""Idle fast-forward: skip whole periods of a PMU-idle guest that repeat exactly.

A guest that computes with no counter counting spends its simulated time in a cycle of
periodic interrupts: the guest's LAPIC timer (an hrtimer, a VM-exit EXTERNAL_INTERRUPT, the
injection, the guest's tick handler) and the host's tick, both periodic, so the whole machine
repeats every hyper-period P = lcm(host tick, guest timer periods), shifted in time. Running
each tick through the model costs a fraction of a CPU millisecond; an hour costs minutes.

How it stays exact. At the start of each slice of the guest's main stream (the continuation
of the stream a VM-exit interrupted) the watcher may take a *mark*: a snapshot of every
scalar of the machine's state (``vpmu.machine.snapshot``), the event queue relative to now,
the RNG state, the records emitted so far and the interrupted slices' lengths. Three marks P
apart (two periods run step by step) are compared; the periods are alike when

- the queue holds the same entries at the same offsets, the RNG and choices did not move;
- every scalar is constant or changed by the same integer both periods (times, runtimes,
  ground truth, tick and sequence counters), and those can be written back;
- the second period's records are the first's shifted by P, and the slices were as long;
- the explicit conditions of :func:`quiet` held at each mark: one live task (the vCPU),
  the CPU's PMU observes nothing (no counter counts, no branch is recorded), no request,
  injection or handler pending.

The main stream is left out of that comparison, with the ground truth it feeds: its counts
change no timing, exit or record (nothing counts, the interrupts come from timers), only
the stream itself and the truth. A skip replays it (``vpmu.machine.ffwd_stream``) with the
arithmetic step by step applies, and credits the truth with what the skipped slices did
(``account_truth``), so both are bit-identical. A skip is bounded by the run's horizon
(``Environment.horizon_ps``) and by the stream's end (it stops before a period in which a
slice would not be interrupted); the remaining periods run step by step (as does any
period a condition rejects).

Choice point: :func:`quiet` is the one place that says a period may touch PMU state; a
design whose idle exits did would fail it or the snapshot comparison, and runs step by step.
``fast_forward=False`` on ``vpmu.scenario.run.build`` (``--no-fast-forward``) turns it off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from math import lcm
from typing import TYPE_CHECKING, Any

from vpmu.host.cpu import account_truth
from vpmu.host.task import Task, TaskState
from vpmu.machine.ffwd_stream import advance
from vpmu.machine.snapshot import Leaf, Path, snapshot
from vpmu.sim import Handle
from vpmu.workloads.streams import Stream

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.machine import Host
    from vpmu.machine.vcpu import Vcpu
    from vpmu.trace import Record

BACKOFF_MAX = 64
"""After a failed comparison, periods to wait before the next (doubling up to this)."""

Truth = dict[tuple[str, str], int]


@dataclass
class _Mark:
    """The machine at the start of one main-stream slice."""

    t_ps: int
    state: dict[Path, Leaf]
    truth: Truth
    """The task's ground truth less what the main stream did since the first mark."""
    queue: list[tuple[int, int, str]]
    rng: Any
    choices: int
    queued: int
    """Entries the event queue ever held (``Environment.entries_queued``)."""
    events: int
    """Events the model took so far (``Environment.events_processed``)."""
    records: int
    stream: Stream
    slices: list[int] = field(default_factory=list)
    """The interrupted main-stream slices' lengths in the period this mark ends."""


class _Window:
    """The watcher's trace sink: the records emitted while marks are taken, else none."""

    def __init__(self) -> None:
        self.records: list[Record] | None = None

    def __call__(self, record: Record) -> None:
        if self.records is not None:
            self.records.append(record)

    def repeat(self, block: Sequence[Record], times: int, shift_ps: int) -> None:
        """A skip's periods (``Trace.repeat``): nothing to keep, since a skip ends the marks
        (``_skip`` closes the window first; taking them copy by copy would cost the skip's
        length in time and memory)."""


class IdleFastForward:
    """The watcher ``Host.ffwd`` calls at each guest stream slice (see the module doc)."""

    def __init__(self, host: Host, vcpus: list[Vcpu]) -> None:
        self.host, self.vcpus = host, vcpus
        periods = [v.timer_period_ps for v in vcpus if v.timer_period_ps]
        self.period_ps = lcm(host.tick_ps, *periods)
        """The hyper-period every mark is apart."""
        self.skips = 0
        """Fast-forwards done."""
        self.periods_skipped = 0
        """Periods they skipped in all."""
        self._marks: list[_Mark] = []
        self._window = _Window()
        """The records emitted since the first mark, while marks are being taken (nothing is
        kept between attempts): the trace itself keeps none."""
        host.trace.subscribe(self._window)
        self._chain: Stream | None = None
        self._slices: list[int] = []
        self._slice_t0 = 0
        self._slice_main = False
        self._backoff = 1
        self._not_before = 0

    def __repr__(self) -> str:
        return f"IdleFastForward(period_ps={self.period_ps}, skips={self.skips})"

    def _clear_marks(self) -> None:
        self._marks.clear()
        self._window.records = None

    # -- the hooks (vpmu.host.cpu.FastForward) ---------------------------------------------
    def segment_start(self, cpu: Pcpu, task: Task) -> None:
        """A slice starts; at a main-stream slice a mark is due every period."""
        now = self.host.env.now_ps
        self._slice_t0 = now
        self._slice_main = main = self._chain is not None and task.pending is self._chain
        if not main:
            return
        marks = self._marks
        if marks and now != marks[0].t_ps + len(marks) * self.period_ps:
            if now < marks[0].t_ps + len(marks) * self.period_ps:
                return
            self._clear_marks()
        if not marks and (now < self._not_before or not self._room(now)):
            return
        if not quiet(cpu, task, self.vcpus):
            self._clear_marks()
            return
        if not marks:
            self._window.records = []
        marks.append(self._mark(task))
        if len(marks) == 3:
            self._try_skip(task)
            self._clear_marks()

    def segment_end(self, cpu: Pcpu, task: Task, stream: Stream, rest: Stream | None) -> None:
        """A slice stopped: an interrupted main slice extends the chain; anything else
        interrupted starts a new one (and the period is not the idle cycle)."""
        if rest is None:
            if self._slice_main:
                self._chain = None
                self._clear_marks()
            return
        if self._slice_main and self._marks:
            self._slices.append(self.host.env.now_ps - self._slice_t0)
        else:
            self._clear_marks()
        self._chain = rest

    # -- marks and the skip ------------------------------------------------------------------
    def _mark(self, task: Task) -> _Mark:
        env, host = self.host.env, self.host
        assert task.pending is not None
        now = env.now_ps
        queue = [(t - now, prio, _describe(e)) for t, prio, e in env.queued()]
        roots = {"host": host, "vms": [v.vm for v in self.vcpus]}
        skip = frozenset({id(task.pending), id(task.truth), id(self)})
        base = self._marks[0].stream if self._marks else task.pending
        mark = _Mark(now, snapshot(roots, skip), _truth_less_main(task, base), queue,
                     env.rng.getstate(), len(env.choices), env.entries_queued,
                     env.events_processed, len(self._window.records or ()), task.pending,
                     self._slices)
        self._slices = []
        return mark

    def _try_skip(self, task: Task) -> None:
        m0, m1, m2 = self._marks
        linear = _linear(m0.state, m1.state, m2.state)
        truth = _truth_deltas(m0.truth, m1.truth, m2.truth)
        n = 0 if linear is None or truth is None else self._skippable(m0, m1, m2)
        counts, n = advance(dict(m2.stream.counts), m2.slices, self.host.preset.core_mhz, n)
        rest = Stream(m2.stream.name, counts, m2.stream.user_fraction)
        if n <= 0 or linear is None or truth is None or not _keys_known(task, m2.stream, rest):
            self._not_before = m2.t_ps + self._backoff * self.period_ps
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
            return
        self._backoff = 1
        self._skip(task, m1, m2, n, linear, truth, rest)

    def _room(self, now: int) -> bool:
        """The horizon leaves room for two periods of marks and one to skip."""
        horizon = self.host.env.horizon_ps
        return horizon is not None and horizon - now >= 3 * self.period_ps

    def _skippable(self, m0: _Mark, m1: _Mark, m2: _Mark) -> int:
        """How many periods after ``m2`` the horizon leaves, if the periods before it
        repeat exactly (0: they do not)."""
        env, period = self.host.env, self.period_ps
        if env.horizon_ps is None or not m2.slices or m1.slices != m2.slices:
            return 0
        if not (m0.queue == m1.queue == m2.queue and m0.rng == m1.rng == m2.rng
                and m0.choices == m2.choices
                and m1.queued - m0.queued == m2.queued - m1.queued
                and m1.events - m0.events == m2.events - m1.events):
            return 0
        if not self._records_repeat(m0, m1, m2):
            return 0
        return (env.horizon_ps - env.now_ps) // period

    def _records_repeat(self, m0: _Mark, m1: _Mark, m2: _Mark) -> bool:
        window = self._window.records or []
        first, second = window[m0.records:m1.records], window[m1.records:m2.records]
        return len(first) == len(second) and all(
            b.t_ps - a.t_ps == self.period_ps and replace(a, t_ps=b.t_ps) == b
            for a, b in zip(first, second, strict=True))

    def _skip(self, task: Task, m1: _Mark, m2: _Mark, n: int,
              linear: list[tuple[Leaf, int]], truth: Truth, rest: Stream) -> None:
        """Apply ``n`` periods at once: time and queue, every linear scalar, the ground
        truth, the main stream (replayed into ``rest``), the records."""
        env, trace = self.host.env, self.host.trace
        block: list[Record] = (self._window.records or [])[m1.records:m2.records]
        self._clear_marks()
        env.shift(n * self.period_ps, n * (m2.queued - m1.queued), n * (m2.events - m1.events))
        for leaf, delta in linear:
            assert leaf.setter is not None
            leaf.setter(leaf.value + n * delta)
        for key, delta in truth.items():
            task.truth[key] += n * delta
        account_truth(task.truth, task.guest, m2.stream, rest)
        task.pending = self._chain = rest
        trace.repeat(block, n, self.period_ps)
        self.skips += 1
        self.periods_skipped += n


def quiet(cpu: Pcpu, task: Task, vcpus: list[Vcpu]) -> bool:
    """The explicit conditions of an idle period (the choice point): the vCPU's thread is the
    host's only live task, its CPU's PMU observes nothing (no counter counts, no branch is
    recorded: an LBR would change every period), and the vCPU has nothing pending that would
    touch its PMU (a request, an NMI/PMI, a handler in progress). The stream runs wholly at
    one privilege level, so its truth is linear in what it did."""
    if cpu.hw.pmu.observed or task.pending is None or task.pending.user_fraction not in (
            None, 0, 1):
        return False
    if any(t is not task and t.state is not TaskState.DEAD for t in cpu.host.sched.tasks):
        return False
    mine = [v for v in vcpus if v.task is task]
    return len(mine) == 1 and not mine[0].requests and not mine[0].nmi_pending \
        and len(mine[0].frames) == 1


def _describe(event: object) -> str:
    """A queued entry as a mark compares it (what it runs, not when or which object)."""
    if isinstance(event, Handle):
        return getattr(event.callback, "__qualname__", type(event.callback).__name__)
    return type(event).__name__


def _truth_less_main(task: Task, base: Stream) -> Truth:
    """The task's ground truth less what its main stream did from ``base`` to now (the
    stream at one privilege level, so what its slices did adds up to ``base`` less now)."""
    assert task.pending is not None
    main: Truth = {}
    account_truth(main, task.guest, base, task.pending)
    return {k: v - main.get(k, 0) for k, v in task.truth.items()}


def _truth_deltas(a: Truth, b: Truth, c: Truth) -> Truth | None:
    """What each truth entry gained both periods (None: not the same twice, or new keys)."""
    if a.keys() != b.keys() or b.keys() != c.keys():
        return None
    deltas = {k: c[k] - b[k] for k in c}
    return deltas if all(b[k] - a[k] == d for k, d in deltas.items()) else None


def _keys_known(task: Task, stream: Stream, rest: Stream) -> bool:
    """The skipped slices add only to truth entries that exist (a new one would take its
    place in the dict's order where step by step puts it, which a skip cannot tell)."""
    main: Truth = {}
    account_truth(main, task.guest, stream, rest)
    return main.keys() <= task.truth.keys()


def _linear(a: dict[Path, Leaf], b: dict[Path, Leaf], c: dict[Path, Leaf]
            ) -> list[tuple[Leaf, int]] | None:
    """The integer leaves that moved by the same amount twice (with that amount); None if
    the three states differ otherwise (other keys, a value that moved unevenly, a moved
    value that cannot be written back)."""
    if a.keys() != b.keys() or b.keys() != c.keys():
        return None
    out = []
    for path, leaf in c.items():
        va, vb, vc = a[path].value, b[path].value, leaf.value
        if va == vb == vc:
            continue
        if type(vc) is not int or type(va) is not int or type(vb) is not int \
                or vb - va != vc - vb or leaf.setter is None:
            return None
        out.append((leaf, vc - vb))
    return out


def install(host: Host, vcpus: list[Vcpu]) -> IdleFastForward | None:
    """Watch ``vcpus`` for idle periods (one vCPU with a guest timer: the cycle modelled)."""
    if len(vcpus) != 1 or not vcpus[0].timer_period_ps:
        return None
    host.ffwd = watcher = IdleFastForward(host, vcpus)
    return watcher
