"""vpmu.linux.arm_pmuv3, the arm_pmuv3 driver's pure parts that the host's perf and the guest's
Linux share, against upstream (torvalds/linux@7d6904bf26b9 drivers/perf/arm_pmuv3.c)."""

from __future__ import annotations

import itertools

import pytest

from vpmu.arch.arm64 import events as arm_ev
from vpmu.linux import arm_pmuv3 as pmuv3

P, U, NSH = 1 << 31, 1 << 30, 1 << 27
"""PMEVTYPER's EXCLUDE_EL1, EXCLUDE_EL0 and INCLUDE_EL2 bits."""
FLAGS = ("exclude_user", "exclude_kernel", "exclude_hv", "exclude_host", "exclude_guest")

FILTER_TABLE = [
    # hyp_mode, the exclude_* set, the type's filter bits
    (False, set(), NSH),                                     # cycles on an nVHE kernel
    (False, {"exclude_kernel", "exclude_hv"}, P),            # cycles:u
    (False, {"exclude_user", "exclude_hv"}, U),              # cycles:k
    (False, {"exclude_guest"}, NSH),                         # cycles:H (EL1 is both kernels)
    (False, {"exclude_host"}, 0),                            # cycles:G
    (True, set(), NSH),                                      # cycles on a VHE kernel (EL2)
    (True, {"exclude_kernel", "exclude_hv"}, P),             # cycles:u: exclude_hv ignored
    (True, {"exclude_user", "exclude_hv"}, NSH | U),         # cycles:k
    (True, {"exclude_guest"}, NSH | P),                      # cycles:H: not the guests' EL1
    (True, {"exclude_host"}, U),                             # cycles:G: the guests' EL1 only
    (True, {"exclude_kernel", "exclude_guest"}, P),
    (True, {"exclude_user", "exclude_host"}, U),
]
"""Rows worked out by hand from ``armv8pmu_set_event_filter``."""


def upstream_filter(hyp_mode: bool, excluded: set[str]) -> int:
    """``armv8pmu_set_event_filter`` bit by bit: in hyp mode NSH unless exclude_kernel or
    exclude_host, P for exclude_guest or exclude_kernel, U for exclude_host or exclude_user
    (exclude_hv ignored); else NSH unless exclude_hv or exclude_host, P for exclude_kernel, U
    for exclude_user (exclude_guest ignored)."""
    x = excluded.__contains__
    if hyp_mode:
        nsh, p, u = not (x("exclude_kernel") or x("exclude_host")), \
            x("exclude_guest") or x("exclude_kernel"), x("exclude_host") or x("exclude_user")
    else:
        nsh, p, u = not (x("exclude_hv") or x("exclude_host")), x("exclude_kernel"), \
            x("exclude_user")
    return (NSH if nsh else 0) | (P if p else 0) | (U if u else 0)


@pytest.mark.parametrize(("hyp_mode", "excluded", "bits"), FILTER_TABLE)
def test_event_filter_table(hyp_mode: bool, excluded: set[str], bits: int) -> None:
    """The perf tool's modifiers on an nVHE (EL1) and a VHE (EL2, hyp mode) kernel."""
    assert upstream_filter(hyp_mode, excluded) == bits
    assert pmuv3.event_filter(hyp_mode=hyp_mode, **{f: f in excluded for f in FLAGS}) == bits


@pytest.mark.parametrize("hyp_mode", [False, True])
def test_event_filter_every_combination(hyp_mode: bool) -> None:
    """All 32 combinations of exclude_user / kernel / hv / host / guest, VHE and nVHE."""
    for values in itertools.product((False, True), repeat=len(FLAGS)):
        excluded = {f for f, v in zip(FLAGS, values, strict=True) if v}
        assert pmuv3.event_filter(hyp_mode=hyp_mode, **dict(zip(FLAGS, values, strict=True))) \
            == upstream_filter(hyp_mode, excluded), excluded


E = arm_ev.BY_NAME


@pytest.mark.parametrize(("pmceid", "event"), [
    ({E["PC_WRITE_RETIRED"], E["BR_RETIRED"]}, E["PC_WRITE_RETIRED"]),
    ({E["BR_RETIRED"]}, E["BR_RETIRED"]),
    ({E["PC_WRITE_RETIRED"]}, E["PC_WRITE_RETIRED"]),
    (set(), None),
])
def test_branches_is_pc_write_retired_else_br_retired(pmceid: set[int],
                                                     event: int | None) -> None:
    """``__armv8_pmuv3_map_event_id``: armv8_pmuv3_perf_map has no branches."""
    assert "branches" not in pmuv3.ARMV8_PMUV3_PERF_MAP
    assert pmuv3.map_generic("branches", frozenset(pmceid)) == event


def test_generic_events_need_the_map_and_pmceid() -> None:
    """A generic event is the map's common event if PMCEID has it; ref-cycles is not
    mapped."""
    every = frozenset(range(pmuv3.ARMV8_PMUV3_MAX_COMMON_EVENTS))
    assert pmuv3.map_generic("cycles", every) == E["CPU_CYCLES"]
    assert pmuv3.map_generic("instructions", every) == E["INST_RETIRED"]
    assert pmuv3.map_generic("bus-cycles", every) == E["BUS_CYCLES"]
    assert pmuv3.map_generic("cycles", every - {E["CPU_CYCLES"]}) is None
    assert pmuv3.map_generic("ref-cycles", every) is None


def test_raw_events_are_their_low_16_bits_but_chain() -> None:
    assert pmuv3.map_raw(0x1_0021) == 0x21
    assert pmuv3.map_raw(0x4001) == 0x4001  # IMPLEMENTATION DEFINED: taken as given
    assert pmuv3.map_raw(arm_ev.CHAIN) is None


def test_reset_writes_in_armv8pmu_resets_order() -> None:
    """Counters, interrupts, overflow flags, then PMCR_EL0 = P | C | LC (| LP)."""
    u32 = 0xFFFF_FFFF
    head = [("PMCNTENCLR_EL0", u32), ("PMINTENCLR_EL1", u32), ("PMOVSCLR_EL0", u32)]
    assert list(pmuv3.reset_writes(long_event_counters=False)) == [*head, ("PMCR_EL0", 0x46)]
    assert list(pmuv3.reset_writes(long_event_counters=True)) == [*head, ("PMCR_EL0", 0xC6)]


def test_a_32_bit_event_is_biased_on_a_64_bit_counter() -> None:
    """``armv8pmu_event_needs_bias``."""
    assert pmuv3.needs_bias(is_64bit=False, long_event_counters=False, cycle_counter=True)
    assert pmuv3.needs_bias(is_64bit=False, long_event_counters=True, cycle_counter=False)
    assert not pmuv3.needs_bias(is_64bit=False, long_event_counters=False, cycle_counter=False)
    assert not pmuv3.needs_bias(is_64bit=True, long_event_counters=True, cycle_counter=True)
