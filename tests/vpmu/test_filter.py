"""KVM_SET_PMU_EVENT_FILTER as data: the pmu_event_filter_test cases (conformance_suites.md
2.3) and a property against a linear-scan reference."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpmu.vpmu.filter import (
    AMD64_EVENTSEL_EVENT,
    ARCH_PERFMON_EVENTSEL_EVENT,
    KVM_PMU_EVENT_ALLOW,
    KVM_PMU_EVENT_DENY,
    KVM_PMU_EVENT_FILTER_MAX_EVENTS,
    KVM_PMU_EVENT_FLAG_MASKED_EVENTS,
    KVM_PMU_EVENT_FLAGS_VALID_MASK,
    Errno,
    PmuEventFilter,
    check_pmu_event_filter,
    masked_entry,
    raw_event,
    set_pmu_event_filter,
)

SETTINGS = settings(derandomize=True, database=None, deadline=None, print_blob=False)
"""Fixed examples, so CI sees the same ones (as tests/properties/strategies.py)."""

ALLOW, DENY, MASKED = KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY, KVM_PMU_EVENT_FLAG_MASKED_EVENTS
OS_EN = 1 << 17 | 1 << 22
"""EVNTSEL OS and EN: how the selftest's guest programs its GP counters."""
U64 = (1 << 64) - 1
VENDORS = {"intel": ARCH_PERFMON_EVENTSEL_EVENT, "amd": AMD64_EVENTSEL_EVENT}

# selftests include/x86/pmu.h: Intel arch events 0-7 (umask<<8 | event) plus AMD branches.
INTEL_BRANCHES, INTEL_INSTRUCTIONS, AMD_BRANCHES, AMD_INSTRUCTIONS = 0x00C4, 0x00C0, 0xC2, 0xC0
BASE_EVENTS = (0x003C, 0x00C0, 0x013C, 0x4F2E, 0x412E, 0x00C4, 0x00C5, 0x01A4, 0xC2)
"""The selftest's base event list: Intel arch events 0-7 and AMD 0xC2 (raw events)."""
MEASURED = {"intel": (INTEL_BRANCHES, INTEL_INSTRUCTIONS), "amd": (AMD_BRANCHES, AMD_INSTRUCTIONS)}
"""GP0 counts branches and GP1 instructions in the guest measurement."""


def accepted(result: PmuEventFilter | Errno) -> PmuEventFilter:
    """The filter, failing the test if the ioctl model refused it."""
    assert isinstance(result, PmuEventFilter), f"expected a filter, got {result!r}"
    return result


def counts(pmu_filter: PmuEventFilter, vendor: str) -> tuple[bool, bool]:
    """Whether GP0 (branches) and GP1 (instructions) may count under ``pmu_filter``."""
    branches, instructions = MEASURED[vendor]
    return pmu_filter.allows(0, branches | OS_EN), pmu_filter.allows(1, instructions | OS_EN)


# --- ioctl validation (test_filter_ioctl) ---------------------------------------------------


@pytest.mark.parametrize(("kwargs", "errno"), [
    ({"action": 2}, Errno.EINVAL),
    ({"flags": KVM_PMU_EVENT_FLAGS_VALID_MASK << 1}, Errno.EINVAL),
    ({"nevents": KVM_PMU_EVENT_FILTER_MAX_EVENTS + 1}, Errno.E2BIG),
    ({"pad": (0, 0, 1, 0)}, Errno.EINVAL),
    ({"events": (U64,), "flags": MASKED}, Errno.EINVAL),
    ({"events": (1 << 40,), "flags": MASKED}, Errno.EINVAL),
    ({"nevents": 2, "events": (INTEL_BRANCHES,)}, Errno.EFAULT),
    # The kernel's order: action, flags, nevents, then the entries.
    ({"action": 2, "flags": 2, "nevents": 301}, Errno.EINVAL),
    ({"flags": 2, "nevents": 301}, Errno.EINVAL),
    ({"nevents": 301, "pad": (1, 0, 0, 0)}, Errno.E2BIG),
    ({"nevents": 301, "events": (U64,), "flags": MASKED}, Errno.E2BIG),
])
def test_invalid_filters_get_the_kernels_errno(kwargs: dict[str, object], errno: Errno) -> None:
    """Bad action, flags or pad, too many events or a bad masked entry: an errno, never a raise."""
    args: dict[str, object] = {"action": ALLOW, "events": BASE_EVENTS, **kwargs}
    assert set_pmu_event_filter(**args) is errno  # type: ignore[arg-type]


