"""``Environment.skip_to``: work done in one piece takes one step when nothing can interleave.

The promise is exactness: a process that skips where it can sees the same times, in the same
order, as one that always yields the timeout; only the number of queue entries differs.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpmu.sim import Environment, Interrupt, ProcessGenerator


def test_skip_moves_the_clock_when_nothing_is_due() -> None:
    env = Environment()
    env.schedule(lambda: None, delay_ps=100)
    assert env.skip_to(99)
    assert env.now_ps == 99


@pytest.mark.parametrize("due", [0, 50, 100])
def test_skip_refuses_when_an_entry_is_due_at_or_before(due: int) -> None:
    """An entry at the target instant runs before a timeout queued now would (FIFO), so it
    refuses the skip just as an earlier one does."""
    env = Environment()
    env.schedule(lambda: None, delay_ps=due)
    assert not env.skip_to(100)
    assert env.now_ps == 0


def test_a_cancelled_entry_still_refuses() -> None:
    """Conservative: a cancelled handle is popped lazily, so it still counts as due."""
    env = Environment()
    env.schedule(lambda: None, delay_ps=10).cancel()
    assert not env.skip_to(20)


def test_skip_stays_within_the_run_in_progress() -> None:
    """Inside ``run(until_ps)`` the clock never passes the limit: the run would set it back."""
    env = Environment()
    seen: list[tuple[bool, int]] = []

    def proc() -> ProcessGenerator:
        seen.append((env.skip_to(50), env.now_ps))
        seen.append((env.skip_to(200), env.now_ps))
        yield env.timeout(0)

    env.process(proc())
    env.run(until_ps=100)
    assert seen == [(True, 50), (False, 50)]
    assert env.now_ps == 100


def test_skip_refuses_the_past() -> None:
    env = Environment()
    env.skip_to(10)
    with pytest.raises(ValueError, match="time_ps must be >= now_ps"):
        env.skip_to(5)


def _world(skip: bool, workers: list[list[int]], interrupts: list[int]
           ) -> tuple[list[tuple[int, str]], int]:
    """Workers alternate uninterruptible work (skippable) and interruptible waits (timeouts,
    never skipped); an interrupter hits worker 0 at the given instants, or finds it busy (as
    a CPU queues an interrupt while its handler runs). The log is what every process
    observed, in order, and the environment's ``events_processed``."""
    env = Environment()
    log: list[tuple[int, str]] = []
    procs = []
    waiting = [False]

    def work(d: int) -> ProcessGenerator:
        if not (skip and env.skip_to(env.now_ps + d)):
            yield env.timeout(d)

    def worker(name: str, delays: list[int]) -> ProcessGenerator:
        for i, d in enumerate(delays):
            if i % 2:
                waiting[0] = name == "w0"
                try:
                    yield env.timeout(d)
                except Interrupt:
                    log.append((env.now_ps, f"{name} interrupted"))
                waiting[0] = False
            else:
                yield from work(d)
            log.append((env.now_ps, f"{name} step {i}"))

    def interrupter() -> ProcessGenerator:
        for t in interrupts:
            yield env.timeout(max(t - env.now_ps, 0))
            if waiting[0]:
                waiting[0] = False
                procs[0].interrupt("irq")
            log.append((env.now_ps, "irq" if procs[0].is_alive else "irq, w0 gone"))

    for n, delays in enumerate(workers):
        procs.append(env.process(worker(f"w{n}", delays)))
    env.process(interrupter())
    env.run()
    log.append((env.now_ps, "end"))
    return log, env.events_processed


@settings(max_examples=200, deadline=None)
@given(workers=st.lists(st.lists(st.integers(1, 40), min_size=1, max_size=12), min_size=1,
                        max_size=4),
       interrupts=st.lists(st.integers(0, 200), max_size=6).map(sorted))
def test_skipping_is_invisible(workers: list[list[int]], interrupts: list[int]) -> None:
    """Same observations with and without skipping, ties and interrupts included, and the
    same ``events_processed``: a skipped timeout counts as the event it would have been."""
    assert _world(True, workers, interrupts) == _world(False, workers, interrupts)


def test_a_skip_counts_as_an_event_but_not_as_an_entry() -> None:
    env = Environment()
    assert env.skip_to(10) and env.skip_to(20)
    assert (env.events_processed, env.entries_processed) == (2, 0)
