"""Events and processes: the things the kernel's queue holds.

An :class:`Event` is something that happens at one instant. It is *pending* until triggered, then
*triggered* (it has a value and sits in the queue), then *processed* once the kernel has called its
callbacks (``callbacks is None``). Everything else is an event with a way of triggering itself:

- :class:`Timeout` triggers itself ``delay_ps`` after its creation: how a process lets time pass.
- :class:`Handle` runs one plain callback at a set time and can be cancelled: how hardware models
  schedule a predicted overflow and take it back when the counter is reprogrammed.
- :class:`Process` wraps a generator that yields events; it triggers with the generator's return
  value, so processes can wait on each other.

Queue entries are ``(time_ps, priority, seq, event)``. ``seq`` is unique and increasing, so ties
in time and priority run in the order they were queued (FIFO) and the event itself is never
compared: runs are reproducible. Lower priority values run first: :data:`URGENT` before
:data:`NORMAL`.

Everything enters the queue through :meth:`Environment._push`, except timeouts, which
:meth:`Environment.timeout` builds and pushes inline because they are the hottest path.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from types import GeneratorType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from vpmu.sim._core import Environment

__all__ = [
    "NORMAL",
    "URGENT",
    "Callback",
    "Event",
    "Handle",
    "Interrupt",
    "Process",
    "ProcessGenerator",
    "Timeout",
]

URGENT: Final = 0
"""Priority of process starts and interrupt deliveries: before NORMAL entries at the same time."""
NORMAL: Final = 1
"""Default priority of every other entry."""


class _Pending:
    """Type of the marker value of an event that has not been triggered yet (None is a value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PENDING"


_PENDING: Final = _Pending()

Callback = Callable[["Event"], None]
"""What an event calls, with itself, when it is processed."""
ProcessGenerator = Generator["Event", Any, Any]
"""What :meth:`Environment.process` accepts: yields events, receives their values, returns."""


class Event:
    """Something that happens at one instant; processes wait on it by yielding it.

    Create one with :meth:`Environment.event` and trigger it with :meth:`succeed`.
    """

    __slots__ = ("_value", "callbacks", "env")

    def __init__(self, env: Environment) -> None:
        self.env = env
        """The environment whose queue this event goes on."""
        self.callbacks: list[Callback] | None = []
        """Called with this event when it is processed; None once processed."""
        self._value: Any = _PENDING

    def __repr__(self) -> str:
        return f"<{type(self).__name__}{self._describe()} {self._state()}>"

    def _describe(self) -> str:
        """Return what distinguishes this event in its repr (subclasses add their parameters)."""
        return ""

    def _state(self) -> str:
        """Return 'pending', 'triggered' or 'processed', for reprs."""
        if self.callbacks is None:
            return "processed"
        return "pending" if self._value is _PENDING else "triggered"

    @property
    def triggered(self) -> bool:
        """Whether the event has a value and is (or was) in the queue."""
        return self._value is not _PENDING

    @property
    def processed(self) -> bool:
        """Whether the kernel has already called the event's callbacks."""
        return self.callbacks is None

    @property
    def value(self) -> Any:
        """The value the event was triggered with; reading it earlier is a bug (RuntimeError)."""
        if self._value is _PENDING:
            raise RuntimeError(f"value of {self!r} is not available yet")
        return self._value

    def succeed(self, value: Any = None) -> Event:
        """Trigger the event now with ``value``; its callbacks run when the queue reaches it.

        Returns the event, so ``return env.event().succeed(x)`` reads naturally.
        """
        if self._value is not _PENDING:
            raise RuntimeError(f"{self!r} has already been triggered")
        self._value = value
        self.env._push(self.env._now, NORMAL, self)
        return self


class Timeout(Event):
    """An event that triggers itself ``delay_ps`` after its creation, with its value.

    Only :meth:`Environment.timeout` creates timeouts: it fills the slots itself, without an
    ``__init__`` frame, because a timeout per event is the kernel's hottest allocation.
    """

    __slots__ = ("delay_ps", "due_ps")
    delay_ps: int
    """How long after its creation the timeout triggers."""
    due_ps: int
    """When it triggers. A timeout nobody waits on any more (its process was interrupted) may
    leave the queue early (``Environment._compact``); yielding it again before ``due_ps``
    queues it again, so it still triggers on time."""

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        raise TypeError("Timeout must be created by Environment.timeout(), not directly")

    def _describe(self) -> str:
        return f" delay_ps={self.delay_ps}"


class Handle(Event):
    """A plain callback queued by :meth:`Environment.schedule`; :meth:`cancel` makes it a no-op.

    It is an event (triggered at creation, processed when the callback runs) so that the queue
    holds one kind of thing and a process may wait for a scheduled callback by yielding it.
    """

    __slots__ = ("_callback", "_cancelled", "time_ps")

    def __init__(
        self, env: Environment, callback: Callable[[], object], time_ps: int, priority: int
    ) -> None:
        self.env = env
        self.callbacks = [self._fire]
        self._value = None
        self._callback = callback
        self._cancelled = False
        self.time_ps = time_ps
        """When the callback runs (or would have run, if cancelled)."""
        env._push(time_ps, priority, self)

    def _describe(self) -> str:
        return f" time_ps={self.time_ps}"

    def _state(self) -> str:
        return "cancelled" if self._cancelled else super()._state()

    def _fire(self, _event: Event) -> None:
        """Adapt the zero-argument callback to the event callback signature."""
        self._callback()

    @property
    def callback(self) -> Callable[[], object]:
        """What the handle runs."""
        return self._callback

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` dropped the callback before it ran."""
        return self._cancelled

    def cancel(self) -> None:
        """Drop the callback (and anything waiting on the handle) if it has not run yet.

        The queue entry stays where it is and is skipped when popped (lazy deletion), so
        cancelling costs O(1) however large the queue. Cancelling twice, or after the callback
        ran, does nothing.
        """
        if self.callbacks is not None:
            self.callbacks = None
            self._cancelled = True


class Interrupt(Exception):  # noqa: N818  SimPy's name; it is a signal to the process, not an error
    """Thrown into a waiting process by :meth:`Process.interrupt`, carrying ``cause``.

    It models an IPI or a PMI arriving while a CPU waits. A process that does not catch it fails,
    and the failure propagates out of :meth:`Environment.run` like any other exception.
    """

    def __init__(self, cause: Any = None) -> None:
        super().__init__(cause)

    @property
    def cause(self) -> Any:
        """What the interrupter passed to :meth:`Process.interrupt`."""
        return self.args[0]


class Process(Event):
    """A generator run by the kernel; the event triggers with its return value when it ends.

    The generator yields events. Yielding one suspends the process until the event is processed,
    then the event's value is sent back in. An exception raised inside the generator is not
    caught: it propagates out of :meth:`Environment.run`, because it is our bug.
    """

    __slots__ = ("_generator", "_resume_cb", "_send", "_target")

    def __init__(self, env: Environment, generator: ProcessGenerator) -> None:
        # A generator function compiled by mypyc returns its own generator class, registered
        # as a collections.abc Generator but not a GeneratorType: both are generators here.
        if not isinstance(generator, GeneratorType | Generator):
            raise ValueError(f"generator must be a generator, not {generator!r}")
        self.env = env
        self.callbacks = []
        self._value = _PENDING
        self._generator = generator
        # Bound once: appending a fresh bound method on every yield would allocate each time.
        self._send = generator.send
        self._resume_cb: Callback = self._resume
        start = Event(env)
        start._value = None
        start.callbacks = [self._resume_cb]
        env._push(env._now, URGENT, start)
        self._target: Event | None = start

    def _describe(self) -> str:
        return f" {self.name}"

    @property
    def name(self) -> str:
        """The generator function's name, for reprs and logs (a compiled generator has no
        ``__name__``: its class's name, the function's with a suffix, stands in)."""
        generator = self._generator
        return getattr(generator, "__name__", type(generator).__name__)

    @property
    def is_alive(self) -> bool:
        """Whether the generator has not returned yet."""
        return self._value is _PENDING

    @property
    def target(self) -> Event | None:
        """The event the process waits on, or None once it has ended."""
        return self._target

    def succeed(self, value: Any = None) -> Event:
        """Refuse: a process triggers itself when its generator returns (RuntimeError)."""
        raise RuntimeError(f"{self!r} triggers when its generator returns, not by succeed()")

    def interrupt(self, cause: Any = None) -> None:
        """Throw ``Interrupt(cause)`` into the process at the current time, with URGENT priority.

        The event the process was waiting on no longer resumes it but stays valid for others. If
        the process ends before the interrupt is delivered, the interrupt is dropped. Interrupting
        a process that has ended, or a process interrupting itself, is a bug: RuntimeError.
        """
        if self._value is not _PENDING:
            raise RuntimeError(f"{self!r} has ended and cannot be interrupted")
        # A compiled generator has no gi_running: its self-interrupt is not refused here but
        # still surfaces, as an Interrupt out of its next wait that it does not expect.
        if getattr(self._generator, "gi_running", False):
            raise RuntimeError(f"{self!r} cannot interrupt itself")
        Handle(self.env, lambda: self._deliver(cause), self.env._now, URGENT)

    def _resume(self, event: Event) -> None:
        """Send ``event``'s value into the generator and wait on what it yields (the hot path)."""
        try:
            target = self._send(event._value)
        except StopIteration as stop:
            self._finish(stop.value)
            return
        try:
            callbacks = target.callbacks
        except AttributeError:  # not an event: _wait_on raises the error
            callbacks = None
        if callbacks is not None:
            callbacks.append(self._resume_cb)
            self._target = target
        else:
            self._wait_on(target)

    def _wait_on(self, target: object) -> None:
        """Wait on ``target``: the general case of :meth:`_resume`, also used after an interrupt."""
        if not isinstance(target, Event):
            raise ValueError(f"{self!r} must yield an Event, not {target!r}")
        callbacks = target.callbacks
        env = self.env
        if callbacks is None and type(target) is Timeout and target.due_ps > env._now:
            # Left the queue early, unwaited (Environment._compact): back in at its instant.
            callbacks = target.callbacks = []
            env._push(target.due_ps, NORMAL, target)
        if callbacks is None:
            # Already processed: its instant is past, so resume at once, but through the queue so
            # that whatever else is due now keeps its (time, priority, seq) order.
            proxy = Event(env)
            proxy._value = target._value
            callbacks = proxy.callbacks = []
            env._push(env._now, URGENT, proxy)
            target = proxy
        callbacks.append(self._resume_cb)
        self._target = target

    def _deliver(self, cause: Any) -> None:
        """Detach the process from its target and throw ``Interrupt(cause)`` into it."""
        if self._value is not _PENDING:
            return  # ended after interrupt() was called: nothing left to interrupt
        target = self._target
        if target is not None and target.callbacks is not None:
            target.callbacks.remove(self._resume_cb)
            if not target.callbacks and type(target) is Timeout:
                self.env._abandoned_timeout()
        try:
            following = self._generator.throw(Interrupt(cause))
        except StopIteration as stop:
            self._finish(stop.value)
            return
        self._wait_on(following)

    def _finish(self, value: Any) -> None:
        """Trigger the process event with the generator's return value."""
        self._value = value
        self._target = None
        self.env._push(self.env._now, NORMAL, self)
