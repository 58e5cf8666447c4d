"""The environment: simulated time, the event queue, the run's one RNG and its choice points.

Why one object owns all of these: a run is reproducible only if everything that can vary between
two runs (time, the order of ties, random draws and the choices an explorer makes) comes from one
place that is seeded and recorded. Model code must not use ``random`` or the wall clock directly.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable, Sequence
from heapq import heapify, heappop, heappush
from typing import Any, TypeVar

from vpmu.sim._events import NORMAL, Event, Handle, Process, ProcessGenerator, Timeout

__all__ = ["Chooser", "Environment"]

T = TypeVar("T")

_new_object = object.__new__

COMPACT_MIN = 1024
"""Dead timeouts tolerated in the queue before ``_compact`` may run (it also waits for them
to be half of it, so its O(n) cost is amortised over as many interrupts)."""

GC_GEN0_THRESHOLD = 50_000
"""The cyclic collector's generation-0 threshold while a run is in progress (CPython's default
is 700). A run allocates millions of short-lived objects (events, records, streams) and almost
no cycles (a few hundred, from setup), so collecting every 700 allocations only walks live
objects: about a fifth of the CPU time of seed 001's example
(``examples/seed-001.toml``, docs/sources.md). Raised for the run and restored after, so the
embedding program keeps its own setting."""

Chooser = Callable[[str, Sequence[Any]], int]
"""Picks an option at a named choice point: ``chooser(name, options) -> index``."""


def _first(_name: str, _options: Sequence[Any]) -> int:
    """The default chooser: always the first option, so a plain run is one fixed interleaving."""
    return 0


def _order(entry: tuple[int, int, int, Event]) -> tuple[int, int, int]:
    """A queue entry's place in the run order."""
    return entry[0], entry[1], entry[2]