def test_the_selftests_valid_filters_are_accepted() -> None:
    """~0 as a plain event, (0xFF, 0xFF, 0xFF, 0xF) masked, and fixed bits past the counters."""
    plain = accepted(set_pmu_event_filter(ALLOW, [U64]))
    assert plain.events == () and plain.nevents == 0
    masked = accepted(set_pmu_event_filter(ALLOW, [masked_entry(0xFF, 0xFF, 0xFF, 0xF)],
                                           flags=MASKED))
    assert masked.includes == () and masked.excludes == (0xFF00_0000_0000_FFFF | 1 << 55,)
    wide = accepted(set_pmu_event_filter(ALLOW, BASE_EVENTS, fixed_counter_bitmap=0xFFFF_FFF0))
    assert wide.fixed_counter_bitmap == 0xFFFF_FFF0
    full = accepted(set_pmu_event_filter(DENY, [0xC0] * KVM_PMU_EVENT_FILTER_MAX_EVENTS))
    assert full.nevents == KVM_PMU_EVENT_FILTER_MAX_EVENTS


def test_only_the_first_nevents_entries_are_read() -> None:
    """The kernel copies ``nevents`` entries; whatever follows in the buffer is not the filter."""
    pmu_filter = accepted(set_pmu_event_filter(ALLOW, [INTEL_BRANCHES, INTEL_INSTRUCTIONS],
                                               nevents=1))
    assert counts(pmu_filter, "intel") == (True, False)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"action": -1}, "action must be a u32"),
    ({"fixed_counter_bitmap": 1 << 32}, "fixed_counter_bitmap must be a u32"),
    ({"events": (1 << 64,)}, "events must be u64 values"),
])
def test_values_no_ioctl_could_carry_are_our_bugs(kwargs: dict[str, object], message: str) -> None:
    """A field wider than the uapi struct's raises: no userspace can pass it, so a caller erred."""
    args: dict[str, object] = {"action": ALLOW, "events": (), **kwargs}
    with pytest.raises(ValueError, match=message):
        set_pmu_event_filter(**args)  # type: ignore[arg-type]


def test_the_constructor_checks_the_normal_form() -> None:
    """Unsorted entries or a wrong split are a bug; repr rebuilds an equal filter."""
    with pytest.raises(ValueError, match="events must be sorted masked entries"):
        PmuEventFilter(ALLOW, (0xFF00_0000_0000_00C4, 0xFF00_0000_0000_00C0), 0, 0, 2,
                       nr_includes=2)
    with pytest.raises(ValueError, match="events must be sorted masked entries"):
        PmuEventFilter(ALLOW, (masked_entry(0xC0, 0, 0, True),), 0, MASKED, 1, nr_includes=1)
    pmu_filter = accepted(set_pmu_event_filter(DENY, [masked_entry(0x1C2, 0xF0, 0x10, True)],
                                               flags=MASKED, fixed_counter_bitmap=5))
    assert eval(repr(pmu_filter), {"PmuEventFilter": PmuEventFilter}) == pmu_filter


# --- plain events: dropped bits and conversion ----------------------------------------------


def test_plain_events_with_bits_outside_select_and_umask_are_dropped() -> None:
    """remove_invalid_raw_events: EN, CMASK or an out-of-range bit drop the entry silently."""
    events = [INTEL_BRANCHES | OS_EN, 0xC0 | 1 << 24, 1 << 63, 0x01A4]
    pmu_filter = accepted(set_pmu_event_filter(ALLOW, events))
    assert pmu_filter.events == (0xFF00_0000_0000_01A4,)
    assert pmu_filter.nevents == 1 and pmu_filter.includes == pmu_filter.events


