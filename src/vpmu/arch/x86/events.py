"""x86 event encodings: which of the model's event keys (``vpmu.arch.events``) each counts.

An event select (event code + unit mask) names which key a counter counts.
The Intel architectural events are listed by their CPUID.0xA:EBX bit, in the order of the
KVM selftests' ``tools/testing/selftests/kvm/include/x86/pmu.h``. Encodings the model has
no key for count nothing (documented in docs/hardware.md): the model only knows events whose
rates a workload provides.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpmu.arch.events import (  # the neutral keys, re-exported for the x86 tables' users
    BRANCH_MISSES,
    BRANCHES,
    CYCLES,
    EVENT_KEYS,
    INSTRUCTIONS,
    LBR_INSERTS,
    LLC_MISSES,
    LLC_REFERENCES,
    LOADS,
    REF_CYCLES,
    SLOTS,
    STORES,
    TOPDOWN_BACKEND_BOUND,
    TOPDOWN_BAD_SPEC,
    TOPDOWN_FRONTEND_BOUND,
    TOPDOWN_RETIRING,
)

__all__ = ["BRANCHES", "BRANCH_MISSES", "CYCLES", "EVENT_KEYS", "INSTRUCTIONS", "LBR_INSERTS",
           "LLC_MISSES", "LLC_REFERENCES", "LOADS", "REF_CYCLES", "SLOTS", "STORES",
           "TOPDOWN_BACKEND_BOUND", "TOPDOWN_BAD_SPEC", "TOPDOWN_FRONTEND_BOUND",
           "TOPDOWN_RETIRING"]


@dataclass(frozen=True, slots=True)
class ArchEvent:
    """An Intel architectural event: its CPUID.0xA:EBX bit, encoding and model key."""

    ebx_bit: int
    name: str
    event: int
    umask: int
    key: str

    @property
    def encoding(self) -> int:
        """``umask << 8 | event``, as the selftests write it."""
        return self.umask << 8 | self.event


INTEL_ARCH_EVENTS: tuple[ArchEvent, ...] = (
    ArchEvent(0, "cycles", 0x3C, 0x00, CYCLES),
    ArchEvent(1, "instructions", 0xC0, 0x00, INSTRUCTIONS),
    ArchEvent(2, "ref cycles", 0x3C, 0x01, REF_CYCLES),
    ArchEvent(3, "LLC references", 0x2E, 0x4F, LLC_REFERENCES),
    ArchEvent(4, "LLC misses", 0x2E, 0x41, LLC_MISSES),
    ArchEvent(5, "branches", 0xC4, 0x00, BRANCHES),
    ArchEvent(6, "branch misses", 0xC5, 0x00, BRANCH_MISSES),
    ArchEvent(7, "topdown slots", 0xA4, 0x01, SLOTS),
    ArchEvent(8, "topdown backend bound", 0xA4, 0x02, TOPDOWN_BACKEND_BOUND),
    ArchEvent(9, "topdown bad speculation", 0x73, 0x00, TOPDOWN_BAD_SPEC),
    ArchEvent(10, "topdown frontend bound", 0x9C, 0x01, TOPDOWN_FRONTEND_BOUND),
    ArchEvent(11, "topdown retiring", 0xC2, 0x02, TOPDOWN_RETIRING),
    ArchEvent(12, "LBR inserts", 0xE4, 0x01, LBR_INSERTS),
)
"""selftests ``include/x86/pmu.h`` (13 events in newer trees, 8 in older ones)."""

INTEL_FIXED_EVENTS: tuple[str, ...] = (INSTRUCTIONS, CYCLES, REF_CYCLES, SLOTS)
"""What fixed counter i counts: INST_RETIRED.ANY, CPU_CLK_UNHALTED.THREAD, .REF_TSC,
TOPDOWN.SLOTS (SDM table 20-2)."""

INTEL_FIXED_PSEUDO_ENCODING: tuple[int, ...] = (0x00C0, 0x003C, 0x0300, 0x0400)
"""Linux's pseudo-encodings for the fixed counters (``0x0300`` ref-TSC, ``0x0400`` slots)."""

