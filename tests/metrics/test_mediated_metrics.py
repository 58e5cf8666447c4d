"""The mediated vPMU's sections (seeds 000 and 003) from hand-built records: blind spots of
host exclude_guest events, leaks to host RDPMC readers, pollution and PMU switches. Times are
ps in the records, ns (0.1) in the results; records come in emission order, not time order."""

from __future__ import annotations

from typing import Any

from vpmu.metrics import host_profiling, leaks, pmu_switch, pollution
from vpmu.metrics.mediated import MAX_OBSERVATIONS
from vpmu.trace import (
    CounterRead,
    GuestSelectors,
    ModeChange,
    PerfOpen,
    PmuContext,
    Record,
    VmExit,
)

END_PS = 10_000
VCPU = "vm0/vcpu0"


def mode(t_ps: int, name: str, cpu: int = 0, task: str = VCPU) -> ModeChange:
    """``cpu`` enters mode ``name``."""
    return ModeChange(t_ps, cpu, name, task)


def load(t_ps: int, cpu: int = 0, cost_ps: int = 100, why: str = "vcpu_run") -> PmuContext:
    """A mediated load of vm0/vcpu0's PMU context: host exclude_guest events off from t_ps."""
    return PmuContext(t_ps, cpu, "guest", "vm0", 0, cost_ps, why)


def put(t_ps: int, cpu: int = 0, cost_ps: int = 300, why: str = "vcpu_put") -> PmuContext:
    """A put: host events count again from t_ps + cost_ps."""
    return PmuContext(t_ps, cpu, "host", "vm0", 0, cost_ps, why)


def opened(t_ps: int, event: int, name: str = "cycles", cpu: int = 0, *,
           exclude_guest: bool = True, task: str = "", errno: str = "") -> PerfOpen:
    """A host perf event opened (or refused with ``errno``)."""
    return PerfOpen(t_ps, cpu, event, name, exclude_guest, task, errno)


# CPU 0 (ps): host-user from 0; a load at 500 (before the open at 1000); guest 2000-3000;
# in-kvm 3000-4000 with a fastpath exit over 3000-3400; guest 4000-5000; in-kvm 5000-6000
# (a slow exit) with a put at 5500 ending 5800; host-kernel 6000-7200 with a load at 7000
# that is never put; guest 7200-8000; host-user 8000-end (10000).
# Gap 1 = [1000, 5800): other 1000 (host-user 1000-2000), fastpath 400, kvm 600 + 800: 2800.
# Gap 2 = [7000, 10000): other 200 (host-kernel) + 2000 (host-user): 2200.
SEED000: list[Record] = [
    mode(0, "host-user", task="perf"), load(500), opened(6500, 9, "instructions"),
    opened(1000, 7), mode(2000, "guest-user"), mode(3000, "in-kvm"),
    mode(4000, "guest-user"), VmExit(3000, 0, "vm0", 0, "RDPMC", fastpath=True, cost_ps=400),
    mode(5000, "in-kvm"), put(5500, why="ipi"), mode(6000, "host-kernel"),
    VmExit(5000, 0, "vm0", 0, "MSR_WRITE", msr=0x38F, write=True, cost_ps=1000),
    load(7000), mode(7200, "guest-kernel"), mode(8000, "host-user", task="perf"),
    # CPU 1: an event with no host time, and a fastpath exit that must not count on CPU 0.
    opened(0, 3, cpu=1), VmExit(5000, 1, "vm0", 0, "RDPMC", fastpath=True, cost_ps=1000),
    # Not CPU-bound exclude_guest events: ignored; a refused one is listed.
    opened(0, 20, cpu=-1, task="perf"), opened(0, 21, exclude_guest=False),
    opened(4200, 22, "ref-cycles", cpu=1, errno="EBUSY"),
]
EVENT7 = {
    "cpu": 0, "event": 7, "name": "cycles", "opened_ns": 1.0,
    "host_ns": 6.2,  # 1000 + 1000 + 1000 + 1200 + 2000 ps of host code after the open
    "blind_ns": {"fastpath": 0.4, "kvm": 1.4, "other": 3.2, "total": 5.0},
    "blind_fraction": 0.806452,  # 5000 / 6200
    "worst_gap_ns": 2.8, "gaps": 2,
}
EVENT9 = {
    "cpu": 0, "event": 9, "name": "instructions", "opened_ns": 6.5,
    "host_ns": 2.7,  # host-kernel 6500-7200, host-user 8000-10000
    "blind_ns": {"fastpath": 0.0, "kvm": 0.0, "other": 2.2, "total": 2.2},
    "blind_fraction": 0.814815,  # 2200 / 2700: gap 1 ended before the open
    "worst_gap_ns": 2.2, "gaps": 1,
}
EVENT3 = {
    "cpu": 1, "event": 3, "name": "cycles", "opened_ns": 0.0, "host_ns": 0.0,
    "blind_ns": {"fastpath": 0.0, "kvm": 0.0, "other": 0.0, "total": 0.0},
    "blind_fraction": None, "worst_gap_ns": 0.0, "gaps": 0,
}