def test_plain_events_become_masked_entries_matching_the_whole_umask() -> None:
    """convert_to_masked_filter: umask mask 0xFF, match = the umask; no other umask matches."""
    pmu_filter = accepted(set_pmu_event_filter(ALLOW, [0x4F2E]))
    assert pmu_filter.events == (masked_entry(0x2E, 0xFF, 0x4F, False),)
    assert pmu_filter.allows_gp(0x4F2E | OS_EN)
    assert not pmu_filter.allows_gp(0x412E | OS_EN)
    assert not pmu_filter.allows_gp(0x002E | OS_EN)


def test_bits_35_32_are_event_select_on_amd_and_not_on_intel() -> None:
    """A plain 0x1C2 is kept on AMD and dropped on Intel; Intel's IN_TX never changes a match."""
    amd = accepted(set_pmu_event_filter(DENY, [raw_event(0x1C2, 0)]))
    intel = accepted(set_pmu_event_filter(DENY, [raw_event(0x1C2, 0)],
                                          eventsel_event=ARCH_PERFMON_EVENTSEL_EVENT))
    assert amd.nevents == 1 and intel.nevents == 0
    assert not amd.allows_gp(raw_event(0x1C2, 0) | OS_EN)
    in_tx = 1 << 32
    intel_deny = accepted(set_pmu_event_filter(DENY, [INTEL_BRANCHES],
                                               eventsel_event=ARCH_PERFMON_EVENTSEL_EVENT))
    assert not intel_deny.allows_gp(INTEL_BRANCHES | OS_EN | in_tx)
    amd_deny = accepted(set_pmu_event_filter(DENY, [AMD_BRANCHES]))
    assert amd_deny.allows_gp(AMD_BRANCHES | OS_EN | in_tx)  # select 0x1C2 on AMD
    masked_high = set_pmu_event_filter(ALLOW, [masked_entry(0x1C2, 0xFF, 0, False)],
                                       flags=MASKED, eventsel_event=ARCH_PERFMON_EVENTSEL_EVENT)
    assert masked_high is Errno.EINVAL


# --- GP counters: the selftest's plain-event table ------------------------------------------


def _without(events: tuple[int, ...], vendor: str) -> list[int]:
    """The base list minus the two measured events (the selftest's "remove_event" cases)."""
    return [e for e in events if e not in MEASURED[vendor]]


@pytest.mark.parametrize("vendor", sorted(VENDORS))
@pytest.mark.parametrize(("action", "remove", "expect_counting"), [
    (DENY, False, False), (ALLOW, False, True), (DENY, True, True), (ALLOW, True, False),
])
def test_base_list_table(vendor: str, action: int, remove: bool, expect_counting: bool) -> None:
    """Deny/allow the base list with and without instructions and branches (both GP counters)."""
    events = _without(BASE_EVENTS, vendor) if remove else list(BASE_EVENTS)
    pmu_filter = accepted(set_pmu_event_filter(action, events, eventsel_event=VENDORS[vendor]))
    assert counts(pmu_filter, vendor) == (expect_counting, expect_counting)


def test_amd_deny_0x1c2_still_counts_0xc2() -> None:
    """All 12 select bits are compared: denying 0x1C2 leaves branches (0xC2) counting."""
    pmu_filter = accepted(set_pmu_event_filter(DENY, [raw_event(0x1C2, 0)]))
    assert counts(pmu_filter, "amd") == (True, True)


def test_no_filter_allows_everything() -> None:
    """check_pmu_event_filter with nothing installed: GP and fixed counters all count."""
    assert all(check_pmu_event_filter(None, idx, INTEL_BRANCHES) for idx in (0, 7, 32, 35))


@given(eventsel=st.integers(0, U64), vendor=st.sampled_from(sorted(VENDORS)))
@SETTINGS
def test_empty_filters(eventsel: int, vendor: str) -> None:
    """An empty ALLOW filter denies every GP event; an empty DENY filter allows every one."""
    allow = accepted(set_pmu_event_filter(ALLOW, [], eventsel_event=VENDORS[vendor]))
    deny = accepted(set_pmu_event_filter(DENY, [], eventsel_event=VENDORS[vendor]))
    assert not allow.allows_gp(eventsel) and not check_pmu_event_filter(allow, 0, eventsel)
    assert deny.allows_gp(eventsel) and check_pmu_event_filter(deny, 0, eventsel)


