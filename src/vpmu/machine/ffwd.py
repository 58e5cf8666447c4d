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
  no counter of the CPU's PMU counts, no request, injection or handler pending.

The main stream is what a period changes non-linearly: each interrupted slice leaves
``floor(total * elapsed / duration)`` of each event done (``Stream.remainder``), and duration
is itself rounded from cycles. :func:`steady_periods` bounds, with linear inequalities in the
period index, how many periods keep every slice's done amounts exactly those of the next
period, so the skipped periods are those step by step would run, not an approximation. The
skip stops before the run's horizon (``Environment.horizon_ps``), and the remaining
periods run step by step (as does any period a condition rejects).

Choice point: :func:`quiet` is the one place that says a period may touch PMU state; a
design whose idle exits did would fail it or the snapshot comparison, and runs step by step.
``fast_forward=False`` on ``vpmu.scenario.run.build`` (``--no-fast-forward``) turns it off.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import lcm
from typing import TYPE_CHECKING, Any

from vpmu.arch import events as ev
from vpmu.host.task import Task, TaskState
from vpmu.machine.snapshot import Leaf, Path, snapshot
from vpmu.sim import PS_PER_US, Handle, cycles_to_ps
from vpmu.workloads.streams import Stream

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.machine import Host
    from vpmu.machine.vcpu import Vcpu
    from vpmu.trace import Record

BACKOFF_MAX = 64
"""After a failed comparison, periods to wait before the next (doubling up to this)."""