def first_event(records: list[Record], end_ps: int) -> dict[str, Any]:
    """The first event's entry of the host_profiling section (which must not be null)."""
    result = host_profiling(records, end_ps)
    assert result is not None
    event: dict[str, Any] = result["events"][0]
    return event


def test_blind_spot_per_event_clipped_split_and_summed() -> None:
    """Each opened CPU-bound exclude_guest event, by CPU then id: blind time is host code in a
    guest context after the open (a context begun before it is clipped; the last one, never
    put, runs to the end), split fastpath / kvm / other; refused opens are listed."""
    result = host_profiling(SEED000, END_PS)
    assert result == {
        "events": [EVENT7, EVENT9, EVENT3],
        "refused": [{"t_ns": 4.2, "cpu": 1, "name": "ref-cycles", "errno": "EBUSY"}],
        "blind_ns_total": 7.2, "worst_gap_ns": 2.8,
        "blind_fraction": round(7.2 / sum(e["host_ns"] for e in (EVENT7, EVENT9, EVENT3)), 6),
    }
    assert result is not None
    assert list(result) == ["events", "refused", "blind_ns_total", "worst_gap_ns",
                            "blind_fraction"]
    assert list(result["events"][0]) == list(EVENT7)


def test_blind_spot_is_deterministic_and_independent_of_record_order() -> None:
    """The same records give equal results, and so do the same records emitted in reverse
    (no two records of a kind share a time on one CPU here)."""
    first = host_profiling(SEED000, END_PS)
    assert host_profiling(list(SEED000), END_PS) == first
    assert host_profiling(SEED000[::-1], END_PS) == first


def test_the_put_counts_until_its_switch_ends() -> None:
    """Host events count again only at put + cost: host code during the put's own work is
    blind (in-kvm 5500-5800 above); with a free put the gap would end at 5500."""
    cheap = [put(5500, cost_ps=0) if isinstance(r, PmuContext) and r.state == "host" else r
             for r in SEED000]
    event7 = first_event(cheap, END_PS)
    assert event7["blind_ns"] == {"fastpath": 0.4, "kvm": 1.1, "other": 3.2, "total": 4.7}
    assert event7["worst_gap_ns"] == 2.5


def test_contexts_without_host_code_are_not_gaps() -> None:
    """A guest context in which only guest code runs has no blind time and is not a gap;
    contexts that overlap (a put ending after the next load) are one gap."""
    records: list[Record] = [
        opened(0, 1), mode(0, "guest-user"), load(100), put(900, cost_ps=100),
        mode(2000, "in-kvm"), load(2000), put(2500, cost_ps=600), load(3000),
        mode(3500, "guest-user"), put(3600, cost_ps=0),
    ]
    event = first_event(records, 5000)
    assert event["blind_ns"] == {"fastpath": 0.0, "kvm": 1.5, "other": 0.0, "total": 1.5}
    assert (event["gaps"], event["worst_gap_ns"], event["host_ns"]) == (1, 1.5, 1.5)


def test_no_host_profiling_without_an_opened_or_refused_event() -> None:
    """Null without CPU-bound exclude_guest opens; only refusals still give the section."""
    assert host_profiling([], END_PS) is None
    assert host_profiling([opened(0, 1, cpu=-1, task="perf"), opened(0, 2, exclude_guest=False),
                           load(0), mode(0, "host-user")], END_PS) is None
    refused = host_profiling([opened(10_000, 5, "cycles", cpu=2, exclude_guest=False,
                                     errno="EOPNOTSUPP")], END_PS)
    assert refused == {"events": [], "refused": [
        {"t_ns": 10.0, "cpu": 2, "name": "cycles", "errno": "EOPNOTSUPP"}],
        "blind_ns_total": 0.0, "worst_gap_ns": 0.0, "blind_fraction": None}


# --- leaks -----------------------------------------------------------------------------------

def test_leaks_are_non_zero_guest_values_read_by_host_tasks() -> None:
    """Reads of guest-produced non-zero values are leaks, in time order; a zero and a
    host-produced value are not."""
    records: list[Record] = [
        CounterRead(3000, 1, "reader", 0, 1234, VCPU),
        CounterRead(1000, 0, "reader", 0x4000_0000, 55, "vm1/vcpu0"),
        CounterRead(2000, 0, "reader", 1, 0, VCPU),
        CounterRead(2500, 0, "reader", 1, 999, ""),
        CounterRead(4000, 0, "spy", 2, 7, VCPU),
    ]
    assert leaks(records) == {
        "count": 3,
        "by_guest": {"vm0/vcpu0": 2, "vm1/vcpu0": 1},
        "observations": [
            {"t_ns": 1.0, "cpu": 0, "observer": "reader", "path": "rdpmc",
             "counter": 0x4000_0000, "value": 55, "guest": "vm1/vcpu0"},
            {"t_ns": 3.0, "cpu": 1, "observer": "reader", "path": "rdpmc", "counter": 0,
             "value": 1234, "guest": VCPU},
            {"t_ns": 4.0, "cpu": 0, "observer": "spy", "path": "rdpmc", "counter": 2,
             "value": 7, "guest": VCPU},
        ],
        "truncated": False,
    }


