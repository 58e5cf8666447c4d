"""Linux perf's sampling defaults and its frequency-mode period estimate, shared by the
host's and the guest's perf.

Sources: tools/perf/util/record.c (record_opts__config_freq: the -F default of 4000 Hz,
lowered to the sysctl), kernel/events/core.c (DEFAULT_MAX_SAMPLE_RATE, perf_calculate_period,
perf_adjust_period; the CPU-time limit: DEFAULT_CPU_TIME_MAX_PERCENT, the sysctl handlers,
update_perf_cpu_limits, perf_sample_event_took, PERF_CPU_HRTIMER).
"""

from __future__ import annotations

from dataclasses import dataclass
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


# -- perf_cpu_time_max_percent: the CPU-time limit on sampling (kernel/events/core.c) ----------
DEFAULT_CPU_TIME_MAX_PERCENT: Final = 25
"""``kernel.perf_cpu_time_max_percent`` at boot (DEFAULT_CPU_TIME_MAX_PERCENT)."""
NR_ACCUMULATED_SAMPLES: Final = 128
"""perf_sample_event_took's running sum decays by 1/128 per sample: its average is over about
the last 128 interrupts (and biased low until that many were seen)."""


def perf_cpu_hrtimer_ms(hz: int) -> int:
    """PERF_CPU_HRTIMER, the default multiplexing interval: 1000 / HZ ms (one tick; 0 when
    HZ > 1000)."""
    return 1000 // hz if hz else 0


def tick_nsec(hz: int) -> int:
    """TICK_NSEC: the tick in nanoseconds, rounded to the nearest (0: no tick)."""
    return (NSEC_PER_SEC + hz // 2) // hz if hz else 0


@dataclass(frozen=True, slots=True)
class RateLowering:
    """One lowering of the sampling limits by perf_sample_event_took, at ``t_ns`` (the
    clock of the interrupt that caused it): what the kernel prints, and the new limits."""

    t_ns: int
    avg_ns: int
    """The interrupts' average length (``__report_avg``)."""
    allowed_ns: int
    """The limit it exceeded (``__report_allowed``)."""
    max_sample_rate: int
    """The new kernel.perf_event_max_sample_rate."""
    max_samples_per_tick: int

    @property
    def message(self) -> str:
        """The kernel's message (perf_duration_warn)."""
        return (f"perf: interrupt took too long ({self.avg_ns} > {self.allowed_ns}), "
                f"lowering kernel.perf_event_max_sample_rate to {self.max_sample_rate}")


class SampleRateLimits:
    """kernel.perf_event_max_sample_rate, kernel.perf_cpu_time_max_percent and what the
    kernel derives from them, for a kernel of ``hz`` ticks per second (0: no tick; the limits
    are then those of HZ = 1, and nothing lowers them).

    The sysctl handlers (perf_event_max_sample_rate_handler, perf_cpu_time_max_percent_handler,
    update_perf_cpu_limits) and perf_sample_event_took as in kernel/events/core.c (v5.x to
    v6.12): each PMU interrupt's length feeds a per-CPU running average; when it exceeds
    ``allowed_ns`` the limit becomes 125% of it and the rate what fits in ``percent`` of a
    tick at that length.
    """

    def __init__(self, hz: int) -> None:
        self.hz = hz or 1
        """HZ (1 for a kernel without a tick)."""
        self.tick_nsec = tick_nsec(self.hz)
        self.cpu_time_max_percent = DEFAULT_CPU_TIME_MAX_PERCENT
        """sysctl_perf_cpu_time_max_percent."""
        self.sample_rate = 0
        """sysctl_perf_event_sample_rate."""
        self.max_samples_per_tick = 0
        self.sample_period_ns = 0
        """perf_sample_period_ns."""
        self.allowed_ns = 0
        """perf_sample_allowed_ns (0: no CPU-time limit)."""
        self._set_sample_rate(DEFAULT_MAX_SAMPLE_RATE)
        self.running_sample_length: dict[int, int] = {}
        """The per-CPU running sum of interrupt lengths (ns)."""
        self.lowerings: list[RateLowering] = []
        """Every lowering so far, in order (the kernel prints them rate-limited)."""

    def __repr__(self) -> str:
        return (f"SampleRateLimits(hz={self.hz}, sample_rate={self.sample_rate}, "
                f"cpu_time_max_percent={self.cpu_time_max_percent})")

    def _update_perf_cpu_limits(self) -> None:
        """update_perf_cpu_limits: allowed = period * percent / 100, at least 1."""
        self.allowed_ns = self.sample_period_ns * self.cpu_time_max_percent // 100 or 1

    def write_max_sample_rate(self, rate: int) -> bool:
        """``echo rate > /proc/sys/kernel/perf_event_max_sample_rate``; False (EINVAL) while
        throttling is off (percent 0 or 100) or if ``rate`` < 1."""
        if self.cpu_time_max_percent in (0, 100) or rate < 1:
            return False
        self._set_sample_rate(rate)
        return True

    def _set_sample_rate(self, rate: int) -> None:
        """What the rate sysctl's handler derives: max_samples_per_tick (rounded up),
        perf_sample_period_ns and, through update_perf_cpu_limits, the allowed length."""
        self.sample_rate = rate
        self.max_samples_per_tick = -(-rate // self.hz)
        self.sample_period_ns = NSEC_PER_SEC // rate
        self._update_perf_cpu_limits()

    def write_cpu_time_max_percent(self, percent: int) -> bool:
        """``echo percent > /proc/sys/kernel/perf_cpu_time_max_percent``: 0 or 100 turns the
        limit off ("Dynamic interrupt throttling disabled, can hang your system!"); False
        (EINVAL) outside 0-100."""
        if not 0 <= percent <= 100:
            return False
        self.cpu_time_max_percent = percent
        if percent in (0, 100):
            self.allowed_ns = 0
        else:
            self._update_perf_cpu_limits()
        return True

    def sample_event_took(self, sample_len_ns: int, *, now_ns: int,
                          cpu: int = 0) -> RateLowering | None:
        """perf_sample_event_took: fold one interrupt's length into the CPU's running average;
        over the limit, lower the limits and return the lowering (also logged)."""
        max_len = self.allowed_ns
        if max_len == 0:
            return None
        running = self.running_sample_length.get(cpu, 0)
        running += sample_len_ns - running // NR_ACCUMULATED_SAMPLES
        self.running_sample_length[cpu] = running
        avg_len = running // NR_ACCUMULATED_SAMPLES
        if avg_len <= max_len:
            return None
        report_avg = avg_len
        avg_len += avg_len // 4  # a threshold 25% above the current length
        limit = self.tick_nsec // 100 * self.cpu_time_max_percent
        per_tick = limit // avg_len if avg_len < limit else 1
        self.allowed_ns = avg_len
        self.max_samples_per_tick = per_tick
        self.sample_rate = per_tick * self.hz
        self.sample_period_ns = NSEC_PER_SEC // self.sample_rate
        lowering = RateLowering(now_ns, report_avg, max_len, self.sample_rate, per_tick)
        self.lowerings.append(lowering)
        return lowering
