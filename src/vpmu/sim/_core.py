"""The environment: simulated time, the event queue, the run's one RNG and its choice points.

Why one object owns all of these: a run is reproducible only if everything that can vary between
two runs (time, the order of ties, random draws and the choices an explorer makes) comes from one
place that is seeded and recorded. Model code must not use ``random`` or the wall clock directly.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from heapq import heappop
from typing import Any, TypeVar

from vpmu.sim._events import NORMAL, Event, Handle, Process, ProcessGenerator, Timeout

__all__ = ["Chooser", "Environment"]

T = TypeVar("T")

Chooser = Callable[[str, Sequence[Any]], int]
"""Picks an option at a named choice point: ``chooser(name, options) -> index``."""


def _first(_name: str, _options: Sequence[Any]) -> int:
    """The default chooser: always the first option, so a plain run is one fixed interleaving."""
    return 0


class Environment:
    """A discrete-event simulation: integer time in picoseconds and a queue of events.

    The queue is a heap of ``(time_ps, priority, seq, event)``; see :mod:`vpmu.sim._events`.
    ``seed`` seeds :attr:`rng`; ``chooser`` decides the named choice points (:meth:`choose`).
    """

    __slots__ = (
        "_chooser",
        "_eid",
        "_now",
        "_queue",
        "_seed",
        "choices",
        "events_processed",
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
        self._eid = itertools.count()
        self.rng = random.Random(seed)
        """The one random number generator of the run, seeded once from ``seed``."""
        self.choices: list[tuple[str, int]] = []
        """Every choice made so far, as (name, index chosen), in order: enough to replay a run."""
        self.events_processed = 0
        """Queue entries processed so far (cancelled handles included), for benchmarks."""

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

    def schedule(
        self, callback: Callable[[], None], *, delay_ps: int = 0, priority: int = NORMAL
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
        return Timeout(self, delay_ps, value)

    def event(self) -> Event:
        """Return a new pending event, to be triggered later with :meth:`Event.succeed`."""
        return Event(self)

    def process(self, generator: ProcessGenerator) -> Process:
        """Start ``generator`` as a process now (URGENT, so before NORMAL entries due now)."""
        return Process(self, generator)

    def peek(self) -> int | None:
        """Return the time of the next queue entry, or None if the queue is empty."""
        return self._queue[0][0] if self._queue else None

    def step(self) -> None:
        """Process the next queue entry; calling it on an empty queue is a bug (RuntimeError)."""
        if not self._queue:
            raise RuntimeError("step() needs a queued entry, but the queue is empty")
        self._now, _, _, event = heappop(self._queue)
        self.events_processed += 1
        callbacks = event.callbacks
        if callbacks is not None:  # None: a cancelled handle, skipped (lazy deletion)
            event.callbacks = None
            for callback in callbacks:
                callback(event)

    def run(self, until_ps: int | None = None) -> None:
        """Process entries until the queue is empty or the next one is later than ``until_ps``.

        Entries at exactly ``until_ps`` are processed. Given ``until_ps``, the run ends with
        :attr:`now_ps` equal to it even if the queue emptied earlier, so ``run(until_ps=t)`` means
        "the world as of t". An exception raised by a callback or process propagates.
        """
        if until_ps is not None and (type(until_ps) is not int or until_ps < self._now):
            raise ValueError(f"until_ps must be an int >= now_ps ({self._now}), not {until_ps!r}")
        self._drain(until_ps)
        if until_ps is not None:
            self._now = until_ps

    def _drain(self, until_ps: int | None) -> None:
        """The hot loop: :meth:`step` inlined, with the limit check."""
        queue = self._queue
        pop = heappop
        count = 0
        try:
            while queue:
                if until_ps is not None and queue[0][0] > until_ps:
                    break
                self._now, _, _, event = pop(queue)
                count += 1
                callbacks = event.callbacks
                if callbacks is not None:
                    event.callbacks = None
                    for callback in callbacks:
                        callback(event)
        finally:
            self.events_processed += count

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
