"""The environment: queue order, scheduling, cancelling, running, choice points and the RNG."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import pytest

from vpmu.sim import NORMAL, URGENT, Environment, ProcessGenerator

Log = list[tuple[object, ...]]


def note(env: Environment, log: Log, name: str) -> Callable[[], None]:
    """Return a callback that logs (name, time) when it runs."""
    return lambda: log.append((name, env.now_ps))


def test_order_is_time_then_priority_then_fifo(env: Environment, log: Log) -> None:
    """Entries run by time, then priority (lower first, any int), then in the order queued."""
    env.schedule(note(env, log, "late"), delay_ps=20)
    env.schedule(note(env, log, "normal-1"), delay_ps=10)
    env.schedule(note(env, log, "urgent"), delay_ps=10, priority=URGENT)
    env.schedule(note(env, log, "normal-2"), delay_ps=10, priority=NORMAL)
    env.schedule(note(env, log, "very-urgent"), delay_ps=10, priority=-5)
    env.schedule(note(env, log, "lazy"), delay_ps=10, priority=7)
    env.run()
    assert log == [
        ("very-urgent", 10),
        ("urgent", 10),
        ("normal-1", 10),
        ("normal-2", 10),
        ("lazy", 10),
        ("late", 20),
    ]


def test_callback_scheduled_now_runs_after_entries_already_due(env: Environment, log: Log) -> None:
    """A zero-delay entry queued by a callback runs after the entries already due at that time."""
    env.schedule(lambda: env.schedule(note(env, log, "queued-later")), delay_ps=5)
    env.schedule(note(env, log, "already-due"), delay_ps=5)
    env.run()
    assert log == [("already-due", 5), ("queued-later", 5)]


def test_cancel(env: Environment, log: Log) -> None:
    """A cancelled handle does nothing; cancelling twice or after it ran is harmless."""
    keep = env.schedule(note(env, log, "kept"), delay_ps=1)
    drop = env.schedule(note(env, log, "dropped"), delay_ps=2)
    drop.cancel()
    drop.cancel()
    env.run()
    keep.cancel()
    assert log == [("kept", 1)]
    assert (keep.cancelled, drop.cancelled) == (False, True)
    assert (keep.time_ps, drop.time_ps) == (1, 2)
    assert repr(drop) == "<Handle time_ps=2 cancelled>"


def test_cancelled_entry_stays_queued_until_popped(env: Environment) -> None:
    """Cancelling is lazy: the entry is skipped when reached, not searched for and removed."""
    env.schedule(lambda: None, delay_ps=7).cancel()
    assert env.peek() == 7
    env.step()
    assert (env.peek(), env.now_ps, env.entries_processed, env.events_processed) == (None, 7, 1, 0)


def test_process_can_wait_for_a_handle(env: Environment, log: Log) -> None:
    """A handle is an event: a process yielding it resumes after the callback ran."""

    def waiter() -> ProcessGenerator:
        yield env.schedule(note(env, log, "callback"), delay_ps=4)
        log.append(("waiter", env.now_ps))

    env.process(waiter())
    env.run()
    assert log == [("callback", 4), ("waiter", 4)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"callback": 3}, "callback must be callable, not 3"),
        ({"delay_ps": -1}, "delay_ps must be a non-negative int, not -1"),
        ({"delay_ps": 1.5}, "delay_ps must be a non-negative int, not 1.5"),
        ({"priority": 0.5}, "priority must be an int, not 0.5"),
    ],
)
def test_schedule_rejects(env: Environment, kwargs: dict[str, object], message: str) -> None:
    """schedule() validates its arguments eagerly, with the one error shape."""
    arguments: dict[str, object] = {"callback": lambda: None, **kwargs}
    callback = arguments.pop("callback")
    with pytest.raises(ValueError, match=f"^{message}$"):
        env.schedule(callback, **arguments)  # type: ignore[arg-type]


def test_run_until_includes_entries_at_the_limit(env: Environment, log: Log) -> None:
    """run(until_ps=t) runs entries at exactly t, stops before later ones and sets now to t."""
    for t in (5, 10, 15):
        env.schedule(note(env, log, f"at-{t}"), delay_ps=t)
    env.run(until_ps=10)
    assert (log, env.now_ps, env.peek()) == ([("at-5", 5), ("at-10", 10)], 10, 15)
    env.run(until_ps=12)
    assert (len(log), env.now_ps) == (2, 12)
    env.run()
    assert (log[-1], env.now_ps) == (("at-15", 15), 15)


def test_run_until_past_the_last_entry(env: Environment) -> None:
    """When the queue empties before the limit, time still advances to the limit."""
    env.schedule(lambda: None, delay_ps=3)
    env.run(until_ps=100)
    assert (env.now_ps, env.peek()) == (100, None)


@pytest.mark.parametrize("until_ps", [9, 10.0, "20"])
def test_run_until_rejects(env: Environment, until_ps: object) -> None:
    """until_ps must be an int no earlier than now."""
    env.run(until_ps=10)
    with pytest.raises(ValueError, match=r"^until_ps must be an int >= now_ps \(10\), not "):
        env.run(until_ps=until_ps)  # type: ignore[arg-type]


def test_step_and_peek(env: Environment, log: Log) -> None:
    """step() runs exactly one entry; peek() tells when the next one is due."""
    assert env.peek() is None
    env.schedule(note(env, log, "a"), delay_ps=3)
    env.schedule(note(env, log, "b"), delay_ps=8)
    assert env.peek() == 3
    env.step()
    assert (log, env.peek()) == ([("a", 3)], 8)
    env.step()
    with pytest.raises(RuntimeError, match="queue is empty"):
        env.step()


def test_events_processed_counts_entries_with_work(env: Environment) -> None:
    """Every entry popped counts as processed; as an event only if it had something to call: a
    process start and its timeout are two, its end (nobody waits on it) none."""

    def one_wait() -> ProcessGenerator:
        yield env.timeout(1)

    env.process(one_wait())
    env.run()
    assert (env.entries_processed, env.events_processed) == (3, 2)


def test_an_abandoned_timeout_is_no_event_and_leaves_the_queue(env: Environment) -> None:
    """A process interrupted away from its timeout leaves a dead entry: it is not an event, and
    once such entries are most of the queue they are dropped, so an hour of interrupted waits
    does not grow it."""
    from vpmu.sim import Interrupt
    from vpmu.sim._core import COMPACT_MIN

    def sleeper() -> ProcessGenerator:
        while True:
            with contextlib.suppress(Interrupt):
                yield env.timeout(10**9)

    proc = env.process(sleeper())
    sizes = []
    for _i in range(3 * COMPACT_MIN):
        env.schedule(proc.interrupt, delay_ps=1)
        env.run(until_ps=env.now_ps + 2)
        sizes.append(len(env._queue))
    assert max(sizes) <= 2 * COMPACT_MIN + 2
    # per round: the interrupt's handle, its delivery, and nothing for the abandoned timeout
    assert env.events_processed == 1 + 2 * 3 * COMPACT_MIN


def test_a_dropped_timeout_yielded_again_still_triggers_on_time(env: Environment) -> None:
    from vpmu.sim import Interrupt
    from vpmu.sim._core import COMPACT_MIN

    kept = env.timeout(10**6)
    seen: list[int] = []

    def waiter() -> ProcessGenerator:
        with contextlib.suppress(Interrupt):
            yield kept
        yield env.timeout(3 * COMPACT_MIN)  # the dead timeouts below pile up meanwhile
        seen.append(kept.callbacks is None)  # dropped from the queue by now
        yield kept
        seen.append(env.now_ps)

    def filler() -> ProcessGenerator:
        for _ in range(2 * COMPACT_MIN + 1):
            with contextlib.suppress(Interrupt):
                yield env.timeout(10**5)

    proc = env.process(waiter())
    fill = env.process(filler())
    env.schedule(proc.interrupt, delay_ps=1)
    for k in range(2 * COMPACT_MIN + 1):
        env.schedule(fill.interrupt, delay_ps=2 + k)
    env.run()
    assert seen == [True, 10**6]


def test_choose_default_takes_first(env: Environment) -> None:
    """Without a chooser every choice point takes options[0], and each choice is recorded."""
    assert env.choose("ipi-order", ["cpu0", "cpu1"]) == "cpu0"
    assert env.choose("pmi-vs-wrmsr", ("pmi", "wrmsr", "both")) == "pmi"
    assert env.choices == [("ipi-order", 0), ("pmi-vs-wrmsr", 0)]


def test_custom_chooser_and_replay() -> None:
    """A custom chooser decides; replaying its recorded indices reproduces the same picks."""

    def last(name: str, options: Sequence[object]) -> int:
        return len(options) - 1

    first_run = Environment(chooser=last)
    picks = [first_run.choose(f"c{i}", range(i + 1)) for i in range(4)]
    assert picks == [0, 1, 2, 3]
    assert first_run.choices == [("c0", 0), ("c1", 1), ("c2", 2), ("c3", 3)]
    recorded = iter(index for _name, index in first_run.choices)
    replay = Environment(chooser=lambda name, options: next(recorded))
    assert [replay.choose(f"c{i}", range(i + 1)) for i in range(4)] == picks
    assert replay.choices == first_run.choices


def test_chooser_sees_name_and_options() -> None:
    """The chooser is called with the choice point's name and its options."""
    seen: list[tuple[str, Sequence[object]]] = []

    def second(name: str, options: Sequence[object]) -> int:
        seen.append((name, options))
        return 1

    env = Environment(chooser=second)
    assert env.choose("who-first", ["a", "b"]) == "b"
    assert seen == [("who-first", ["a", "b"])]


