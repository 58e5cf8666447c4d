"""``KVM_SET_PMU_EVENT_FILTER``'s uapi (include/uapi/linux/kvm.h): the numbers and the entry
encodings, shared by the kernel-side model (``vpmu.vpmu.filter``) and the guest-side port of
pmu_event_filter_test, which may not import the hypervisor layer.

- *raw event*: a plain filter entry, laid out like an event-select MSR: event select bits
  7:0 and 35:32, umask 15:8.
- *masked entry*: event select 7:0 and 35:32, umask match 15:8, exclude bit 55, umask mask
  63:56 (``KVM_PMU_ENCODE_MASKED_ENTRY``).
"""

from __future__ import annotations

KVM_PMU_EVENT_ALLOW = 0
"""``action``: only events that match the filter count."""
KVM_PMU_EVENT_DENY = 1
"""``action``: events that match the filter do not count."""

KVM_PMU_EVENT_FLAG_MASKED_EVENTS = 1 << 0
"""``flags``: ``events`` holds masked entries (v6.3)."""
KVM_PMU_EVENT_FLAGS_VALID_MASK = KVM_PMU_EVENT_FLAG_MASKED_EVENTS
"""Any other ``flags`` bit is EINVAL."""

KVM_PMU_EVENT_FILTER_MAX_EVENTS = 300
"""``nevents`` above this is E2BIG (pmu.c; the selftest tries 301)."""

KVM_PMU_MASKED_ENTRY_EVENT_SELECT = 0xF_0000_00FF
"""Masked entry: event select, bits 7:0 and 35:32 (whatever the vendor)."""
KVM_PMU_MASKED_ENTRY_UMASK_MATCH = 0xFF00
"""Masked entry: the value ``umask & mask`` must equal, bits 15:8."""
KVM_PMU_MASKED_ENTRY_EXCLUDE = 1 << 55
"""Masked entry: a match vetoes the include entries instead of making one."""
KVM_PMU_MASKED_ENTRY_UMASK_MASK = 0xFF << 56
"""Masked entry: which umask bits are compared, bits 63:56."""
KVM_PMU_MASKED_ENTRY_UMASK_MASK_SHIFT = 56


def raw_event(event_select: int, umask: int) -> int:
    """A plain filter entry for a 12-bit event select and umask (selftests' ``RAW_EVENT``)."""
    return (event_select & 0xF00) << 24 | event_select & 0xFF | (umask & 0xFF) << 8


def masked_entry(event_select: int, mask: int, match: int, exclude: bool | int) -> int:
    """``KVM_PMU_ENCODE_MASKED_ENTRY``: truncates each field and treats any nonzero exclude as 1.

    Truncating like the macro lets the selftest's ``(0xFF, 0xFF, 0xFF, 0xF)`` entry through.
    """
    return (event_select & 0xFF | (event_select & 0xF00) << 24 | (mask & 0xFF) << 56
            | (match & 0xFF) << 8 | int(bool(exclude)) << 55)
