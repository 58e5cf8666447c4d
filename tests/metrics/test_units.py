"""The nearest-rank percentile of a list, and of the same values counted per value (how a run
keeps its PMI latencies)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from vpmu.metrics.units import percentile, percentile_of_counts


@given(st.lists(st.integers(0, 50), min_size=1, max_size=300),
       st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0]))
def test_counted_values_give_the_lists_percentile(values: list[int], q: float) -> None:
    """Counting each value instead of keeping the list changes no percentile."""
    assert percentile_of_counts(sorted(Counter(values).items()), q) == percentile(sorted(values), q)


def test_nearest_rank_examples() -> None:
    """p50 of 1..4 is the 2nd value, p99 of 100 values the 99th, p99 of 1 value that value."""
    assert percentile([1, 2, 3, 4], 0.5) == 2
    assert percentile(list(range(1, 101)), 0.99) == 99
    assert percentile_of_counts([(7, 1)], 0.99) == 7
    assert percentile_of_counts([(1, 98), (5, 1), (9, 1)], 0.99) == 5