@pytest.mark.parametrize("options", [[], (), "", 3, None])
def test_choose_rejects_empty_or_non_sequence_options(env: Environment, options: object) -> None:
    """A choice point needs at least one option, in a sequence."""
    with pytest.raises(ValueError, match=r"^options must be a non-empty sequence, not "):
        env.choose("x", options)  # type: ignore[arg-type]
    assert env.choices == []


@pytest.mark.parametrize("index", [2, -1, 1.0, None])
def test_choose_rejects_out_of_range_index(index: object) -> None:
    """A chooser index outside range(len(options)) (or not an int) is an error, not recorded."""
    env = Environment(chooser=lambda name, options: index)  # type: ignore[arg-type,return-value]
    message = rf"^chooser index for 'x' must be an int in range\(2\), not {index!r}$"
    with pytest.raises(ValueError, match=message):
        env.choose("x", ["a", "b"])
    assert env.choices == []


def test_choose_rejects_non_str_name(env: Environment) -> None:
    """Choice points are named by strings, so that recorded runs are readable."""
    with pytest.raises(ValueError, match=r"^name must be a str, not 3$"):
        env.choose(3, ["a"])  # type: ignore[arg-type]


def test_same_seed_same_draws() -> None:
    """Two environments with one seed draw the same numbers; another seed differs."""
    draws = [[Environment(seed).rng.random() for _ in range(1)] for seed in (7, 7, 8)]
    a, b = Environment(seed=7).rng, Environment(seed=7).rng
    assert [a.randrange(1_000) for _ in range(20)] == [b.randrange(1_000) for _ in range(20)]
    assert draws[0] == draws[1] != draws[2]


