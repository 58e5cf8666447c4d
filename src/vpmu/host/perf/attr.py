"""``perf_event_attr``: the subset of fields that matters to PMU virtualization.

Validated eagerly with perf_event_open's rules that the model needs (one error shape: "X must
be Y, not Z"); the host tools and KVM's kernel counters both build these.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpmu.uapi.perf_event import PERF_TYPE_HARDWARE, PERF_TYPE_RAW


@dataclass(frozen=True, slots=True)
class PerfEventAttr:
    """What an event counts and how (include/uapi/linux/perf_event.h)."""

    type: int = PERF_TYPE_HARDWARE
    config: int = 0
    exclude_user: bool = False
    exclude_kernel: bool = False
    exclude_hv: bool = False
    exclude_idle: bool = False
    exclude_host: bool = False
    """Count only in guest mode (perf ':G'; KVM's guest counters set it)."""
    exclude_guest: bool = False
    """Do not count in guest mode (perf ':H', and the perf tool's default for some events)."""
    pinned: bool = False
    """Must always be on a counter while its context is active, or go to error state."""
    disabled: bool = False
    """Created disabled; ``enable`` starts it."""
    sample_period: int = 0
    """Sampling: overflow every this many events (0: a counting event)."""
    sample_freq: int = 0
    """Frequency mode: target samples per second; the period is re-estimated (``freq``)."""
    freq: bool = False
    precise_ip: int = 0
    branch_sample_type: int = 0
    """PERF_SAMPLE_BRANCH_* bits: a sample carries the LBR's branch stack (``perf record -b``,
    ``--call-graph lbr``); 0 for an event without one."""
    name: str = ""
    """A label for reports (perf tool's event name)."""

    def __post_init__(self) -> None:
        if self.type not in (PERF_TYPE_HARDWARE, PERF_TYPE_RAW):
            raise ValueError(f"type must be PERF_TYPE_HARDWARE (0) or PERF_TYPE_RAW (4), "
                             f"not {self.type!r}")
        if self.freq and self.sample_freq <= 0:
            raise ValueError(f"sample_freq must be positive with freq, not {self.sample_freq!r}")
        if not self.freq and self.sample_period < 0:
            raise ValueError(f"sample_period must be >= 0, not {self.sample_period!r}")
        if not 0 <= self.branch_sample_type < 1 << 64:
            raise ValueError(f"branch_sample_type must be a 64-bit mask, not "
                             f"{self.branch_sample_type!r}")
        if not 0 <= self.precise_ip <= 3:
            raise ValueError(f"precise_ip must be 0..3, not {self.precise_ip!r}")

    @property
    def is_sampling(self) -> bool:
        """The event samples (has a period or a frequency)."""
        return self.freq or self.sample_period > 0

    @property
    def has_branch_stack(self) -> bool:
        """has_branch_stack(): the event is an LBR user (needs_branch_stack)."""
        return self.branch_sample_type != 0

    def label(self) -> str:
        """The name reports show."""
        return self.name or f"{self.type}:{self.config:#x}"