# --- masked events (test_masked_events) -----------------------------------------------------

INTEL_MEM_INST_RETIRED, AMD_LS_DISPATCH = 0xD0, 0x29
COUNTER_UMASKS = {"intel": (0x81, 0x82, 0x83), "amd": (0x01, 0x02, 0x04)}
"""GP0-2 count loads, stores, loads+stores: Intel MEM_INST_RETIRED, AMD ls_dispatch."""
LOADS, STORES, LOADS_STORES = 0, 1, 2

MASKED_CASES: list[tuple[str, dict[str, list[tuple[int, int, bool]]], set[int]]] = [
    ("only loads", {"intel": [(0xFF, 0x81, False)], "amd": [(0xFF, 0x01, False)]}, {LOADS}),
    ("only stores", {"intel": [(0xFF, 0x82, False)], "amd": [(0xFF, 0x02, False)]}, {STORES}),
    ("only loads+stores", {"intel": [(0xFF, 0x83, False)], "amd": [(0xFF, 0x04, False)]},
     {LOADS_STORES}),
    ("loads and stores", {"intel": [(0x7C, 0, False), (0xFF, 0x83, True)],
                          "amd": [(0xFC, 0, False)]}, {LOADS, STORES}),
    ("loads and loads+stores", {"intel": [(0x7C, 0, False), (0xFF, 0x82, True)],
                                "amd": [(0xF8, 0, False), (0xFF, 0x02, True)]},
     {LOADS, LOADS_STORES}),
    ("stores and loads+stores", {"intel": [(0xFE, 0x82, False)],
                                 "amd": [(0xF8, 0, False), (0xFF, 0x01, True)]},
     {STORES, LOADS_STORES}),
    ("all three", {"intel": [(0x7C, 0, False)], "amd": [(0xF8, 0, False)]},
     {LOADS, STORES, LOADS_STORES}),
]
"""The selftest's seven cases as (mask, match, exclude) per vendor, and the counters that count."""


def dummy_entries(n: int, avoid: int) -> list[int]:
    """The dense filter's padding: selects other than ``avoid``, every 4th an exclude."""
    return [masked_entry(s if (s := i % 0xFF) != avoid else s + 1, 0, 0, i % 4 == 0)
            for i in range(n)]


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
@pytest.mark.parametrize("vendor", sorted(VENDORS))
@pytest.mark.parametrize(("name", "entries", "counting"), MASKED_CASES,
                         ids=[c[0] for c in MASKED_CASES])
def test_masked_events(name: str, entries: dict[str, list[tuple[int, int, bool]]],
                       counting: set[int], vendor: str, dense: bool) -> None:
    """Masks select a range of umasks, excludes veto includes; padding changes nothing."""
    select = INTEL_MEM_INST_RETIRED if vendor == "intel" else AMD_LS_DISPATCH
    events = [masked_entry(select, mask, match, x) for mask, match, x in entries[vendor]]
    if dense:
        events = dummy_entries(KVM_PMU_EVENT_FILTER_MAX_EVENTS - 10, select) + events
    pmu_filter = accepted(set_pmu_event_filter(ALLOW, events, flags=MASKED,
                                               eventsel_event=VENDORS[vendor]))
    got = {i for i, umask in enumerate(COUNTER_UMASKS[vendor])
           if pmu_filter.allows(i, raw_event(select, umask) | OS_EN)}
    assert got == counting, name


