"""Host perf: generic event maps, event-spec parsing, counter constraints and assignment."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpmu.arch.presets import PRESETS, get_preset
from vpmu.arch.x86.caps import X86PmuCaps
from vpmu.host.perf.constraint import Constraint
from vpmu.host.perf.x86 import events_map as em
from vpmu.host.perf.x86.assign import (
    all_counters,
    assign,
    constraint_for,
    gp_mask,
    x86_schedule_events,
)

SKL = get_preset("intel-skl").caps
ICX = get_preset("intel-icx").caps
ZEN4 = get_preset("amd-zen4").caps
F0, F1, F2, F3 = 32, 33, 34, 35
"""Global counter indices of fixed counters 0-3."""

INSTRUCTIONS, CYCLES, REF_TSC, SLOTS = 0x00C0, 0x003C, 0x0300, 0x0400
LLC_MISSES, BUS_CYCLES = 0x412E, 0x013C
CMASK1, INV, EDGE, ANY, USR_OS_EN = 1 << 24, 1 << 23, 1 << 18, 1 << 21, 0x43 << 16

PROPERTY_SETTINGS = settings(derandomize=True, database=None, deadline=None,
                             print_blob=False, suppress_health_check=[HealthCheck.too_slow])


# -- generic events -------------------------------------------------------------------------
def test_intel_generic_map() -> None:
    """intel_perfmon_event_map: architectural encodings, ref-cycles pseudo, no stalls."""
    expect = {0: 0x003C, 1: 0x00C0, 2: 0x4F2E, 3: 0x412E, 4: 0x00C4, 5: 0x00C5, 6: 0x013C,
              9: 0x0300}
    for hw in range(em.PERF_COUNT_HW_MAX):
        assert em.hw_event_config("intel", hw) == expect.get(hw)
        assert em.hw_event_config(SKL, hw) == expect.get(hw)


def test_amd_generic_map_follows_the_generation() -> None:
    """AMD: Zen 4+ adds ref-cycles; Zen 2/3 has a frontend but no backend stall event."""
    assert em.hw_event_config("amd", em.PERF_COUNT_HW_CPU_CYCLES) == 0x0076
    assert em.hw_event_config(ZEN4, em.PERF_COUNT_HW_CACHE_MISSES) == 0x0964
    assert em.hw_event_config(ZEN4, em.PERF_COUNT_HW_REF_CPU_CYCLES) == 0x1_0000_0120
    zen3 = ZEN4.replace(model=0x01)
    assert em.hw_event_config(zen3, em.PERF_COUNT_HW_REF_CPU_CYCLES) is None
    assert em.hw_event_config(zen3, em.PERF_COUNT_HW_STALLED_CYCLES_FRONTEND) == 0x00A9
    zen1 = ZEN4.replace(family=0x17, model=0x01)
    assert em.hw_event_config(zen1, em.PERF_COUNT_HW_STALLED_CYCLES_BACKEND) == 0x0187
    k10 = ZEN4.replace(family=0x10, model=0x02)
    assert em.hw_event_config(k10, em.PERF_COUNT_HW_CACHE_REFERENCES) == 0x077D


def test_vendor_gaps_are_enoent() -> None:
    """Events a vendor does not map come back None (perf_event_open's -ENOENT)."""
    assert em.hw_event_config("amd", em.PERF_COUNT_HW_BUS_CYCLES) is None
    assert em.hw_event_config("intel", em.PERF_COUNT_HW_STALLED_CYCLES_BACKEND) is None


def test_cpuid_unavailable_arch_event_is_enoent() -> None:
    """An architectural event CPUID.0xA:EBX marks unavailable drops out of the Intel map."""
    caps = SKL.replace(ebx_unavailable=1 << 6 | 1 << 2)
    assert em.hw_event_config(caps, em.PERF_COUNT_HW_BRANCH_MISSES) is None
    assert em.hw_event_config(caps, em.PERF_COUNT_HW_BUS_CYCLES) is None
    assert em.hw_event_config(caps, em.PERF_COUNT_HW_BRANCH_INSTRUCTIONS) == 0x00C4


def test_bad_hw_id_and_vendor() -> None:
    """An id past PERF_COUNT_HW_MAX or an unknown vendor is a ValueError naming it."""
    with pytest.raises(ValueError, match=r"hw_id must be .*, not 10"):
        em.hw_event_config("intel", em.PERF_COUNT_HW_MAX)
    with pytest.raises(ValueError, match="vendor must be 'intel' or 'amd', not 'arm'"):
        em.hw_event_config("arm", 0)


def test_event_names() -> None:
    """Names as perf stat prints them; raw events as rNNNN."""
    names = [em.event_name(em.PERF_TYPE_HARDWARE, hw) for hw in (0, 1, 4, 5, 9)]
    assert names == ["cycles", "instructions", "branches", "branch-misses", "ref-cycles"]
    assert em.event_name(em.PERF_TYPE_RAW, 0x01C2) == "r1c2"
    with pytest.raises(ValueError, match="type must be"):
        em.event_name(2, 0)


# -- parse_event ------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "hw"), [
    ("cycles", 0), ("cpu-cycles", 0), ("instructions", 1), ("cache-references", 2),
    ("cache-misses", 3), ("branches", 4), ("branch-instructions", 4), ("branch-misses", 5),
    ("bus-cycles", 6), ("ref-cycles", 9),
])
def test_parse_generic_names(spec: str, hw: int) -> None:
    """Every perf symbol and alias parses to (PERF_TYPE_HARDWARE, id) with no exclusions."""
    parsed = em.parse_event("intel", spec)
    assert (parsed.type, parsed.config) == (em.PERF_TYPE_HARDWARE, hw)
    assert parsed.modifiers == em.Modifiers()
    assert em.event_name(parsed.type, parsed.config) == em.HW_EVENT_NAMES[hw]


