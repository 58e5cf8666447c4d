"""Event groups in the guest's perf: ``{a,b,...}`` goes on the PMU all or nothing
(group_sched_in's transaction), rotates as a unit, is refused at open where it could never
fit (validate_group), and ``{...}:S`` samples through its leader, reading the group."""

from __future__ import annotations

import pytest

from vpmu.arch.presets import get_preset
from vpmu.guest.linux import PerfRecord, PerfStat
from vpmu.guest.linux.event_map import EventGroup, parse_group

from .recording import name, run_tool

ICX_4GP = get_preset("intel-icx").with_caps(n_gp=4)
"""ICX with 4 GP counters, so that GP-only events have to share them."""
GROUP_A = "{branches:u,branch-misses:u,cache-references:u}"
GROUP_B = "{cache-misses:u,r81d0:u,r82d0:u}"
"""Three GP-only events each (raw 0x81d0 / 0x82d0: MEM_INST_RETIRED loads / stores)."""
FOUR_GP = "{branches:u,branch-misses:u,cache-references:u,cache-misses:u}"
HALF = 0.5
HALF_TOLERANCE = 0.02
"""Rotation every 1 ms tick over 20 ms: each group runs 10 of 20 ticks, give or take the
first and last tick's share."""


def test_parse_group() -> None:
    """A plain event is a group of one; ``{...}`` lists members, ``:S`` leader sampling."""
    assert parse_group("cycles") == EventGroup(("cycles",))
    assert parse_group("{cycles,instructions:u}:S") == EventGroup(
        ("cycles", "instructions:u"), is_group=True, leader_sampling=True)
    for bad in ("{cycles,instructions", "{cycles,}", "{cycles}:u", "{cycles,{x}}", "{bogus}"):
        with pytest.raises(ValueError, match="must"):
            parse_group(bad)


def test_two_groups_of_three_on_four_counters_alternate_whole() -> None:
    """Three GP events fit beside three others on 4 counters one by one, never as groups:
    each group runs half the time, every member of a group for exactly as long."""
    run = run_tool(ICX_4GP, PerfStat([GROUP_A, GROUP_B]), ms=20, phase="compute")
    (result,) = run.results
    a, b = result.events[:3], result.events[3:]
    for group in (a, b):
        assert len({e.time_running_ns for e in group}) == 1
        assert float(group[0].running_fraction) == pytest.approx(HALF, abs=HALF_TOLERANCE)
    assert a[0].time_running_ns + b[0].time_running_ns == pytest.approx(
        a[0].time_enabled_ns, rel=0.01)


def test_a_group_that_does_not_fit_beside_an_event_is_not_put_on_in_part() -> None:
    """One event takes a counter; a group of four GP events then fails its commit and is
    cancelled whole (no member counts meanwhile); the rotation alternates the two."""
    run = run_tool(ICX_4GP, PerfStat(["r81d0:u", FOUR_GP]), ms=20, phase="compute")
    (result,) = run.results
    single, group = result.events[0], result.events[1:]
    assert len({e.time_running_ns for e in group}) == 1
    assert float(single.running_fraction) == pytest.approx(HALF, abs=HALF_TOLERANCE)
    assert float(group[0].running_fraction) == pytest.approx(HALF, abs=HALF_TOLERANCE)


def test_a_group_larger_than_the_pmu_is_refused_member_by_member() -> None:
    """validate_group at perf_event_open: the 5th and 6th GP event of a group on 4 GP
    counters fail (perf stat: <not supported>); the first four count all the time."""
    events = "{branches:u,branch-misses:u,cache-references:u,cache-misses:u,r81d0:u,r82d0:u}"
    (result,) = run_tool(ICX_4GP, PerfStat([events]), ms=5, phase="compute").results
    assert [e.supported for e in result.events] == [True] * 4 + [False] * 2
    assert all(e.running_fraction == 1 for e in result.events[:4])


def test_arm_group_is_validated_on_the_event_counters() -> None:
    """arm-n1: the cycle counter and 6 event counters; the 8th member of a group (a second
    CPU_CYCLES, 0x11, and then one more) finds no counter and is refused."""
    events = "{cycles:u,instructions:u,r0008:u,r0011:u,r0010:u,r0003:u,r0004:u,r0021:u}"
    (result,) = run_tool("arm-n1", PerfStat([events]), ms=5, phase="compute").results
    assert [e.supported for e in result.events] == [True] * 7 + [False]


def test_leader_sampling_reads_the_group_in_each_sample() -> None:
    """``{cycles,instructions}:S``: only cycles samples (at -F 4000); each sample carries
    both counts (PERF_SAMPLE_READ), read in the PMI handler: the sibling's RDPMC after the
    leader's counter re-arm."""
    run = run_tool("intel-icx", PerfRecord(["{cycles,instructions}:S"]), ms=20)
    (result,) = run.results
    cycles, instructions = result.events
    assert instructions.samples == () and cycles.samples
    assert len(cycles.samples) == pytest.approx(4000 * 0.020, rel=0.1)
    last = cycles.samples[-1]
    assert len(last.read) == 2
    assert last.read[1] / last.read[0] == pytest.approx(1.5, rel=0.01)  # br_instr's IPC
    assert [s.read[0] for s in cycles.samples] == sorted(s.read[0] for s in cycles.samples)
    pmis = list(run.rec.handler_runs("pmi"))
    assert [name(a.op) for a in pmis[len(pmis) // 2]] == [
        "W GLOBAL_CTRL", "R GLOBAL_STATUS", "W OVF_CTRL", "RDPMC", "W FIXED_CTR1", "RDPMC",
        "R GLOBAL_STATUS", "W GLOBAL_CTRL", "W LVTPC"]


def test_group_members_sample_on_their_own_without_s() -> None:
    """``{cycles,instructions}`` in perf record: grouped for scheduling only, each member
    samples at -F 4000."""
    (result,) = run_tool("intel-icx", PerfRecord(["{cycles,instructions}"]), ms=20).results
    for e in result.events:
        assert len(e.samples) == pytest.approx(4000 * 0.020, rel=0.1)
        assert all(s.read == () for s in e.samples)