def test_exclude_entries_in_a_deny_filter() -> None:
    """DENY: an excluded umask leaves the filter, so it counts; an exclude alone matches nothing."""
    deny = accepted(set_pmu_event_filter(DENY, [
        masked_entry(0xD0, 0x00, 0x00, False), masked_entry(0xD0, 0xFF, 0x83, True)],
        flags=MASKED))
    assert [deny.allows_gp(raw_event(0xD0, u)) for u in (0x81, 0x82, 0x83)] == [False, False, True]
    only_exclude = accepted(set_pmu_event_filter(DENY, [masked_entry(0xD0, 0xFF, 0x81, True)],
                                                 flags=MASKED))
    assert only_exclude.allows_gp(raw_event(0xD0, 0x81))
    allow_exclude = accepted(set_pmu_event_filter(ALLOW, [masked_entry(0xD0, 0xFF, 0x81, True)],
                                                  flags=MASKED))
    assert not allow_exclude.allows_gp(raw_event(0xD0, 0x81))


def test_every_entry_with_the_event_select_is_tried() -> None:
    """Several entries share a select: a match in any of them counts, not just the first."""
    plain = accepted(set_pmu_event_filter(ALLOW, [raw_event(0xD0, u) for u in (0x83, 0x81, 0x82)]))
    assert all(plain.allows_gp(raw_event(0xD0, u)) for u in (0x81, 0x82, 0x83))
    assert not plain.allows_gp(raw_event(0xD0, 0x84))
    masked = accepted(set_pmu_event_filter(DENY, [
        masked_entry(0xD0, 0xFF, 0x81, False), masked_entry(0xD0, 0xFF, 0x83, False),
        masked_entry(0xD0, 0x01, 0x00, True), masked_entry(0xD0, 0xFF, 0x81, True)],
        flags=MASKED))
    assert masked.excludes[0] == masked_entry(0xD0, 0x01, 0x00, True)  # misses odd umasks
    assert not masked.allows_gp(raw_event(0xD0, 0x83))  # second include, no exclude
    assert masked.allows_gp(raw_event(0xD0, 0x81))  # first include, second exclude
    assert masked.allows_gp(raw_event(0xD0, 0x82))  # no include


def test_includes_sort_before_excludes_by_event_select() -> None:
    """prepare_filter_lists: sorted by (exclude, select); the split is at the first exclude."""
    events = [masked_entry(0x1C2, 0, 0, True), masked_entry(0x0C4, 0, 0, False),
              masked_entry(0x0C0, 0, 0, True), masked_entry(0x03C, 0, 0, False)]
    pmu_filter = accepted(set_pmu_event_filter(ALLOW, events, flags=MASKED))
    assert pmu_filter.includes == (events[3], events[1])
    assert pmu_filter.excludes == (events[2], events[0])


# --- fixed counters: the bitmap alone decides -----------------------------------------------

NR_FIXED = 3


@pytest.mark.parametrize("with_events", [False, True], ids=["bitmap", "bitmap+base_list"])
@pytest.mark.parametrize("action", [ALLOW, DENY], ids=["allow", "deny"])
def test_fixed_counter_bitmap(action: int, with_events: bool) -> None:
    """ALLOW: fixed i counts iff bit i is set; DENY: iff it is clear; events never matter."""
    events = BASE_EVENTS if with_events else ()
    for bitmap in range(1 << NR_FIXED):
        pmu_filter = accepted(set_pmu_event_filter(action, events, fixed_counter_bitmap=bitmap))
        for fixed_idx in range(NR_FIXED):
            bit_set = bool(bitmap >> fixed_idx & 1)
            expected = bit_set if action == ALLOW else not bit_set
            assert pmu_filter.allows_fixed(fixed_idx) == expected
            assert pmu_filter.allows(32 + fixed_idx, INTEL_INSTRUCTIONS) == expected


def test_fixed_idx_outside_the_bitmap_is_a_bug() -> None:
    """The bitmap is a u32: a fixed index past it cannot name a counter."""
    pmu_filter = accepted(set_pmu_event_filter(ALLOW, ()))
    with pytest.raises(ValueError, match=r"fixed_idx must be in 0\.\.31"):
        pmu_filter.allows_fixed(32)


# --- property: the sorted, bisecting lookup agrees with a linear scan -----------------------