def test_parse_raw_and_sysfs_alias() -> None:
    """rNNNN is a hex raw config; Intel's sysfs 'slots' is raw 0x0400."""
    assert em.parse_event("amd", "r1c2")[:2] == (em.PERF_TYPE_RAW, 0x1C2)
    assert em.parse_event("intel", "r4F2E")[:2] == (em.PERF_TYPE_RAW, 0x4F2E)
    assert em.parse_event(ICX, "slots")[:2] == (em.PERF_TYPE_RAW, SLOTS)


@pytest.mark.parametrize(("mods", "expect"), [
    ("u", em.Modifiers(exclude_kernel=True, exclude_hv=True)),
    ("k", em.Modifiers(exclude_user=True, exclude_hv=True)),
    ("uk", em.Modifiers(exclude_hv=True)),
    ("H", em.Modifiers(exclude_guest=True)),
    ("G", em.Modifiers(exclude_host=True)),
    ("GH", em.Modifiers()),
    ("uH", em.Modifiers(exclude_kernel=True, exclude_hv=True, exclude_guest=True)),
    ("kGpp", em.Modifiers(exclude_user=True, exclude_hv=True, exclude_host=True,
                          precise_ip=2)),
])
def test_parse_modifiers(mods: str, expect: em.Modifiers) -> None:
    """Modifiers set the exclude_* bits as the perf tool's get_event_modifier does."""
    parsed = em.parse_event("intel", f"branch-misses:{mods}")
    assert parsed == em.ParsedEvent(em.PERF_TYPE_HARDWARE, 5, expect)


@pytest.mark.parametrize("spec", [
    "", "cycle", "cycles:", "cycles:x", "cycles:pppp", "r", "rxyz", "r12345678123456789",
    "cycles:u:k", "CYCLES", " cycles",
])
def test_parse_rejects_bad_specs(spec: str) -> None:
    """A bad spec is one ValueError in the house shape, quoting the spec."""
    with pytest.raises(ValueError, match=rf"^event must be .*, not {re.escape(repr(spec))}$"):
        em.parse_event("intel", spec)


def test_parse_sysfs_alias_is_per_vendor() -> None:
    """AMD's core PMU has no 'slots' event: the name is unknown there."""
    with pytest.raises(ValueError, match="event must be"):
        em.parse_event("amd", "slots")


