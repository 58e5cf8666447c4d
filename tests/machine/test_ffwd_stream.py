"""The main stream's replay over skipped periods equals ``Stream.remainder`` slice by slice."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vpmu.arch import events as ev
from vpmu.machine.ffwd_stream import advance
from vpmu.sim import cycles_to_ps
from vpmu.workloads.streams import Stream


def _step_by_step(stream: Stream, elapsed: list[int], mhz: int, periods: int
                  ) -> tuple[dict[str, int], int]:
    """What the model does: each slice interrupted after its length, until a period in
    which one would not be (the stream would end in it)."""
    for done in range(periods):
        current: Stream | None = stream
        for e in elapsed:
            assert current is not None
            duration = max(cycles_to_ps(current.cycles, mhz), 1)
            current = current.remainder(e, duration) if e < duration else None
            if current is None:
                return dict(stream.counts), done
        assert current is not None
        stream = current
    return dict(stream.counts), periods


@settings(max_examples=150, deadline=None)
@given(cycles=st.integers(10**6, 10**9),
       rates=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
       elapsed=st.lists(st.integers(0, 5 * 10**8), min_size=1, max_size=5),
       mhz=st.sampled_from([1900, 2000, 2300, 2400, 2700, 3000]),
       periods=st.integers(0, 400))
def test_advance_equals_remainder_slice_by_slice(cycles: int, rates: list[int],
                                                 elapsed: list[int], mhz: int,
                                                 periods: int) -> None:
    keys = [ev.INSTRUCTIONS, ev.BRANCHES, ev.LOADS, ev.LLC_MISSES][:len(rates)]
    counts = {ev.CYCLES: cycles}
    counts |= {k: cycles * r // 10**6 for k, r in zip(keys, rates, strict=True)}
    expected = _step_by_step(Stream("s", counts), elapsed, mhz, periods)
    assert advance(counts, elapsed, mhz, periods) == expected


def test_a_long_replay_flips_and_stops_before_the_end() -> None:
    """A stream of ~ 2,000 periods' work: the small counts' rounding flips many times, and
    the replay stops at the period in which the stream would end."""
    counts = {ev.CYCLES: 8_000_000_000, ev.INSTRUCTIONS: 20_000_000_000,
              ev.BRANCHES: 2_500_000_000, ev.LLC_MISSES: 500_003}
    elapsed = [993_000_001, 997_400_013, 1_000_000_000, 999_999_999, 3]
    expected = _step_by_step(Stream("s", counts), elapsed, 2000, 5000)
    assert 1000 < expected[1] < 5000
    assert advance(counts, elapsed, 2000, 5000) == expected
