"""pmu_event_filter_test's definitions: the filter uapi as the selftest includes it, and the
events and guest blocks it measures (split from the suite to keep each file readable).

The uapi constants and entry encoders come from ``vpmu.uapi.kvm_pmu``, the one
copy the kernel-side model (``vpmu.vpmu.filter``) uses too.
"""

from __future__ import annotations

from vpmu.arch.x86 import events as ev
from vpmu.arch.x86.msrs import EVTSEL_EN, EVTSEL_OS
from vpmu.uapi.kvm_pmu import (
    KVM_PMU_EVENT_DENY,
    KVM_PMU_EVENT_FILTER_MAX_EVENTS,
    KVM_PMU_EVENT_FLAGS_VALID_MASK,
    masked_entry,
    raw_event,
)
from vpmu.workloads.streams import Stream

# -- the uapi (linux/kvm.h), as the selftest includes it: vpmu.uapi.kvm_pmu ----

MAX_FILTER_EVENTS = KVM_PMU_EVENT_FILTER_MAX_EVENTS
"""The selftest's name (2.1: the filter holds at most 300 entries)."""
MAX_TEST_EVENTS = 10
"""Room kept after the dummy entries of the dense masked-events filter (290 + 10 = 300)."""
INVALID_ACTION = KVM_PMU_EVENT_DENY + 1
INVALID_FLAGS = KVM_PMU_EVENT_FLAGS_VALID_MASK << 1
INVALID_NEVENTS = MAX_FILTER_EVENTS + 1


def include(event_select: int, mask: int, match: int) -> int:
    """INCLUDE_MASKED_ENTRY."""
    return masked_entry(event_select, mask, match, False)


def exclude(event_select: int, mask: int, match: int) -> int:
    """EXCLUDE_MASKED_ENTRY."""
    return masked_entry(event_select, mask, match, True)


# -- events (vpmu.arch.x86.events) -----------------------------------------------------------

def _intel(key: str) -> int:
    return next(e.encoding for e in ev.INTEL_ARCH_EVENTS if e.key == key)


def _amd(key: str) -> int:
    return next(select for select, k in ev.AMD_EVENTS.items() if k == key)


INTEL_BRANCHES = _intel(ev.BRANCHES)
INTEL_INSTRUCTIONS = _intel(ev.INSTRUCTIONS)
AMD_ZEN_BRANCHES = _amd(ev.BRANCHES)
AMD_ZEN_INSTRUCTIONS = _amd(ev.INSTRUCTIONS)
"""Same encoding as Intel's instructions retired (0xC0), which the base list relies on."""

BASE_EVENTS = (*(e.encoding for e in ev.INTEL_ARCH_EVENTS[:8]), AMD_ZEN_BRANCHES)
"""base_event_filter: Intel arch events 0-7 plus AMD's branches retired."""
MEASURED_EVENTS = (INTEL_INSTRUCTIONS, INTEL_BRANCHES, AMD_ZEN_BRANCHES)
"""What test_not_member_* remove from the base list."""
AMD_DENIED_12BIT = raw_event(0x100 | AMD_ZEN_BRANCHES, 0)
"""test_amd_deny_list's event 0x1C2: differs from branches (0xC2) only in select bit 8."""

MEM_INST_RETIRED = 0xD0
MEM_INST_RETIRED_UMASKS = (0x81, 0x82, 0x83)
"""ALL_LOADS, ALL_STORES, ANY (loads + stores): the Intel masked-events counters."""
LS_DISPATCH = ev.AMD_LS_DISPATCH
LS_DISPATCH_UMASKS = (1 << 0, 1 << 1, 1 << 2)
"""Loads, stores, load-op-stores: the AMD masked-events counters."""
MASKED_EVENTS_INTEL_MODELS = (0x8F, 0x6A, 0x55)
"""supports_event_mem_inst_retired: Sapphire Rapids, Ice Lake server, Skylake/Cascade Lake
server (family 6). Other models skip the masked-events test upstream."""

NUM_BRANCHES = 42
"""Iterations of the measured ``loop .``: 42 branches (the exact count is only logged)."""
OS_EN = EVTSEL_OS | EVTSEL_EN
FIXED_PMC_KERNEL = 0x1
"""FIXED_CTR_CTRL field: count at CPL 0 only."""

MEM_BLOCK_LOADS = 2
"""masked_events_guest_test's asm: MOV to memory, MOV from memory, INC of memory; the load
and the INC's read are loads."""
MEM_BLOCK_STORES = 2
"""The MOV to memory and the INC's write are stores."""


def mem_block() -> Stream:
    """The masked-events guest body: 3 instructions, 2 loads, 2 stores. Estimate: 3 cycles.

    The model has no separate load-op-store column, so the INC is a load and a store."""
    return Stream("pmu_event_filter mem block", {
        ev.INSTRUCTIONS: 3, ev.LOADS: MEM_BLOCK_LOADS, ev.STORES: MEM_BLOCK_STORES,
        ev.CYCLES: 3})