class Environment:
    """A discrete-event simulation: integer time in picoseconds and a queue of events.

    The queue is a heap of ``(time_ps, priority, seq, event)``; see :mod:`vpmu.sim._events`.
    ``seed`` seeds :attr:`rng`; ``chooser`` decides the named choice points (:meth:`choose`).
    """

    __slots__ = (
        "_abandoned",
        "_chooser",
        "_live",
        "_now",
        "_queue",
        "_seed",
        "_seq",
        "_skips",
        "_until",
        "choices",
        "horizon_ps",
        "rng",
    )

    def __init__(self, seed: int = 0, *, chooser: Chooser | None = None) -> None:
        if type(seed) is not int:
            raise ValueError(f"seed must be an int, not {seed!r}")
        if chooser is not None and not callable(chooser):
            raise ValueError(f"chooser must be callable, not {chooser!r}")
        self._seed = seed
        self._chooser: Chooser = _first if chooser is None else chooser
        self._now = 0
        self._queue: list[tuple[int, int, int, Event]] = []
        self._seq = 0  # the next entry's seq; also the number of entries ever queued
        self._skips = 0  # events taken without an entry: skip_to's timeouts, shift's periods
        self._live = 0  # entries processed that had something to call
        self._abandoned = 0  # queued timeouts nobody waits on any more (_compact)
        self.rng = random.Random(seed)
        """The one random number generator of the run, seeded once from ``seed``."""
        self.choices: list[tuple[str, int]] = []
        """Every choice made so far, as (name, index chosen), in order: enough to replay a run."""
        self._until: int | None = None  # the limit of the run in progress (run(until_ps))
        self.horizon_ps: int | None = None
        """How far a model that skips time ahead (:meth:`shift`) may go in the :meth:`run`
        in progress: its ``until_ps``, or its ``pass_ps`` (None: no limit in force)."""

    def __repr__(self) -> str:
        if self._chooser is _first:
            return f"Environment(seed={self._seed})"
        name = getattr(self._chooser, "__qualname__", None) or repr(self._chooser)
        return f"Environment(seed={self._seed}, chooser={name})"

    @property
    def now_ps(self) -> int:
        """The current simulated time, in picoseconds."""
        return self._now

    @property
    def seed(self) -> int:
        """The seed the environment was built with."""
        return self._seed

    @property
    def events_processed(self) -> int:
        """Events the model took: queue entries processed that had something to do (a
        cancelled handle, or a timeout nobody waited on any more, has not), plus the timeouts
        ``skip_to`` made unnecessary, each of which would have been one. A property of the
        model's execution, not of the kernel's shortcuts: the same run gives the same count
        however it is stepped or skipped.
        """
        return self._live + self._skips

    @property
    def entries_processed(self) -> int:
        """Queue entries actually processed: the kernel's own work (benchmarks)."""
        return self._seq - len(self._queue)

    @property
    def entries_queued(self) -> int:
        """Entries ever queued (processed, cancelled or still waiting)."""
        return self._seq

    def _abandoned_timeout(self) -> None:
        """A process left a queued timeout (an interrupt): compact the queue once such dead
        entries are most of it, so a long run of interrupted waits keeps it small."""
        self._abandoned += 1
        if self._abandoned > COMPACT_MIN and self._abandoned * 2 > len(self._queue):
            self._compact()

    def _compact(self) -> None:
        """Drop the queued timeouts nobody waits on (they would do nothing when due), in
        O(n); order is kept, since the (time, priority, seq) keys of the rest are unchanged.
        A dropped timeout yielded again goes back in at its instant (``Process._wait_on``)."""
        kept = []
        for entry in self._queue:
            event = entry[3]
            if event.callbacks or type(event) is not Timeout:
                kept.append(entry)
            else:
                event.callbacks = None
        heapify(kept)
        self._queue[:] = kept
        self._abandoned = 0

    def _push(self, time_ps: int, priority: int, event: Event) -> None:
        """Queue ``event`` at ``(time_ps, priority)`` behind every entry already queued there."""
        seq = self._seq
        self._seq = seq + 1
        heappush(self._queue, (time_ps, priority, seq, event))

    def schedule(
        self, callback: Callable[[], object], *, delay_ps: int = 0, priority: int = NORMAL
    ) -> Handle:
        """Queue ``callback()`` to run ``delay_ps`` from now; the handle can cancel it.

        Entries at the same time run by ``priority`` (lower first, any int), then FIFO.
        """
        if not callable(callback):
            raise ValueError(f"callback must be callable, not {callback!r}")
        if type(delay_ps) is not int or delay_ps < 0:
            raise ValueError(f"delay_ps must be a non-negative int, not {delay_ps!r}")
        if type(priority) is not int:
            raise ValueError(f"priority must be an int, not {priority!r}")
        return Handle(self, callback, self._now + delay_ps, priority)

    def timeout(self, delay_ps: int, value: Any = None) -> Timeout:
        """Return an event that triggers with ``value`` ``delay_ps`` from now."""
        if type(delay_ps) is not int or delay_ps < 0:
            raise ValueError(f"delay_ps must be a non-negative int, not {delay_ps!r}")
        # The hottest path of every run: fill the slots and push inline (see Timeout).
        timeout = _new_object(Timeout)
        timeout.env = self
        timeout.callbacks = []
        timeout._value = value
        timeout.delay_ps = delay_ps
        timeout.due_ps = due = self._now + delay_ps
        seq = self._seq
        self._seq = seq + 1
        heappush(self._queue, (due, NORMAL, seq, timeout))
        return timeout

    def skip_to(self, time_ps: int) -> bool:
        """Move the clock to ``time_ps`` at once if no queue entry is due at or before it (nor
        the limit of the run in progress): what the caller would see after yielding
        ``timeout(time_ps - now_ps)``, without the queue round-trip. False: nothing moved,
        the caller yields the timeout instead.

        Exact, not an approximation: an entry due at or before ``time_ps`` would run before
        the timeout (entries at the same time run FIFO), so a due entry refuses the skip;
        without one, nothing can run in the window, since only queue entries run code. Work
        the model does in one piece (kernel work, an instruction's latency) takes one step
        this way, and is split exactly where another event falls inside it. It still
        counts in ``events_processed``.
        """
        if time_ps < self._now:
            raise ValueError(f"time_ps must be >= now_ps ({self._now}), not {time_ps!r}")
        queue, until = self._queue, self._until
        if (queue and queue[0][0] <= time_ps) or (until is not None and time_ps > until):
            return False
        self._now = time_ps
        self._skips += 1
        return True

    def event(self) -> Event:
        """Return a new pending event, to be triggered later with :meth:`Event.succeed`."""
        return Event(self)

    def process(self, generator: ProcessGenerator) -> Process:
        """Start ``generator`` as a process now (URGENT, so before NORMAL entries due now)."""
        return Process(self, generator)

    def queued(self) -> list[tuple[int, int, Event]]:
        """The live entries (with something to run: not a cancelled handle, nor a timeout
        nobody waits on any more) as ``(time_ps, priority, event)``, in the order they run."""
        return [(t, prio, event) for t, prio, _, event in sorted(self._queue, key=_order)
                if event.callbacks]

    def peek(self) -> int | None:
        """Return the time of the next queue entry, or None if the queue is empty."""
        return self._queue[0][0] if self._queue else None

    def step(self) -> None:
        """Process the next queue entry; calling it on an empty queue is a bug (RuntimeError)."""
        if not self._queue:
            raise RuntimeError("step() needs a queued entry, but the queue is empty")
        self._now, _, _, event = heappop(self._queue)
        callbacks = event.callbacks
        if callbacks is not None:  # None: a cancelled handle, skipped (lazy deletion)
            event.callbacks = None
            if callbacks:
                self._live += 1
                for callback in callbacks:
                    callback(event)

    def run(self, until_ps: int | None = None, *, pass_ps: int | None = None) -> None:
        """Process entries until the queue is empty or the next one is later than ``until_ps``.

        Entries at exactly ``until_ps`` are processed. Given ``until_ps``, the run ends with
        :attr:`now_ps` equal to it even if the queue emptied earlier, so ``run(until_ps=t)`` means
        "the world as of t". An exception raised by a callback or process propagates.

        ``pass_ps`` (at least ``until_ps``) lets a model's fast-forward (:meth:`shift`) carry
        the run past ``until_ps``, up to ``pass_ps``: for a caller that only polls for
        something the fast-forward never changes (a guest finishing), so that the polls it
        passes would have seen nothing. The run then ends where the shift left the clock.
        """
        if until_ps is not None and (type(until_ps) is not int or until_ps < self._now):
            raise ValueError(f"until_ps must be an int >= now_ps ({self._now}), not {until_ps!r}")
        if pass_ps is not None and (type(pass_ps) is not int or until_ps is None
                                    or pass_ps < until_ps):
            raise ValueError(f"pass_ps must be an int >= until_ps ({until_ps}), not {pass_ps!r}")
        threshold = gc.get_threshold()
        gc.set_threshold(max(threshold[0], GC_GEN0_THRESHOLD), *threshold[1:])
        self._until, self.horizon_ps = until_ps, until_ps if pass_ps is None else pass_ps
        try:
            if until_ps is None:
                self._run_all()
                return
            self._run_until(until_ps)
        finally:
            self._until = self.horizon_ps = None
            gc.set_threshold(*threshold)
        self._now = max(self._now, until_ps)

    # The two loops below are step() inlined: a method call per entry would cost ~10% of a run,
    # and a shared loop would test for a limit on every entry even when there is none.

    def _run_all(self) -> None:
        """Process entries until the queue is empty (the hot loop)."""
        queue = self._queue
        pop = heappop
        while queue:
            self._now, _, _, event = pop(queue)
            callbacks = event.callbacks
            if callbacks is not None:
                event.callbacks = None
                if callbacks:
                    self._live += 1
                    for callback in callbacks:
                        callback(event)

    def _run_until(self, until_ps: int) -> None:
        """Process entries while the next one is due at or before ``until_ps``."""
        queue = self._queue
        pop = heappop
        while queue and queue[0][0] <= until_ps:
            self._now, _, _, event = pop(queue)
            callbacks = event.callbacks
            if callbacks is not None:
                event.callbacks = None
                if callbacks:
                    self._live += 1
                    for callback in callbacks:
                        callback(event)

    def shift(self, delta_ps: int, seq_delta: int, events_delta: int | None = None) -> None:
        """Move now and every live entry ``delta_ps`` later, as if ``seq_delta`` more entries
        had been queued meanwhile and run by the time anyone looks: a model's fast-forward over
        periods it has shown to repeat. Entries nothing waits on (a timeout its interrupted
        process left behind, a cancelled handle) stay at their time: they run as no-ops there
        (no event), as they would have. :attr:`events_processed` grows by ``events_delta``
        (default ``seq_delta``): the events the skipped periods took, skipped timeouts
        included; the dead entries those periods would have left behind are no events, so
        the count is step by step's."""
        events_delta = seq_delta if events_delta is None else events_delta
        if type(delta_ps) is not int or delta_ps < 0 or type(seq_delta) is not int \
                or seq_delta < 0 or type(events_delta) is not int or events_delta < 0:
            raise ValueError(f"delta_ps, seq_delta and events_delta must be non-negative ints, "
                             f"not {delta_ps!r}, {seq_delta!r}, {events_delta!r}")
        if self.horizon_ps is not None and self._now + delta_ps > self.horizon_ps:
            raise ValueError(f"shift by {delta_ps} ps passes the run's horizon {self.horizon_ps}")
        self._now += delta_ps
        self._seq += seq_delta
        self._skips += events_delta
        queue = [(t + delta_ps, prio, seq + seq_delta, event) if event.callbacks else
                 (t, prio, seq, event) for t, prio, seq, event in self._queue]
        heapify(queue)
        self._queue[:] = queue
        for _, _, _, event in queue:
            if event.callbacks and isinstance(event, Handle):
                event.time_ps += delta_ps

    def choose(self, name: str, options: Sequence[T]) -> T:
        """Return one of ``options`` at the choice point ``name``, as the chooser decides.

        Model code calls this wherever the real system could go either way (which CPU takes an
        IPI first, whether a PMI lands before or after a WRMSR). The default chooser takes
        ``options[0]``; an explorer passes its own. Every choice is appended to :attr:`choices`.
        """
        if type(name) is not str:
            raise ValueError(f"name must be a str, not {name!r}")
        if not isinstance(options, Sequence) or len(options) == 0:
            raise ValueError(f"options must be a non-empty sequence, not {options!r}")
        index = self._chooser(name, options)
        if type(index) is not int or not 0 <= index < len(options):
            raise ValueError(
                f"chooser index for {name!r} must be an int in range({len(options)}), not {index!r}"
            )
        self.choices.append((name, index))
        return options[index]
