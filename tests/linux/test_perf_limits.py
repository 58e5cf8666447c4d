"""The sampling sysctls and perf_sample_event_took (``vpmu.linux.perf.SampleRateLimits``),
against values worked out by hand from kernel/events/core.c's arithmetic."""

from __future__ import annotations

from vpmu.linux.perf import (
    DEFAULT_CPU_TIME_MAX_PERCENT,
    DEFAULT_MAX_SAMPLE_RATE,
    NR_ACCUMULATED_SAMPLES,
    SampleRateLimits,
    perf_cpu_hrtimer_ms,
    tick_nsec,
)

HZ = 1000
DEFAULT_ALLOWED_NS = 2500
"""perf_sample_allowed_ns at boot: 10^9 / 100000 ns x 25 / 100."""
LONG_NMI_NS = 2_000_000
"""One 2 ms interrupt: the running sum's first average is 2,000,000 / 128 = 15,625 ns."""


def test_boot_values_are_the_kernels_defaults() -> None:
    """100000 samples/s, 25%: 100 per 1 ms tick, 2.5 µs allowed per interrupt."""
    limits = SampleRateLimits(HZ)
    assert (limits.sample_rate, limits.cpu_time_max_percent) == (DEFAULT_MAX_SAMPLE_RATE,
                                                                  DEFAULT_CPU_TIME_MAX_PERCENT)
    assert (limits.max_samples_per_tick, limits.allowed_ns) == (100, DEFAULT_ALLOWED_NS)
    assert (tick_nsec(HZ), tick_nsec(300), tick_nsec(0)) == (1_000_000, 3_333_333, 0)
    assert (perf_cpu_hrtimer_ms(HZ), perf_cpu_hrtimer_ms(250), perf_cpu_hrtimer_ms(2000)) == (
        1, 4, 0)


def test_sample_rate_write_recomputes_the_limits() -> None:
    """perf_event_max_sample_rate_handler: seed 001's 10000 gives 10 per tick and
    100 µs x 25% = 25 µs per interrupt; HZ 300 rounds the per-tick count up."""
    limits = SampleRateLimits(HZ)
    assert limits.write_max_sample_rate(10_000)
    assert (limits.max_samples_per_tick, limits.sample_period_ns, limits.allowed_ns) == (
        10, 100_000, 25_000)
    hz300 = SampleRateLimits(300)
    assert hz300.write_max_sample_rate(1000)
    assert hz300.max_samples_per_tick == 4  # DIV_ROUND_UP(1000, 300)


def test_sample_rate_write_is_refused_while_the_limit_is_off() -> None:
    """With perf_cpu_time_max_percent 0 (or 100) the rate cannot be written (EINVAL): seed
    001 writes the rate first, then 0."""
    limits = SampleRateLimits(HZ)
    assert limits.write_max_sample_rate(10_000)
    assert limits.write_cpu_time_max_percent(0)
    assert limits.allowed_ns == 0
    assert not limits.write_max_sample_rate(50_000)
    assert limits.sample_rate == 10_000
    assert limits.sample_event_took(10 * LONG_NMI_NS, now_ns=1) is None
    assert not limits.write_cpu_time_max_percent(101)


def test_one_long_interrupt_lowers_the_rate() -> None:
    """avg 15,625 > 2,500: the limit becomes 15,625 x 1.25 = 19,531 ns and the rate what
    fits in 25% of a tick at that length: 250,000 // 19,531 = 12 per tick, 12000/s."""
    limits = SampleRateLimits(HZ)
    lowering = limits.sample_event_took(LONG_NMI_NS, now_ns=7)
    assert lowering is not None
    assert (lowering.t_ns, lowering.avg_ns, lowering.allowed_ns) == (7, 15_625, 2500)
    assert (lowering.max_sample_rate, lowering.max_samples_per_tick) == (12_000, 12)
    assert lowering.message == ("perf: interrupt took too long (15625 > 2500), lowering "
                                "kernel.perf_event_max_sample_rate to 12000")
    assert (limits.allowed_ns, limits.sample_period_ns) == (19_531, 83_333)
    assert limits.lowerings == [lowering]


def test_an_interrupt_longer_than_the_share_leaves_one_sample_per_tick() -> None:
    """avg x 1.25 >= 25% of the tick: one sample per tick, the rate HZ."""
    limits = SampleRateLimits(HZ)
    lowering = limits.sample_event_took(NR_ACCUMULATED_SAMPLES * 300_000, now_ns=0)
    assert lowering is not None
    assert (lowering.max_samples_per_tick, lowering.max_sample_rate) == (1, HZ)


def test_the_average_decays_over_128_interrupts() -> None:
    """Short interrupts under the limit lower nothing, whatever their number; the sum
    decays by 1/128 per interrupt, so it converges on 128 x the length."""
    limits = SampleRateLimits(HZ)
    for _ in range(2000):
        assert limits.sample_event_took(2400, now_ns=0) is None
    assert limits.running_sample_length[0] // NR_ACCUMULATED_SAMPLES in range(2390, 2401)
