"""``Environment.shift``: a model's fast-forward moves the clock and the live queue at once."""

from __future__ import annotations

import pytest

from vpmu.sim import Environment


def test_shift_moves_live_entries_and_leaves_cancelled_ones() -> None:
    env = Environment()
    seen: list[int] = []
    env.schedule(lambda: seen.append(env.now_ps), delay_ps=10)
    env.schedule(lambda: seen.append(-1), delay_ps=20).cancel()
    env.shift(1000, 5)
    assert env.now_ps == 1000 and env.entries_queued == 7
    env.run()
    assert seen == [1010]


def test_shift_stops_at_the_horizon() -> None:
    """Within ``run(until_ps)`` a shift may not carry the clock past ``until_ps``."""
    env = Environment()
    errors: list[ValueError] = []

    def jump() -> None:
        try:
            env.shift(101, 0)
        except ValueError as e:
            errors.append(e)
    env.schedule(jump)
    env.run(100)
    assert len(errors) == 1 and env.now_ps == 100


def test_pass_ps_lets_a_shift_carry_the_run_past_until() -> None:
    """A polling caller's run ends where the shift left the clock, not back at until."""
    env = Environment()
    env.schedule(lambda: env.shift(250, 0), delay_ps=50)
    env.run(100, pass_ps=400)
    assert env.now_ps == 300 and env.horizon_ps is None
    with pytest.raises(ValueError, match="passes the run's horizon"):
        env.schedule(lambda: env.shift(500, 0))
        env.run(400, pass_ps=500)


def test_pass_ps_below_until_is_refused() -> None:
    with pytest.raises(ValueError, match="pass_ps"):
        Environment().run(100, pass_ps=99)