@dataclass
class _Mark:
    """The machine at the start of one main-stream slice."""

    t_ps: int
    state: dict[Path, Leaf]
    queue: list[tuple[int, int, str]]
    rng: Any
    choices: int
    queued: int
    """Entries the event queue ever held (``Environment.entries_queued``)."""
    records: int
    stream: Stream
    slices: list[int] = field(default_factory=list)
    """The interrupted main-stream slices' lengths in the period this mark ends."""


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
        self._chain: Stream | None = None
        self._slices: list[int] = []
        self._slice_t0 = 0
        self._slice_main = False
        self._backoff = 1
        self._not_before = 0

    def __repr__(self) -> str:
        return f"IdleFastForward(period_ps={self.period_ps}, skips={self.skips})"

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
            marks.clear()
        if not marks and now < self._not_before:
            return
        if not quiet(cpu, task, self.vcpus):
            marks.clear()
            return
        marks.append(self._mark(task))
        if len(marks) == 3:
            self._try_skip(cpu, task)
            marks.clear()

    def segment_end(self, cpu: Pcpu, task: Task, stream: Stream, rest: Stream | None) -> None:
        """A slice stopped: an interrupted main slice extends the chain; anything else
        interrupted starts a new one (and the period is not the idle cycle)."""
        if rest is None:
            if self._slice_main:
                self._chain = None
                self._marks.clear()
            return
        if self._slice_main and self._marks:
            self._slices.append(self.host.env.now_ps - self._slice_t0)
        else:
            self._marks.clear()
        self._chain = rest

    # -- marks and the skip ------------------------------------------------------------------
    def _mark(self, task: Task) -> _Mark:
        env, host = self.host.env, self.host
        assert task.pending is not None
        now = env.now_ps
        queue = [(t - now, prio, _describe(e)) for t, prio, e in env.queued()]
        roots = {"host": host, "vms": [v.vm for v in self.vcpus]}
        mark = _Mark(now, snapshot(roots, frozenset({id(task.pending), id(self)})), queue,
                     env.rng.getstate(), len(env.choices), env.entries_queued,
                     len(host.trace.tail), task.pending, self._slices)
        self._slices = []
        return mark

    def _try_skip(self, cpu: Pcpu, task: Task) -> None:
        m0, m1, m2 = self._marks
        linear = _linear(m0.state, m1.state, m2.state)
        n = 0 if linear is None else self._skippable(m0, m1, m2)
        if linear is None or n <= 0:
            self._not_before = m2.t_ps + self._backoff * self.period_ps
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
            return
        self._backoff = 1
        self._skip(task, m1, m2, n, linear)

    def _skippable(self, m0: _Mark, m1: _Mark, m2: _Mark) -> int:
        """How many periods after ``m2`` repeat the one before it exactly (0: none)."""
        env, period = self.host.env, self.period_ps
        if env.horizon_ps is None or not m2.slices or m1.slices != m2.slices:
            return 0
        if not (m0.queue == m1.queue == m2.queue and m0.rng == m1.rng == m2.rng
                and m0.choices == m2.choices
                and m1.queued - m0.queued == m2.queued - m1.queued):
            return 0
        if not self._records_repeat(m0, m1, m2):
            return 0
        slices = _slice_deltas(m2.stream, m2.slices, self.host.preset.core_mhz)
        if slices is None or _sub(m1.stream, m2.stream) != _total(slices):
            return 0
        n = steady_periods(slices, self.host.preset.core_mhz)
        return min(n, (env.horizon_ps - env.now_ps) // period)

    def _records_repeat(self, m0: _Mark, m1: _Mark, m2: _Mark) -> bool:
        tail = self.host.trace.tail
        first, second = tail[m0.records:m1.records], tail[m1.records:m2.records]
        return len(first) == len(second) and all(
            b.t_ps - a.t_ps == self.period_ps and replace(a, t_ps=b.t_ps) == b
            for a, b in zip(first, second, strict=True))

    def _skip(self, task: Task, m1: _Mark, m2: _Mark, n: int,
              linear: list[tuple[Leaf, int]]) -> None:
        """Apply ``n`` periods at once: time and queue, every linear scalar, the main
        stream, the records."""
        env, trace = self.host.env, self.host.trace
        block: list[Record] = trace.tail[m1.records:m2.records]
        env.shift(n * self.period_ps, n * (m2.queued - m1.queued))
        for leaf, delta in linear:
            assert leaf.setter is not None
            leaf.setter(leaf.value + n * delta)
        step = _sub(m1.stream, m2.stream)
        task.pending = Stream(m2.stream.name, {k: v - n * step[k]
                                               for k, v in m2.stream.counts.items()},
                              m2.stream.user_fraction)
        self._chain = task.pending
        trace.repeat(block, n, self.period_ps)
        self.skips += 1
        self.periods_skipped += n


def quiet(cpu: Pcpu, task: Task, vcpus: list[Vcpu]) -> bool:
    """The explicit conditions of an idle period (the choice point): the vCPU's thread is the
    host's only live task, no counter of its CPU's PMU counts, and the vCPU has nothing
    pending that would touch its PMU (a request, an NMI/PMI, a handler in progress)."""
    if cpu.hw.pmu.counting or task.pending is None or task.pending.user_fraction not in (
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


def _sub(a: Stream, b: Stream) -> dict[str, int]:
    return {k: v - b.get(k) for k, v in a.counts.items()}


def _total(slices: list[tuple[dict[str, int], dict[str, int], int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, done, _ in slices:
        for k, v in done.items():
            out[k] = out.get(k, 0) + v
    return out


def _slice_deltas(stream: Stream, elapsed: list[int], mhz: int
                  ) -> list[tuple[dict[str, int], dict[str, int], int]] | None:
    """The next period's slices from ``stream``, as ``Stream.remainder`` computes them:
    (counts at the slice's start, done in it, its length); None if one would finish."""
    counts, out = dict(stream.counts), []
    for e in elapsed:
        duration = max(cycles_to_ps(counts[ev.CYCLES], mhz), 1)
        if e >= duration:
            return None
        done = {k: v * e // duration for k, v in counts.items()}
        out.append((counts, done, e))
        counts = {k: v - done[k] for k, v in counts.items()}
    return out


def steady_periods(slices: list[tuple[dict[str, int], dict[str, int], int]], mhz: int) -> int:
    """How many periods in a row (from the first of ``slices``) each slice leaves exactly the
    same amounts done. In period p a slice starts at ``v - p * total`` of each event ``v``;
    with D its duration, ``D * mhz`` lies in ``(C * 10^6 - mhz, C * 10^6]`` for C cycles
    (``cycles_to_ps`` floors ``C * 10^6 / mhz``), so ``floor(v * e / D) == d`` and ``e < D``
    hold when three inequalities linear in p do; each holds on an interval of p from 0."""
    per, total = PS_PER_US, _total(slices)
    dc = total[ev.CYCLES]
    if dc <= 0:
        return 0
    bound: int | None = None
    for counts, done, e in slices:
        c0 = counts[ev.CYCLES]
        rows = [(c0 * per - mhz - e * mhz, dc * per, False)]
        for k, v0 in counts.items():
            d, dv = done[k], total[k]
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


def install(host: Host, vcpus: list[Vcpu]) -> IdleFastForward | None:
    """Watch ``vcpus`` for idle periods (one vCPU with a guest timer: the cycle modelled)."""
    if len(vcpus) != 1 or not vcpus[0].timer_period_ps:
        return None
    host.ffwd = watcher = IdleFastForward(host, vcpus)
    return watcher
