"""How the results print numbers: times in ns to 0.1, histograms most frequent first, and the
nearest-rank percentile. Every metric section uses these, so one run gives one set of bytes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def ns(ps: float) -> float:
    """Picoseconds as the results print times: ns to one decimal."""
    return round(ps / 1000, 1)


def ranked(counts: Counter[str]) -> dict[str, int]:
    """Most frequent first, ties by name: the order of a kvm_exit histogram."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def nearest_rank(n: int, q: float) -> int:
    """The 1-based nearest rank of quantile ``q`` among ``n`` values (at least 1, at most n)."""
    return min(max(1, -(-int(q * n * 1000) // 1000)), n)


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile."""
    return sorted_values[nearest_rank(len(sorted_values), q) - 1]


def percentile_of_counts(counts: Sequence[tuple[int, int]], q: float) -> int:
    """Nearest-rank percentile of values given as sorted (value, how many) pairs: the same
    as ``percentile`` of the values each repeated its count times."""
    rank, seen = nearest_rank(sum(n for _, n in counts), q), 0
    for value, n in counts:
        seen += n
        if seen >= rank:
            return value
    raise ValueError("no values")