def reference_set_filter(action: int, events: list[int], flags: int, pad: tuple[int, ...],
                         event_mask: int) -> list[tuple[int, int, int, bool]] | Errno:
    """The ioctl read from the uAPI doc, as decoded (select, mask, match, exclude) entries."""
    if action not in (0, 1) or flags & ~1:
        return Errno.EINVAL
    if len(events) > 300:
        return Errno.E2BIG
    if any(pad):
        return Errno.EINVAL
    select_bits = event_mask | 0xFF00
    if flags & 1:
        if any(e & ~(select_bits | 1 << 55 | 0xFF << 56) for e in events):
            return Errno.EINVAL
        return [(e & 0xFF | (e >> 32 & 0xF) << 8, e >> 56, e >> 8 & 0xFF, bool(e >> 55 & 1))
                for e in events]
    return [(e & 0xFF | (e >> 32 & 0xF) << 8, 0xFF, e >> 8 & 0xFF, False)
            for e in events if not e & ~select_bits]


def reference_allows_gp(action: int, entries: list[tuple[int, int, int, bool]], eventsel: int,
                        event_mask: int) -> bool:
    """is_gp_event_allowed by scanning every entry, no sorting and no search."""
    select = eventsel & event_mask
    select12 = select & 0xFF | (select >> 32 & 0xF) << 8
    umask = eventsel >> 8 & 0xFF

    def hit(exclude: bool) -> bool:
        return any(s == select12 and umask & mask == match and x == exclude
                   for s, mask, match, x in entries)
    in_filter = hit(False) and not hit(True)
    return action == (ALLOW if in_filter else DENY)


SELECTS = st.sampled_from([0x0C0, 0x0C2, 0x0C4, 0x1C2, 0x0D0, 0x029, 0xFFF])
UMASKS = st.sampled_from([0x00, 0x01, 0x02, 0x04, 0x81, 0x82, 0x83, 0xFF])
"""Few selects and umasks, so random entries and eventsels often meet."""
MASKED_ENTRIES = st.builds(masked_entry, SELECTS, UMASKS, UMASKS, st.booleans())
PLAIN_ENTRIES = st.builds(raw_event, SELECTS, UMASKS)
JUNK_ENTRIES = st.builds(lambda e, bit: e | 1 << bit, PLAIN_ENTRIES, st.integers(0, 63))
"""A plain event with one more bit: dropped, kept, or EINVAL in a masked filter."""
ENTRIES = st.one_of(*[MASKED_ENTRIES, PLAIN_ENTRIES] * 3, JUNK_ENTRIES)
"""Mostly well-formed entries, so that most masked filters are accepted."""
EVENTSELS = st.builds(lambda e, extra: e | extra, st.builds(raw_event, SELECTS, UMASKS),
                      st.sampled_from([0, OS_EN, 1 << 32, 1 << 33 | OS_EN, 0xFF << 24]))


@given(action=st.sampled_from([ALLOW, DENY] * 4 + [2]),
       flags=st.sampled_from([0, MASKED] * 4 + [2]),
       events=st.lists(ENTRIES, max_size=12), eventsels=st.lists(EVENTSELS, max_size=8),
       pad=st.sampled_from([(0, 0, 0, 0)] * 8 + [(0, 0, 0, 1)]),
       vendor=st.sampled_from(sorted(VENDORS)),
       seed=st.integers(0, 2**32))
@settings(SETTINGS, max_examples=400)
def test_module_agrees_with_a_linear_scan(
    action: int, flags: int, events: list[int], eventsels: list[int],
    pad: tuple[int, int, int, int], vendor: str, seed: int,
) -> None:
    """Same errno, same verdict for every eventsel, whatever order userspace lists entries in."""
    mask = VENDORS[vendor]
    got = set_pmu_event_filter(action, events, flags=flags, pad=pad, eventsel_event=mask)
    expected = reference_set_filter(action, events, flags, pad, mask)
    if isinstance(expected, Errno):
        assert got is expected
        return
    pmu_filter = accepted(got)
    assert pmu_filter.nevents == len(expected)
    for eventsel in eventsels:
        assert pmu_filter.allows_gp(eventsel) == reference_allows_gp(action, expected, eventsel,
                                                                     mask)
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    assert set_pmu_event_filter(action, shuffled, flags=flags, eventsel_event=mask) == pmu_filter