def test_environment_rejects_bad_arguments() -> None:
    """The seed must be an int and the chooser callable."""
    with pytest.raises(ValueError, match=r"^seed must be an int, not 1.5$"):
        Environment(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^chooser must be callable, not 3$"):
        Environment(chooser=3)  # type: ignore[arg-type]


def first_is_fine(name: str, options: Sequence[object]) -> int:
    """A named chooser, for the repr test."""
    return 0


def test_repr_shows_construction() -> None:
    """The repr reads like the call that built the environment."""
    assert repr(Environment()) == "Environment(seed=0)"
    assert repr(Environment(seed=42)) == "Environment(seed=42)"
    assert (
        repr(Environment(3, chooser=first_is_fine)) == "Environment(seed=3, chooser=first_is_fine)"
    )
    assert Environment(seed=5).seed == 5


def test_a_run_raises_the_gc_threshold_and_restores_it(env: Environment) -> None:
    """Collection is rare during a run (it allocates almost no cycles) and as before after."""
    import gc

    from vpmu.sim._core import GC_GEN0_THRESHOLD

    seen: list[int] = []
    env.schedule(lambda: seen.append(gc.get_threshold()[0]), delay_ps=5)
    before = gc.get_threshold()
    env.run(until_ps=10)
    env.schedule(lambda: seen.append(gc.get_threshold()[0]), delay_ps=5)
    env.run()
    assert seen == [max(before[0], GC_GEN0_THRESHOLD)] * 2
    assert gc.get_threshold() == before
