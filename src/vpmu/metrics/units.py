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


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile."""
    rank = max(1, -(-int(q * len(sorted_values) * 1000) // 1000))
    return sorted_values[min(rank, len(sorted_values)) - 1]