# -- constraints ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(n for n, p in PRESETS.items() if p.caps.arch == "x86"))
def test_constraints_on_each_preset(name: str) -> None:
    """Intel fixed events may use their fixed counter and every GP, pseudo ones the fixed
    counter only; AMD has no fixed counters, so every config gets the GP counters."""
    caps = PRESETS[name].caps
    gp = gp_mask(caps)
    fixed = [caps.fixed_supported(i) for i in range(4)]
    if not caps.is_intel:
        for config in (INSTRUCTIONS, CYCLES, REF_TSC, SLOTS, LLC_MISSES):
            assert constraint_for(caps, config) == Constraint(gp)
        return
    expect = {
        INSTRUCTIONS: gp | (1 << F0 if fixed[0] else 0),
        CYCLES: gp | (1 << F1 if fixed[1] else 0),
        REF_TSC: 1 << F2 if fixed[2] else 0,
        SLOTS: 1 << F3 if fixed[3] else 0,
        BUS_CYCLES: gp, LLC_MISSES: gp,
    }
    for config, mask in expect.items():
        assert constraint_for(caps, config | USR_OS_EN) == Constraint(mask)


def test_preset_shapes() -> None:
    """Weights: SKL 5/5/1/0 (no fixed 3), ICX 9/9/1/1, Zen 4 six GP for everything."""
    def weights(caps: X86PmuCaps) -> list[int]:
        return [constraint_for(caps, c).weight for c in (INSTRUCTIONS, CYCLES, REF_TSC, SLOTS)]
    assert weights(SKL) == [5, 5, 1, 0]
    assert weights(ICX) == [9, 9, 1, 1]
    assert weights(ZEN4) == [6, 6, 6, 6]


@pytest.mark.parametrize("qualifier", [CMASK1, INV, EDGE, 1 << 32, 1 << 33])
def test_qualifiers_forbid_fixed_counters(qualifier: int) -> None:
    """CMASK/INV/EDGE/IN_TX/IN_TXCP do not exist on fixed counters: GP only."""
    assert constraint_for(ICX, CYCLES | qualifier) == Constraint(gp_mask(ICX))
    assert constraint_for(ICX, REF_TSC | qualifier).weight == 8


def test_anythread_keeps_the_fixed_counter() -> None:
    """ANY is not matched on: fixed counters have their own AnyThread bit (FIXED_CTR_CTRL)."""
    assert constraint_for(SKL, CYCLES | ANY).allows(F1)


def test_constraint_value_object() -> None:
    """Constraint.of builds the mask; the repr shows it; bad masks are rejected."""
    c = Constraint.of(0, 3, F2)
    assert (c.weight, c.counters, repr(c)) == (3, (0, 3, F2), "Constraint(idxmsk=0x400000009)")
    with pytest.raises(ValueError, match="idxmsk must be"):
        Constraint(1 << 64)
    with pytest.raises(ValueError, match="indices must be"):
        Constraint.of(64)


# -- assignment -------------------------------------------------------------------------------
def test_fixed_counters_are_filled_first() -> None:
    """Instructions and cycles land on fixed 0 and 1 though GP counters are free."""
    assert x86_schedule_events(SKL, [INSTRUCTIONS, CYCLES, LLC_MISSES]) == [F0, F1, 0]


def test_fixed_or_gp_goes_fixed_when_gp_are_full() -> None:
    """[fixed-or-GP, GP-only x n_gp]: the first takes fixed 0, the rest the GP counters."""
    assert x86_schedule_events(SKL, [INSTRUCTIONS] + [LLC_MISSES] * 4) == [F0, 0, 1, 2, 3]


def test_equal_weights_still_prefer_fixed() -> None:
    """[instructions, cycles, cycles] with one GP counter: both fixed first, then GP 0."""
    one_gp = SKL.replace(n_gp=1)
    assert x86_schedule_events(one_gp, [INSTRUCTIONS, CYCLES, CYCLES]) == [F0, F1, 0]