_INTEL_OTHER: dict[tuple[int, int], str] = {
    (0xD0, 0x81): LOADS,   # MEM_INST_RETIRED.ALL_LOADS (ICX/SPR event tables)
    (0xD0, 0x82): STORES,  # MEM_INST_RETIRED.ALL_STORES
    (0x00, 0x01): INSTRUCTIONS,  # INST_RETIRED.ANY fixed pseudo-encoding
}

AMD_EVENTS: dict[int, str] = {
    0x076: CYCLES,          # ls_not_halted_cyc (Zen PPR)
    0x0C0: INSTRUCTIONS,    # ex_ret_instr
    0x0C2: BRANCHES,        # ex_ret_brn
    0x0C3: BRANCH_MISSES,   # ex_ret_brn_misp
}
"""AMD Zen core events the model counts (12-bit select: bits 35:32 and 7:0)."""

AMD_UMASKED_EVENTS: dict[tuple[int, int], str] = {
    (0x060, 0xFF): LLC_REFERENCES,  # l2_request_g1.all: perf's Zen cache-references (0xff60)
    (0x064, 0x09): LLC_MISSES,      # l2_cache_req_stat.ic_dc_miss_in_l2: cache-misses (0x0964)
}
"""AMD events whose umask matters. Zen's generic cache-references/misses count L2 requests and
misses; the model's LLC columns stand in for them (assumption, docs/hardware.md)."""

AMD_LS_DISPATCH = 0x029
"""ls_dispatch: umask bit 0 loads, bit 1 stores, bit 2 load-op-store (Zen PPR)."""


def intel_event_keys(event: int, umask: int) -> tuple[str, ...]:
    """The keys an Intel GP counter programmed with (event, umask) counts.

    ``MEM_INST_RETIRED.ANY`` (0xD0/0x83) counts loads and stores: the masked-events filter
    test programs it as "loads+stores".
    """
    for ev in INTEL_ARCH_EVENTS:
        if ev.event == event and ev.umask == umask:
            return (ev.key,)
    if (event, umask) == (0xD0, 0x83):
        return (LOADS, STORES)
    key = _INTEL_OTHER.get((event, umask))
    return (key,) if key else ()


def amd_event_keys(event12: int, umask: int) -> tuple[str, ...]:
    """The keys an AMD counter programmed with a 12-bit event select and umask counts."""
    if event12 == AMD_LS_DISPATCH:
        # Assumption: load-op-store dispatches (bit 2) are not modelled separately.
        return tuple(k for b, k in ((0b01, LOADS), (0b10, STORES)) if umask & b)
    key = AMD_UMASKED_EVENTS.get((event12, umask)) or AMD_EVENTS.get(event12)
    return (key,) if key else ()


ATOM_OVERCOUNT_ERRATA: dict[int, frozenset[str]] = {
    0xAF: frozenset({INSTRUCTIONS, BRANCHES}),  # Sierra Forest
    0x4D: frozenset({INSTRUCTIONS, BRANCHES}),  # Avaton, Rangeley
    0x5F: frozenset({INSTRUCTIONS, BRANCHES}),  # Denverton
    0x86: frozenset({INSTRUCTIONS, BRANCHES}),  # Jacobsville
    0xDD: frozenset({INSTRUCTIONS}),            # Clearwater Forest
}
"""Intel family-6 Atom models whose instruction/branch counts overcount, by model: the keys
affected (kvm-unit-tests lib/x86/pmu.c and the selftests' include/x86/pmu.h share the
list). Exact checks relax to >= on these."""


def overcounts(family: int, model: int) -> frozenset[str]:
    """The event keys an overcount erratum affects on this part (empty for most)."""
    return ATOM_OVERCOUNT_ERRATA.get(model, frozenset()) if family == 6 else frozenset()
