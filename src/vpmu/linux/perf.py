"""Linux perf's sampling defaults and its frequency-mode period estimate, shared by the
host's and the guest's perf.

Sources: tools/perf/util/record.c (record_opts__config_freq: the -F default of 4000 Hz,
lowered to the sysctl), kernel/events/core.c (DEFAULT_MAX_SAMPLE_RATE, perf_calculate_period,
perf_adjust_period).
"""

from __future__ import annotations

from typing import Final

DEFAULT_FREQ: Final = 4000
"""``perf record`` samples at 4000 Hz when given neither -F nor -c (perf's ``record.freq``)."""
DEFAULT_MAX_SAMPLE_RATE: Final = 100_000
"""``kernel.perf_event_max_sample_rate`` at boot (DEFAULT_MAX_SAMPLE_RATE)."""
NSEC_PER_SEC: Final = 1_000_000_000


def perf_calculate_period(sample_freq: int, nsec: int, count: int) -> int:
    """@count in @nsec at a target of sample_freq Hz: count * 10^9 / (nsec * sample_freq)
    (exact here; the kernel's REDUCE_FLS only avoids 64-bit overflow)."""
    divisor = nsec * sample_freq
    dividend = count * NSEC_PER_SEC
    return dividend // divisor if divisor else dividend


def low_pass(sample_period: int, target: int) -> int:
    """perf_adjust_period's filter: move 1/8 of the way, rounding away from the current
    period as C's ``(delta ± 7) / 8`` does; never 0."""
    delta = target - sample_period
    delta = (delta + 7) // 8 if delta >= 0 else -((-delta + 7) // 8)
    return sample_period + delta or 1