def test_second_fixed_event_spills_to_gp() -> None:
    """Two instruction events: one on fixed 0, the other on the lowest GP counter."""
    assert x86_schedule_events(SKL, [INSTRUCTIONS, INSTRUCTIONS]) == [F0, 0]


def test_all_or_nothing_when_over_committed() -> None:
    """Skylake has 4 GP counters: 4 GP-only events fit, a fifth fails the whole set."""
    assert x86_schedule_events(SKL, [LLC_MISSES] * 4) == [0, 1, 2, 3]
    assert x86_schedule_events(SKL, [LLC_MISSES] * 5) is None


def test_unschedulable_pseudo_event_fails_the_set() -> None:
    """Slots on Skylake (no fixed counter 3) has weight 0: nothing is scheduled."""
    assert x86_schedule_events(SKL, [CYCLES, SLOTS]) is None
    assert x86_schedule_events(ICX, [CYCLES, SLOTS]) == [F1, F3]


def test_taken_counters_are_skipped() -> None:
    """Counters someone else owns are never handed out, fixed or GP."""
    taken = 1 << F0 | 1 << 0 | 1 << 1
    assert x86_schedule_events(SKL, [INSTRUCTIONS, LLC_MISSES], taken=taken) == [3, 2]
    assert x86_schedule_events(SKL, [LLC_MISSES] * 3, taken=taken) is None
    assert x86_schedule_events(SKL, [REF_TSC], taken=1 << F2) is None


def test_previous_assignment_is_kept_when_still_valid() -> None:
    """The fast path keeps counters that fresh scheduling would not pick."""
    configs = [INSTRUCTIONS, LLC_MISSES, LLC_MISSES]
    assert x86_schedule_events(SKL, configs) == [F0, 0, 1]
    assert x86_schedule_events(SKL, configs, previous=[2, 3, 0]) == [2, 3, 0]


def test_previous_assignment_dropped_as_a_whole() -> None:
    """One stale entry (taken, or never assigned) reschedules every event."""
    configs = [INSTRUCTIONS, LLC_MISSES]
    assert x86_schedule_events(SKL, configs, previous=[2, 3], taken=1 << 3) == [F0, 0]
    assert x86_schedule_events(SKL, configs, previous=[2, None]) == [F0, 0]
    assert x86_schedule_events(SKL, configs, previous=[F1, 3]) == [F0, 0]


def test_weight_ordering_schedules_constrained_events_first() -> None:
    """A weight-1 event listed last still gets its counter before wider ones take it."""
    cons = [Constraint.of(0, 1), Constraint.of(0, 1, 2), Constraint.of(0)]
    assert assign(SKL, cons) == [1, 2, 0]


def test_amd_six_gp_counters() -> None:
    """Zen 4: six events of any kind fit in the six GP counters, a seventh does not."""
    configs = [0x76, 0xC0, 0xC2, 0xC3, 0x0964, 0xFF60]
    assert x86_schedule_events(ZEN4, configs) == [0, 1, 2, 3, 4, 5]
    assert x86_schedule_events(ZEN4, [*configs, 0x76]) is None


def test_crossing_constraints_can_be_missed_like_the_kernel() -> None:
    """Greedy without backtracking misses [{0,2},{0,1},{0,1}]; brute force finds one."""
    cons = [Constraint.of(0, 2), Constraint.of(0, 1), Constraint.of(0, 1)]
    assert assign(SKL, cons) is None
    assert _brute_force(cons, all_counters(SKL)) is not None


def test_bad_arguments() -> None:
    """A mismatched previous or a negative taken mask is a ValueError naming it."""
    with pytest.raises(ValueError, match="previous must have one entry per constraint"):
        x86_schedule_events(SKL, [CYCLES], previous=[])
    with pytest.raises(ValueError, match="taken must be"):
        x86_schedule_events(SKL, [CYCLES], taken=-1)


