"""Property: any schedule runs in (time, priority, insertion) order."""

from __future__ import annotations

from functools import partial

from hypothesis import given
from hypothesis import strategies as st

from vpmu.sim import Environment

schedules = st.lists(
    st.tuples(st.integers(0, 50), st.integers(-3, 3), st.booleans()),
    max_size=60,
)
"""Entries as (delay_ps, priority, cancelled); small ranges so that ties are common."""


@given(schedules)
def test_random_schedule_runs_sorted(entries: list[tuple[int, int, bool]]) -> None:
    """Any schedule runs sorted by (time, priority, insertion), and cancelled entries do not run."""
    env = Environment()
    ran: list[tuple[int, int, int]] = []
    for index, (delay_ps, priority, cancelled) in enumerate(entries):
        key = (delay_ps, priority, index)
        handle = env.schedule(partial(ran.append, key), delay_ps=delay_ps, priority=priority)
        if cancelled:
            handle.cancel()
    env.run()
    expected = sorted(
        (delay_ps, priority, index)
        for index, (delay_ps, priority, cancelled) in enumerate(entries)
        if not cancelled
    )
    assert ran == expected
    assert env.entries_processed == len(entries)
    assert env.events_processed == sum(not cancelled for _, _, cancelled in entries)
    assert [time_ps for time_ps, _, _ in ran] == sorted(time_ps for time_ps, _, _ in ran)
