"""The guest kernel's clock (sched_clock / perf_clock) as each architecture reads it.

perf's times (time_enabled / time_running, the frequency-mode estimate, a sample's time) come
from perf_clock(), which is local_clock() and so sched_clock(): on x86 the TSC (RDTSC), on
arm64 the generic timer's virtual count (MRS CNTVCT_EL0, arch_timer_read_counter; its
frequency is CNTFRQ_EL0). A ``GuestClock`` reads the counter with the architecture's port
operation and converts counts to nanoseconds exactly (assumption: the kernel's mult/shift
approximation of the conversion is not modelled).
"""

from __future__ import annotations

from dataclasses import dataclass

from vpmu.guest.linux.pmu import Gen
from vpmu.guest.port import Mrs, Rdtsc

NSEC_PER_SEC = 1_000_000_000


@dataclass(frozen=True, slots=True)
class TscClock:
    """x86: the TSC at ``mhz`` (the kernel's calibrated tsc_khz)."""

    mhz: int

    def read(self) -> Gen[int]:
        """RDTSC (never faults)."""
        return int((yield Rdtsc()))

    def to_ns(self, count: int) -> int:
        """TSC counts to nanoseconds."""
        return count * 1000 // self.mhz


@dataclass(frozen=True, slots=True)
class ArchTimerClock:
    """arm64: the generic timer's virtual counter at ``hz`` (CNTFRQ_EL0)."""

    hz: int

    @property
    def mhz(self) -> int:
        """The counter's frequency in whole MHz (what a ``RunResult`` records)."""
        return self.hz // 1_000_000

    def read(self) -> Gen[int]:
        """MRS CNTVCT_EL0; a fault (no timer) reads as 0."""
        value = yield Mrs("CNTVCT_EL0")
        return value if isinstance(value, int) else 0

    def to_ns(self, count: int) -> int:
        """Timer counts to nanoseconds."""
        return count * NSEC_PER_SEC // self.hz


GuestClock = TscClock | ArchTimerClock
"""The clock a booted guest reads."""