def test_leak_observations_are_truncated_but_counted() -> None:
    """Beyond MAX_OBSERVATIONS only the count and the per-guest totals grow; the list keeps
    the earliest ones."""
    records: list[Record] = [CounterRead(t * 1000, 0, "reader", 0, t + 1, VCPU)
                             for t in reversed(range(150))]
    result = leaks(records)
    assert (result["count"], result["by_guest"], result["truncated"]) == (150, {VCPU: 150}, True)
    assert len(result["observations"]) == MAX_OBSERVATIONS == 100
    assert [o["value"] for o in result["observations"]] == list(range(1, 101))


def test_no_leaks() -> None:
    """No guest values read: an empty, not a missing, section."""
    assert leaks([]) == {"count": 0, "by_guest": {}, "observations": [], "truncated": False}


# --- pollution -------------------------------------------------------------------------------

POLLUTION: list[Record] = [
    # CPU 0: host-kernel 0-2000, in-kvm 2000-3000, guest 3000-4000, host-user 4000-5500.
    # Selectors enabled and counting 1000-3500, enabled only 3500-5000, none after.
    mode(0, "host-kernel", task="kworker"), GuestSelectors(1000, 0, "vm0", 0, 0b11, 0b01),
    mode(2000, "in-kvm"), mode(3000, "guest-user"), GuestSelectors(3500, 0, "vm0", 0, 0b1, 0),
    mode(4000, "host-user", task="perf"), GuestSelectors(5000, 0, "vm0", 0, 0, 0),
    mode(5500, "idle", task="idle"),
    # CPU 1: vm1's counting selector from 0, vm0/vcpu1's non-counting one from 6000;
    # host-user 0-1000, idle 1000-2000, host-kernel 2000-end.
    GuestSelectors(0, 1, "vm1", 0, 0b1, 0b1), mode(0, "host-user", cpu=1),
    mode(1000, "idle", cpu=1), mode(2000, "host-kernel", cpu=1),
    GuestSelectors(6000, 1, "vm0", 1, 0b100, 0),
    # CPU 2: selectors enabled but only guest code: no row.
    GuestSelectors(0, 2, "vm0", 0, 0b1, 0b1), mode(0, "guest-kernel", cpu=2),
]


def test_pollution_enabled_and_counting_per_cpu_and_guest() -> None:
    """Host code under enabled guest selectors, the counting part, rows by CPU then guest;
    the worst stretch spans mode changes and guest changes (CPU 1, 2000-10000)."""
    assert pollution(POLLUTION, END_PS) == {
        "host_ns": 12.0,  # CPU 0: 1000-3000 and 4000-5000; CPU 1: 0-1000 and 2000-10000
        "counting_ns": 7.0,  # CPU 0: 1000-3000; CPU 1: 0-1000 and 2000-6000
        "by_cpu": [
            {"cpu": 0, "guest": "vm0/vcpu0", "host_ns": 3.0, "counting_ns": 2.0},
            {"cpu": 1, "guest": "vm0/vcpu1", "host_ns": 4.0, "counting_ns": 0.0},
            {"cpu": 1, "guest": "vm1/vcpu0", "host_ns": 5.0, "counting_ns": 5.0},
        ],
        "worst_ns": 8.0,
    }
    assert pollution(POLLUTION[::-1], END_PS) == pollution(POLLUTION, END_PS)


def test_no_pollution() -> None:
    """No guest selectors: zeros and no rows."""
    assert pollution([mode(0, "host-user")], END_PS) == {
        "host_ns": 0.0, "counting_ns": 0.0, "by_cpu": [], "worst_ns": 0.0}


# --- pmu_switch ------------------------------------------------------------------------------

def test_pmu_switch_counts_loads_puts_time_and_causes() -> None:
    """Every PmuContext record is a switch; causes ranked by count, then name."""
    records: list[Record] = [r for r in SEED000 if isinstance(r, PmuContext)]
    result: dict[str, Any] = pmu_switch(records)
    assert result == {"switches": 3, "loads": 2, "puts": 1, "time_ns": 0.5,
                      "per_switch_ns": 0.2, "in_exits_ns": 0.0,
                      "by_why": {"vcpu_run": 2, "ipi": 1}}
    assert pmu_switch([]) == {"switches": 0, "loads": 0, "puts": 0, "time_ns": 0.0,
                              "per_switch_ns": None, "in_exits_ns": 0.0, "by_why": {}}


def test_puts_at_a_switch_point_are_counted_inside_exits() -> None:
    """A put made at a run-loop exit lies inside the exit's time: in_exits_ns says how much,
    so the report can split exit time without counting the put twice."""
    recs: list[Record] = [PmuContext(0, 0, "guest", "vm0", 0, 400, "run-loop"),
                          PmuContext(1000, 0, "host", "vm0", 0, 600, "run-loop"),
                          PmuContext(5000, 0, "host", "vm0", 0, 700, "sched-out")]
    result = pmu_switch(recs)
    assert result["in_exits_ns"] == 0.6
    assert result["time_ns"] == 1.7 and result["per_switch_ns"] == 0.6
