"""``perf_event_attr``: the subset of fields that matters to PMU virtualization.

Validated eagerly with perf_event_open's rules that the model needs (one error shape: "X must
be Y, not Z"); the host tools and KVM's kernel counters both build these.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpmu.uapi.perf_event import PERF_TYPE_HARDWARE, PERF_TYPE_RAW

PERF_TYPE_MAX = 6
"""The first dynamic PMU type (``enum perf_type_id``): a PMU registered with type -1 (every
arm_pmu, x86's ``cpu_atom``) gets an id from here on (``perf_pmu_register``)."""
PERF_PMU_TYPE_SHIFT = 32
"""A ``PERF_TYPE_HARDWARE`` config's bits 63:32 name the PMU (``PERF_PMU_CAP_EXTENDED_HW_TYPE``:
the perf tool opens one such event per core PMU on a host with several)."""
PERF_HW_EVENT_MASK = (1 << PERF_PMU_TYPE_SHIFT) - 1


@dataclass(frozen=True, slots=True)
class PerfEventAttr:
    """What an event counts and how (include/uapi/linux/perf_event.h)."""

    type: int = PERF_TYPE_HARDWARE
    """PERF_TYPE_HARDWARE, PERF_TYPE_RAW, or a PMU's own (dynamic) type."""
    config: int = 0
    config1: int = 0
    """A PMU's extension of ``config`` (arm_pmuv3: bit 0 asks for a 64-bit counter)."""
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
        if self.type not in (PERF_TYPE_HARDWARE, PERF_TYPE_RAW) and \
                not (isinstance(self.type, int) and self.type >= PERF_TYPE_MAX):
            raise ValueError(f"type must be PERF_TYPE_HARDWARE (0), PERF_TYPE_RAW (4) or a "
                             f"PMU's dynamic type (>= {PERF_TYPE_MAX}), not {self.type!r}")
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
    def hw_id(self) -> int:
        """A PERF_TYPE_HARDWARE event's generic id (its config without the PMU type)."""
        return self.config & PERF_HW_EVENT_MASK

    @property
    def extended_type(self) -> int:
        """The PMU a PERF_TYPE_HARDWARE config names in bits 63:32 (0: none)."""
        return self.config >> PERF_PMU_TYPE_SHIFT if self.type == PERF_TYPE_HARDWARE else 0

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