# -- properties -------------------------------------------------------------------------------
def _brute_force(cons: Sequence[Constraint], free: int) -> tuple[int, ...] | None:
    """Any assignment of distinct free counters inside each constraint: exhaustive
    backtracking over every allowed counter of every event, in list order."""
    if not cons:
        return ()
    for idx in Constraint(cons[0].idxmsk & free).counters:
        rest = _brute_force(cons[1:], free & ~(1 << idx))
        if rest is not None:
            return (idx, *rest)
    return None


def _check_valid(cons: Sequence[Constraint], got: list[int], taken: int) -> None:
    assert len(got) == len(cons)
    assert len(set(got)) == len(got)
    for c, idx in zip(cons, got, strict=True):
        assert c.allows(idx)
        assert not taken >> idx & 1


SMALL = X86PmuCaps("intel", 6, 0x6A, version=5, n_gp=6, n_fixed=2)
"""A small Intel PMU (GP 0-5, fixed 32-33): eight counters, so dyadic blocks tile it."""
SMALL_COUNTERS = (0, 1, 2, 3, 4, 5, F0, F1)

masks = st.sets(st.sampled_from(SMALL_COUNTERS)).map(lambda s: Constraint.of(*s))
taken_masks = st.sets(st.sampled_from(SMALL_COUNTERS), max_size=3).map(
    lambda s: sum(1 << i for i in s))
"""Few taken counters, so that most sets of constraints still fit."""

@PROPERTY_SETTINGS
@given(st.lists(masks, max_size=6), taken_masks)
def test_property_any_assignment_is_valid(cons: list[Constraint], taken: int) -> None:
    """For arbitrary constraints, a returned assignment is distinct, allowed and not taken."""
    got = assign(SMALL, cons, taken=taken)
    if got is not None:
        _check_valid(cons, got, taken)


@st.composite
def laminar_constraints(draw: st.DrawFn) -> list[Constraint]:
    """Constraints from a laminar family: dyadic blocks of a shuffled counter order."""
    order = draw(st.permutations(SMALL_COUNTERS))
    blocks = [order[lo:lo + size] for size in (1, 2, 4, 8) for lo in range(0, 8, size)]
    picked = draw(st.lists(st.sampled_from(blocks), max_size=8))
    return [Constraint.of(*block) for block in picked]


@settings(PROPERTY_SETTINGS, max_examples=400)
@given(laminar_constraints(), taken_masks)
def test_property_nested_constraints_match_brute_force(cons: list[Constraint],
                                                       taken: int) -> None:
    """Nested-or-disjoint constraints (the shapes perf's greedy pass is exact for): assign
    succeeds exactly when an exhaustive search does."""
    got = assign(SMALL, cons, taken=taken)
    found = _brute_force(cons, all_counters(SMALL) & ~taken)
    assert (got is None) == (found is None)
    if got is not None:
        _check_valid(cons, got, taken)


CONFIG_POOL = (INSTRUCTIONS, CYCLES, REF_TSC, SLOTS, LLC_MISSES, BUS_CYCLES, CYCLES | CMASK1)
SHAPE_CAPS = (SKL.replace(n_gp=1), SKL.replace(n_gp=2), ICX.replace(n_gp=2),
              SMALL.replace(n_fixed=4))
"""Few GP counters, so that fixed-or-GP events compete for them."""
taken_any = st.sets(st.sampled_from((0, 1, 2, 3, F0, F1, F2, F3)), max_size=2).map(
    lambda s: sum(1 << i for i in s))


@settings(PROPERTY_SETTINGS, max_examples=400)
@given(st.sampled_from(SHAPE_CAPS),
       st.lists(st.sampled_from(CONFIG_POOL), min_size=2, max_size=7), taken_any)
def test_property_preset_shapes_match_brute_force(caps: X86PmuCaps, configs: list[int],
                                                  taken: int) -> None:
    """The shapes constraint_for builds ({fixed i}+GP, GP, {fixed i}) cross, but the greedy
    pass is still exact for them: GP-only first, then each fixed event prefers its own."""
    cons = [constraint_for(caps, cfg) for cfg in configs]
    got = assign(caps, cons, taken=taken)
    assert (got is None) == (_brute_force(cons, all_counters(caps) & ~taken) is None)
    if got is not None:
        _check_valid(cons, got, taken)
