"""Events, timeouts and processes: waiting, return values, interrupts and failures."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from vpmu.sim import Environment, Event, Interrupt, Process, ProcessGenerator, Timeout

Log = list[tuple[object, ...]]


def test_timeouts_advance_time(env: Environment, log: Log) -> None:
    """Two clocks tick; at the tie (6) the timeout created first (slow's, at 3) runs first."""

    def clock(name: str, period_ps: int) -> ProcessGenerator:
        for _ in range(3):
            yield env.timeout(period_ps)
            log.append((name, env.now_ps))

    env.process(clock("fast", 2))
    env.process(clock("slow", 3))
    env.run()
    assert log == [
        ("fast", 2),
        ("slow", 3),
        ("fast", 4),
        ("slow", 6),
        ("fast", 6),
        ("slow", 9),
    ]


def test_timeout_value_is_sent_back(env: Environment, log: Log) -> None:
    """The value of a timeout is what the yield returns; a zero delay still yields to the queue."""

    def sleeper() -> ProcessGenerator:
        got = yield env.timeout(5, value="woke")
        log.append((got, env.now_ps))
        got = yield env.timeout(0)
        log.append((got, env.now_ps))

    env.process(sleeper())
    env.run()
    assert log == [("woke", 5), (None, 5)]


def test_timeout_rejects_bad_delay(env: Environment) -> None:
    """Negative or non-int delays are bugs, caught when the timeout is made."""
    with pytest.raises(ValueError, match=r"^delay_ps must be a non-negative int, not -1$"):
        env.timeout(-1)
    with pytest.raises(ValueError, match=r"^delay_ps must be a non-negative int, not 0.5$"):
        env.timeout(0.5)  # type: ignore[arg-type]


def test_timeout_only_from_environment(env: Environment) -> None:
    """Timeouts are built by env.timeout() alone (it fills the slots without an __init__)."""
    with pytest.raises(TypeError, match=r"created by Environment\.timeout"):
        Timeout(env, 5)
    timeout = env.timeout(5)
    assert (timeout.delay_ps, timeout.triggered, timeout.value, repr(timeout)) == (
        5,
        True,
        None,
        "<Timeout delay_ps=5 triggered>",
    )


def test_event_lifecycle(env: Environment, log: Log) -> None:
    """An event is pending, then triggered by succeed(), then processed; waiters get its value."""
    doorbell = env.event()
    assert (doorbell.triggered, doorbell.processed, repr(doorbell)) == (
        False,
        False,
        "<Event pending>",
    )
    with pytest.raises(RuntimeError, match="not available yet"):
        _ = doorbell.value

    def waiter(name: str) -> ProcessGenerator:
        got = yield doorbell
        log.append((name, env.now_ps, got))

    def ringer() -> ProcessGenerator:
        yield env.timeout(7)
        assert doorbell.succeed("ding") is doorbell

    env.process(waiter("w1"))
    env.process(waiter("w2"))
    env.process(ringer())
    env.run()
    assert log == [("w1", 7, "ding"), ("w2", 7, "ding")]
    assert (doorbell.value, doorbell.processed, repr(doorbell)) == (
        "ding",
        True,
        "<Event processed>",
    )


def test_succeed_twice_is_a_bug(env: Environment) -> None:
    """An event happens once; triggering it again raises RuntimeError."""
    event = env.event().succeed(1)
    with pytest.raises(RuntimeError, match="already been triggered"):
        event.succeed(2)


def test_plain_callbacks_get_the_event(env: Environment, log: Log) -> None:
    """Anything appended to callbacks is called with the event when it is processed."""
    event = env.event()
    assert event.callbacks is not None
    event.callbacks.append(lambda ev: log.append(("callback", env.now_ps, ev.value)))
    env.schedule(lambda: event.succeed(3), delay_ps=2)
    env.run()
    assert log == [("callback", 2, 3)]


def test_yielding_a_processed_event_resumes_at_once(env: Environment, log: Log) -> None:
    """Waiting on an event that already happened resumes now, with its value."""
    done = env.event().succeed("old news")

    def late() -> ProcessGenerator:
        yield env.timeout(4)
        got = yield done
        log.append(("late", env.now_ps, got))

    env.process(late())
    env.run()
    assert log == [("late", 4, "old news")]


def test_process_return_value_and_waiting_on_a_process(env: Environment, log: Log) -> None:
    """A parent waits on a child process and receives the child's return value when it ends."""

    def child() -> Generator[Event, Any, int]:
        yield env.timeout(3)
        log.append(("child", env.now_ps))
        return 42

    def parent() -> ProcessGenerator:
        kid = env.process(child())
        result = yield kid
        log.append(("parent", env.now_ps, result))
        return result + 1

    proc = env.process(parent())
    assert (proc.is_alive, proc.name, repr(proc)) == (True, "parent", "<Process parent pending>")
    env.run()
    assert log == [("child", 3), ("parent", 3, 42)]
    assert (proc.is_alive, proc.value, proc.target) == (False, 43, None)


def test_process_start_is_urgent(env: Environment, log: Log) -> None:
    """A process created now runs its first step before NORMAL entries already due now."""
    env.schedule(lambda: log.append(("normal", env.now_ps)))

    def starter() -> ProcessGenerator:
        log.append(("started", env.now_ps))
        yield env.timeout(0)

    env.process(starter())
    env.run()
    assert log == [("started", 0), ("normal", 0)]


def cpu(env: Environment, log: Log, wait_ps: int) -> ProcessGenerator:
    """A CPU that waits; an interrupt (an IPI) cuts the wait short and it logs the cause."""
    try:
        yield env.timeout(wait_ps)
        log.append(("cpu", env.now_ps, "timeout"))
    except Interrupt as interrupt:
        log.append(("cpu", env.now_ps, interrupt.cause))
        yield env.timeout(wait_ps)
        log.append(("cpu", env.now_ps, "after"))


def test_interrupt_while_waiting_on_timeout(env: Environment, log: Log) -> None:
    """An interrupt at 3 resumes the CPU at 3; its old timeout at 10 no longer resumes it."""
    proc = env.process(cpu(env, log, wait_ps=10))
    env.schedule(lambda: proc.interrupt("ipi"), delay_ps=3)
    env.run()
    assert log == [("cpu", 3, "ipi"), ("cpu", 13, "after")]


def test_abandoned_event_stays_valid(env: Environment, log: Log) -> None:
    """The event the interrupted process waited on still triggers for its other waiters."""
    shared = env.timeout(10, value="tick")

    def waiter(name: str) -> ProcessGenerator:
        try:
            got = yield shared
            log.append((name, env.now_ps, got))
        except Interrupt:
            log.append((name, env.now_ps, "interrupted"))

    victim = env.process(waiter("victim"))
    env.process(waiter("bystander"))
    env.schedule(victim.interrupt, delay_ps=2)
    env.run()
    assert log == [("victim", 2, "interrupted"), ("bystander", 10, "tick")]


def test_interrupt_is_urgent(env: Environment, log: Log) -> None:
    """An interrupt raised at t is delivered before NORMAL entries already due at t."""
    # Queued before the CPU's timeout, so it runs first at 5, while the CPU still waits.
    env.schedule(lambda: proc.interrupt("pmi"), delay_ps=5)
    proc = env.process(cpu(env, log, wait_ps=5))
    env.run()
    # The CPU's own timeout at 5 was due before the interrupt was even raised.
    assert log == [("cpu", 5, "pmi"), ("cpu", 10, "after")]


def test_two_interrupts_are_delivered_in_turn(env: Environment, log: Log) -> None:
    """Two interrupts at the same instant each reach the process, in the order raised."""

    def stubborn() -> ProcessGenerator:
        for _ in range(3):
            try:
                yield env.timeout(10)
                log.append(("timeout", env.now_ps))
            except Interrupt as interrupt:
                log.append((interrupt.cause, env.now_ps))

    proc = env.process(stubborn())

    def both() -> None:
        proc.interrupt("first")
        proc.interrupt("second")

    env.schedule(both, delay_ps=1)
    env.run()
    assert log == [("first", 1), ("second", 1), ("timeout", 11)]


def test_interrupt_while_waiting_on_a_process(env: Environment, log: Log) -> None:
    """A parent interrupted while it waits on a child resumes at once; the child runs on."""

    def child() -> ProcessGenerator:
        yield env.timeout(10)
        log.append(("child", env.now_ps))

    def parent() -> ProcessGenerator:
        kid = env.process(child())
        try:
            yield kid
        except Interrupt as interrupt:
            log.append(("parent", env.now_ps, interrupt.cause))
        assert kid.callbacks == []  # the parent no longer waits on it
        yield kid
        log.append(("parent", env.now_ps, "joined"))

    proc = env.process(parent())
    env.schedule(lambda: proc.interrupt("ipi"), delay_ps=4)
    env.run()
    assert log == [("parent", 4, "ipi"), ("child", 10), ("parent", 10, "joined")]


def test_interrupt_right_after_creation(env: Environment, log: Log) -> None:
    """A process interrupted in the instant it is created first runs up to its first yield."""
    proc = env.process(cpu(env, log, wait_ps=10))
    proc.interrupt("early")
    env.run()
    assert log == [("cpu", 0, "early"), ("cpu", 10, "after")]


def test_process_cannot_be_succeeded(env: Environment) -> None:
    """Only a process's return triggers it; succeed() on it is a bug."""
    proc = env.process(cpu_without_handler(env))
    with pytest.raises(RuntimeError, match="triggers when its generator returns"):
        proc.succeed(1)


def test_interrupt_of_finished_process(env: Environment) -> None:
    """Interrupting a process that has ended is a bug: RuntimeError."""

    def brief() -> ProcessGenerator:
        yield env.timeout(1)

    proc = env.process(brief())
    env.run()
    with pytest.raises(RuntimeError, match="has ended and cannot be interrupted"):
        proc.interrupt()


def test_interrupt_dropped_if_process_ends_first(env: Environment, log: Log) -> None:
    """An interrupt raised just before its target ends is dropped when it is delivered."""

    def ending() -> ProcessGenerator:
        yield env.schedule(lambda: None, delay_ps=5, priority=-1)
        log.append(("ended", env.now_ps))

    proc = env.process(ending())
    # At 5: the interrupt is raised (priority -2), then the process ends (-1), then the
    # interrupt would be delivered (URGENT = 0).
    env.schedule(lambda: proc.interrupt("late"), delay_ps=5, priority=-2)
    env.run()
    assert log == [("ended", 5)]
    assert not proc.is_alive


def test_process_cannot_interrupt_itself(env: Environment) -> None:
    """A process interrupting itself is a bug; the error propagates out of run()."""
    holder: list[Process] = []

    def selfish() -> ProcessGenerator:
        holder[0].interrupt()
        yield env.timeout(1)

    holder.append(env.process(selfish()))
    with pytest.raises(RuntimeError, match="cannot interrupt itself"):
        env.run()


def test_uncaught_interrupt_propagates(env: Environment) -> None:
    """A process that does not catch its interrupt fails, loudly."""
    proc = env.process(cpu_without_handler(env))
    env.schedule(lambda: proc.interrupt("nmi"), delay_ps=1)
    with pytest.raises(Interrupt) as caught:
        env.run()
    assert caught.value.cause == "nmi"


def cpu_without_handler(env: Environment) -> ProcessGenerator:
    """A process that waits and does not expect interrupts."""
    yield env.timeout(10)


def test_exception_in_process_propagates(env: Environment) -> None:
    """An exception raised inside a process comes out of run() at the time it was raised."""

    def buggy() -> ProcessGenerator:
        yield env.timeout(4)
        raise ZeroDivisionError("model bug")

    env.process(buggy())
    with pytest.raises(ZeroDivisionError, match="model bug"):
        env.run()
    assert env.now_ps == 4


def test_yielding_a_non_event_is_a_bug(env: Environment) -> None:
    """A process must yield events; anything else raises ValueError naming the process."""

    def confused() -> Generator[Any, Any, None]:
        yield 5

    env.process(confused())
    with pytest.raises(
        ValueError, match=r"^<Process confused pending> must yield an Event, not 5$"
    ):
        env.run()


def test_process_needs_a_generator(env: Environment) -> None:
    """Passing a generator function instead of a generator is a common slip; it is rejected."""
    with pytest.raises(ValueError, match=r"^generator must be a generator, not <function"):
        env.process(cpu_without_handler)  # type: ignore[arg-type]
