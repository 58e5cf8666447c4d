"""The Chrome trace-event / Perfetto export, on a hand-built run and on a real scenario.

The hand-built run: two CPUs, VM vm0 with vCPU 0 on CPU 0 and vCPU 1 on CPU 1 under a mediated
vPMU. On CPU 0: a load, an MSR_WRITE exit whose put and perf calls run inside it (the last perf
call ends on the exit's last picosecond), a guest PMI injected inside that exit and outliving
it, an exit inside the PMI handler, a put at sched-out, a switch to an RDPMC reader that reads
a guest value. On CPU 1: a load and an interrupt exit. Records come in emission order (an exit
after the calls inside it), not time order, as a run emits them. Times are ps.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from vpmu.trace import (
    ContextSwitch,
    CounterRead,
    GuestPmi,
    GuestSelectors,
    Interrupt,
    ModeChange,
    PerfCall,
    PerfOpen,
    PerfSample,
    PmuContext,
    Record,
    VmExit,
)
from vpmu.trace.perfetto import chrome_trace, dumps_chrome_trace

END_PS = 100_000
VCPU0, VCPU1 = "vm0/vcpu0", "vm0/vcpu1"
EXIT_T, EXIT_COST = 10_999, 5_002
"""The MSR_WRITE exit on CPU 0: 10.999 ns to 16.001 ns. Perfetto truncates its ts and dur to
10 ns and 5 ns, so it ends at 15 ns there."""
LAST_CALL_T, LAST_CALL_COST = 14_000, 2_001
"""The perf call that ends the exit (16.001 ns too): Perfetto would end it at 14 + 2 = 16 ns,
after the exit, unless the export cuts it."""


def synthetic_run() -> list[Record]:
    """The hand-built run of the module docstring, in emission order."""
    return [
        ContextSwitch(0, 0, "idle", VCPU0), ContextSwitch(0, 1, "idle", VCPU1),
        ModeChange(0, 0, "host-kernel", VCPU0), ModeChange(0, 1, "host-kernel", VCPU1),
        PerfOpen(500, -1, 7, "cycles", True, task="perf"),
        PmuContext(1_000, 0, "guest", "vm0", 0, 500, "run-loop"),
        ModeChange(1_500, 0, "guest-kernel", VCPU0),
        PmuContext(2_000, 1, "guest", "vm0", 1, 500, "run-loop"),
        ModeChange(2_500, 1, "guest-user", VCPU1),
        ModeChange(EXIT_T, 0, "in-kvm", VCPU0),
        PmuContext(EXIT_T, 0, "host", "vm0", 0, 300, "run-loop"),
        GuestSelectors(EXIT_T, 0, "vm0", 0, 0b101, 0b1),
        PerfCall(11_500, 0, "enable", 3, 1_000),
        PerfCall(LAST_CALL_T, 0, "enable", 4, LAST_CALL_COST),
        VmExit(EXIT_T, 0, "vm0", 0, "MSR_WRITE", msr=0x38F, write=True, cost_ps=EXIT_COST,
               value=0x7000000FF),
        PmuContext(16_001, 0, "guest", "vm0", 0, 500, "run-loop"),
        ModeChange(16_501, 0, "guest-kernel", VCPU0),
        ModeChange(20_000, 0, "in-kvm", VCPU0),
        VmExit(20_000, 0, "vm0", 0, "MSR_READ", msr=0x38E, cost_ps=2_000, value=0x1),
        ModeChange(22_000, 0, "guest-kernel", VCPU0),
        GuestPmi(12_000, 0, "vm0", 0, 20_000),
        Interrupt(30_000, 1, "tick"),
        ModeChange(30_000, 1, "in-kvm", VCPU1),
        PmuContext(30_000, 1, "host", "vm0", 1, 300, "run-loop"),
        VmExit(30_000, 1, "vm0", 1, "EXTERNAL_INTERRUPT", cost_ps=3_000, vector=0xEC),
        PmuContext(33_000, 1, "guest", "vm0", 1, 500, "run-loop"),
        PerfSample(35_000, 1, 7, VCPU1, "guest-user", 100_000),
        PmuContext(40_000, 0, "host", "vm0", 0, 300, "sched-out"),
        ModeChange(40_300, 0, "host-user", "reader"),
        ContextSwitch(40_300, 0, VCPU0, "reader"),
        CounterRead(41_000, 0, "reader", 0, 0x1234, origin=VCPU0),
        CounterRead(42_000, 0, "reader", 1, 0),
    ]


# -- checkers ----------------------------------------------------------------------------------
def ps(us: float) -> int:
    """A written µs value as the ps it stands for."""
    return round(us * 1e6)


def perfetto_ns(us: float) -> int:
    """What Perfetto's JSON importer makes of a µs value: int64(us * 1000.0)."""
    return int(us * 1000.0)


Interval = tuple[int, int, str]


def slices_by_thread(trace: dict[str, Any], *, perfetto: bool = False
                     ) -> dict[tuple[int, int], list[Interval]]:
    """The X slices of each (pid, tid) as (start, end, name): in ps, or as Perfetto sees them
    in ns (ts and dur truncated separately, then added)."""
    out: dict[tuple[int, int], list[Interval]] = defaultdict(list)
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            if perfetto:
                start, end = perfetto_ns(e["ts"]), perfetto_ns(e["ts"]) + perfetto_ns(e["dur"])
            else:
                start, end = ps(e["ts"]), ps(e["ts"]) + ps(e["dur"])
            out[(e["pid"], e["tid"])].append((start, end, e["name"]))
    return out


def nesting_violations(trace: dict[str, Any], *, perfetto: bool = False
                       ) -> list[tuple[tuple[int, int], Interval, Interval]]:
    """(thread, open slice, slice) for each slice that starts inside a slice on its thread
    and ends after it (partial overlap), in the ps domain or Perfetto's."""
    bad = []
    for thread, slices in slices_by_thread(trace, perfetto=perfetto).items():
        stack: list[Interval] = []
        for s in sorted(slices, key=lambda x: (x[0], -x[1])):
            while stack and stack[-1][1] <= s[0]:
                stack.pop()
            if stack and stack[-1][1] < s[1]:
                bad.append((thread, stack[-1], s))
            stack.append(s)
    return bad


def thread_names(trace: dict[str, Any]) -> dict[tuple[int, int], str]:
    return {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"]
            if e["ph"] == "M" and e["name"] == "thread_name"}


def process_names(trace: dict[str, Any]) -> dict[int, str]:
    return {e["pid"]: e["args"]["name"] for e in trace["traceEvents"]
            if e["ph"] == "M" and e["name"] == "process_name"}


def track(trace: dict[str, Any], name: str, pid: int = 1) -> list[dict[str, Any]]:
    """The timed events of the thread named ``name`` in process ``pid``, in file order."""
    tids = [t for (p, t), n in thread_names(trace).items() if p == pid and n == name]
    assert len(tids) == 1, (name, thread_names(trace))
    return [e for e in trace["traceEvents"]
            if e["ph"] != "M" and e["pid"] == pid and e["tid"] == tids[0]]


def spans(events: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    return [(ps(e["ts"]), ps(e["ts"]) + ps(e["dur"]), e["name"]) for e in events
            if e["ph"] == "X"]


def tiles(intervals: list[Interval], end_ps: int) -> bool:
    """Whether ``intervals`` cover [0, end_ps] back to back, without gap or overlap."""
    return (bool(intervals) and intervals[0][0] == 0 and intervals[-1][1] == end_ps
            and all(a[1] == b[0] and a[0] < a[1] for a, b in pairwise(intervals)))


@pytest.fixture
def trace() -> dict[str, Any]:
    return chrome_trace(synthetic_run(), end_ps=END_PS, title="synthetic")


# -- format ------------------------------------------------------------------------------------
def test_json_round_trip(trace: dict[str, Any]) -> None:
    """The text is JSON that reads back as the object chrome_trace returns."""
    text = dumps_chrome_trace(synthetic_run(), end_ps=END_PS, title="synthetic")
    assert json.loads(text) == trace
    assert trace["displayTimeUnit"] == "ns"
    assert trace["metadata"]["title"] == "synthetic"
    assert trace["metadata"]["end_ps"] == END_PS


def test_every_event_has_the_fields_the_format_requires(trace: dict[str, Any]) -> None:
    """ph, ts, pid, tid, name on every event; dur >= 0 on X; thread scope on instants."""
    for e in trace["traceEvents"]:
        assert {"ph", "ts", "pid", "tid", "name"} <= e.keys(), e
        assert e["ph"] in ("M", "X", "i")
        assert all(isinstance(e[k], int) for k in ("pid", "tid"))
        if e["ph"] == "X":
            assert e["dur"] >= 0
        if e["ph"] == "i":
            assert e["s"] == "t"


def test_metadata_events_first_then_time_order(trace: dict[str, Any]) -> None:
    """Metadata leads; timed events follow by ts, the longer first at equal ts."""
    phases = [e["ph"] for e in trace["traceEvents"]]
    first_timed = phases.index("X")
    assert set(phases[:first_timed]) == {"M"} and "M" not in phases[first_timed:]
    keys = [(ps(e["ts"]), -ps(e.get("dur", 0))) for e in trace["traceEvents"][first_timed:]]
    assert keys == sorted(keys)


def test_metadata_names_processes_and_tracks(trace: dict[str, Any]) -> None:
    """host is pid 1 with CPU N on tid N + 1; vm0 is pid 100; every used thread is named."""
    assert process_names(trace) == {1: "host", 100: "vm0"}
    names = thread_names(trace)
    assert names[(1, 1)] == "CPU 0" and names[(1, 2)] == "CPU 1"
    assert names[(100, 1)] == "vCPU 0" and names[(100, 2)] == "vCPU 1"
    assert {"CPU 0 sched", "CPU 1 sched", "CPU 0 mode", "CPU 0 PMU owner", "CPU 1 PMU owner",
            "vCPU 0 PMI", "host (no CPU)"} <= set(names.values())
    used = {(e["pid"], e["tid"]) for e in trace["traceEvents"] if e["ph"] != "M"}
    assert used <= names.keys()
    assert len(set(names.values())) == len(names)
    sort_index = [(e["pid"], e["args"]["sort_index"]) for e in trace["traceEvents"]
                  if e["name"] == "thread_sort_index"]
    assert len(sort_index) == len(names) == len(set(sort_index))
    host = sorted((e["args"]["sort_index"], names[(1, e["tid"])]) for e in trace["traceEvents"]
                  if e["name"] == "thread_sort_index" and e["pid"] == 1)
    assert [n for _, n in host][:4] == ["host (no CPU)", "CPU 0 sched", "CPU 0 mode",
                                        "CPU 0 PMU owner"]


def test_ts_and_dur_are_microseconds_to_the_picosecond(trace: dict[str, Any]) -> None:
    """The MSR_WRITE exit at 10,999 ps lasting 5,002 ps is ts 0.010999, dur 0.005002."""
    exits = [e for e in track(trace, "CPU 0") if e["name"] == "MSR_WRITE"]
    assert len(exits) == 1
    assert exits[0]["ts"] == pytest.approx(0.010999, abs=1e-12)
    assert exits[0]["dur"] == pytest.approx(0.005002, abs=1e-12)
    assert (ps(exits[0]["ts"]), ps(exits[0]["dur"])) == (EXIT_T, EXIT_COST)


# -- nesting -----------------------------------------------------------------------------------
def test_slices_nest_on_every_thread(trace: dict[str, Any]) -> None:
    """No partial overlap on any thread, in picoseconds and as Perfetto reads the times."""
    assert nesting_violations(trace) == []
    assert nesting_violations(trace, perfetto=True) == []


def test_checker_sees_a_partial_overlap() -> None:
    """The checker itself: two overlapping slices on one thread are one violation."""
    events = [{"ph": "X", "ts": 0.001, "dur": 0.002, "pid": 1, "tid": 1, "name": "a"},
              {"ph": "X", "ts": 0.002, "dur": 0.002, "pid": 1, "tid": 1, "name": "b"}]
    assert len(nesting_violations({"traceEvents": events})) == 1


def test_child_ending_with_its_parent_is_cut_for_perfetto(trace: dict[str, Any]) -> None:
    """The perf call ending on the exit's last ps would end 1 ns after it in Perfetto (16 vs
    15 ns): it is written 1,999 ps long, still inside the exit in both domains."""
    calls = [e for e in track(trace, "CPU 0") if e["name"] == "perf enable"]
    last = next(e for e in calls if ps(e["ts"]) == LAST_CALL_T)
    assert ps(last["dur"]) == 1_999
    assert perfetto_ns(last["ts"]) + perfetto_ns(last["dur"]) == 15
    first = next(e for e in calls if ps(e["ts"]) == 11_500)
    assert ps(first["dur"]) == 1_000  # an ordinary child keeps its exact duration
    assert last["args"]["cost_ns"] == 2.001  # the args keep the record's cost


def test_exact_nanoseconds_read_back_exactly_in_perfetto() -> None:
    """1.001 µs is 1000.999... ns as a double: written times make int(us * 1000) exact."""
    times = [1_001_000, 1_003_000, 123_456_789_000]
    records = [PerfCall(t, 0, "read", 1, 1_000) for t in times]
    events = [e for e in chrome_trace(records, end_ps=10**12)["traceEvents"] if e["ph"] == "X"]
    assert [perfetto_ns(e["ts"]) for e in events] == [t // 1000 for t in times]
    assert [ps(e["ts"]) for e in events] == times


def test_partial_overlap_goes_to_an_overflow_track() -> None:
    """Two perf calls overlapping partially on CPU 1: the second gets "CPU 1 (overflow 1)"."""
    records = [PerfCall(1_000, 1, "read", 1, 2_000), PerfCall(2_000, 1, "read", 2, 2_000)]
    out = chrome_trace(records, end_ps=5_000)
    assert spans(track(out, "CPU 1")) == [(1_000, 3_000, "perf read")]
    assert spans(track(out, "CPU 1 (overflow 1)")) == [(2_000, 4_000, "perf read")]
    assert nesting_violations(out) == []


# -- content -----------------------------------------------------------------------------------
def test_exit_on_vcpu_and_cpu_tracks_with_args(trace: dict[str, Any]) -> None:
    """An exit appears on its vCPU's and its CPU's track, with msr and value in hex."""
    on_vcpu = [e for e in track(trace, "vCPU 0", pid=100) if e["name"] == "MSR_WRITE"]
    on_cpu = [e for e in track(trace, "CPU 0") if e["name"] == "MSR_WRITE"]
    assert len(on_vcpu) == len(on_cpu) == 1
    assert on_vcpu[0]["args"] == on_cpu[0]["args"] == {
        "vm": "vm0", "vcpu": 0, "cpu": 0, "msr": "0x38f", "write": True,
        "value": "0x7000000ff", "fault": False, "fastpath": False, "cost_ns": 5.002}
    irq = next(e for e in track(trace, "vCPU 1", pid=100))
    assert irq["name"] == "EXTERNAL_INTERRUPT" and irq["args"]["vector"] == 0xEC
    assert "msr" not in irq["args"]


def test_guest_pmi_has_its_own_vcpu_track(trace: dict[str, Any]) -> None:
    """The PMI (delivered inside the MSR_WRITE exit, outliving it) is on "vCPU 0 PMI"."""
    assert spans(track(trace, "vCPU 0 PMI", pid=100)) == [(12_000, 32_000,
                                                            "guest PMI handler")]
    assert spans(track(trace, "vCPU 0", pid=100)) == [(EXIT_T, EXIT_T + EXIT_COST, "MSR_WRITE"),
                                                      (20_000, 22_000, "MSR_READ")]


def test_cpu_track_holds_exits_perf_calls_and_pmu_switches(trace: dict[str, Any]) -> None:
    """CPU 0: load, the exit with its put and perf calls inside, load, the MSR_READ exit,
    the sched-out put; instants for selectors and the RDPMC reads."""
    events = track(trace, "CPU 0")
    assert [(s, n) for s, _, n in spans(events)] == [
        (1_000, "PMU load"), (EXIT_T, "MSR_WRITE"), (EXIT_T, "PMU put"), (11_500, "perf enable"),
        (LAST_CALL_T, "perf enable"), (16_001, "PMU load"), (20_000, "MSR_READ"),
        (40_000, "PMU put")]
    put = next(e for e in events if e["name"] == "PMU put")
    assert put["args"] == {"vm": "vm0", "vcpu": 0, "why": "run-loop", "cost_ns": 0.3}
    assert [e["name"] for e in events if e["ph"] == "i"] == ["guest selectors", "rdpmc LEAK",
                                                             "rdpmc"]


def test_counter_read_shows_value_and_origin(trace: dict[str, Any]) -> None:
    """A read that saw a guest value is an "rdpmc LEAK" instant naming its origin."""
    leak = next(e for e in track(trace, "CPU 0") if e["name"] == "rdpmc LEAK")
    assert ps(leak["ts"]) == 41_000
    assert leak["args"] == {"task": "reader", "ecx": "0x0", "value": "0x1234", "origin": VCPU0}


def test_other_instants(trace: dict[str, Any]) -> None:
    """Interrupts and samples on their CPU; a task perf_event_open (cpu -1) on its track."""
    cpu1 = [(e["name"], e.get("args")) for e in track(trace, "CPU 1") if e["ph"] == "i"]
    assert cpu1 == [("irq tick", {"kind": "tick"}),
                    ("perf sample", {"event": 7, "task": VCPU1, "mode": "guest-user",
                                     "period": 100_000})]
    [opened] = track(trace, "host (no CPU)")
    assert opened["name"] == "perf_event_open" and opened["args"]["exclude_guest"] is True


def test_ownership_tiles_the_run(trace: dict[str, Any]) -> None:
    """Guest from a load's end to the next put's start, host otherwise, over [0, end]."""
    assert spans(track(trace, "CPU 0 PMU owner")) == [
        (0, 1_500, "host"), (1_500, EXIT_T, "guest vm0/vcpu0"), (EXIT_T, 16_501, "host"),
        (16_501, 40_000, "guest vm0/vcpu0"), (40_000, END_PS, "host")]
    assert spans(track(trace, "CPU 1 PMU owner")) == [
        (0, 2_500, "host"), (2_500, 30_000, "guest vm0/vcpu1"), (30_000, 33_500, "host"),
        (33_500, END_PS, "guest vm0/vcpu1")]
    assert tiles(spans(track(trace, "CPU 0 PMU owner")), END_PS)
    assert tiles(spans(track(trace, "CPU 0 sched")), END_PS)


def test_sched_and_mode_tracks(trace: dict[str, Any]) -> None:
    """The running task between switches, and mode bands, to the end of the run."""
    assert spans(track(trace, "CPU 0 sched")) == [(0, 40_300, VCPU0),
                                                  (40_300, END_PS, "reader")]
    modes = spans(track(trace, "CPU 0 mode"))
    assert [n for _, _, n in modes] == ["host-kernel", "guest-kernel", "in-kvm", "guest-kernel",
                                        "in-kvm", "guest-kernel", "host-user"]
    assert tiles(modes, END_PS)


def test_no_pmu_owner_track_without_a_mediated_vpmu() -> None:
    """A run with no PmuContext record (emulated vPMU) has no ownership track."""
    records = [r for r in synthetic_run() if not isinstance(r, PmuContext)]
    names = thread_names(chrome_trace(records, end_ps=END_PS)).values()
    assert not any("owner" in n for n in names)


# -- robustness --------------------------------------------------------------------------------
def test_same_records_same_bytes() -> None:
    """Determinism: two exports of equal records are identical text."""
    a = dumps_chrome_trace(synthetic_run(), end_ps=END_PS)
    b = dumps_chrome_trace(list(synthetic_run()), end_ps=END_PS)
    assert a == b
    lines = a.splitlines()  # a header line, one line per event, the closing line
    assert [json.loads(line.rstrip(",")) for line in lines[1:-1]] == json.loads(a)["traceEvents"]


@dataclass(frozen=True, slots=True)
class FutureRecord(Record):
    """A record type this exporter does not know."""

    what: str


def test_unknown_record_is_skipped() -> None:
    """An unknown Record subclass changes nothing but the skipped count."""
    plain = chrome_trace(synthetic_run(), end_ps=END_PS)
    mixed = chrome_trace([FutureRecord(5_000, 0, "from-the-future"), *synthetic_run()],
                         end_ps=END_PS)
    assert mixed["traceEvents"] == plain["traceEvents"]
    assert mixed["metadata"]["skipped"] == {"FutureRecord": 1}
    assert "from-the-future" not in json.dumps(mixed["traceEvents"])


def test_empty_run() -> None:
    """No records: just the host process."""
    out = chrome_trace([], end_ps=0)
    assert [e["name"] for e in out["traceEvents"]] == ["process_name", "process_sort_index"]


@pytest.mark.parametrize("end_ps", [-1, 1.5, True])
def test_bad_end_ps(end_ps: Any) -> None:
    """end_ps must be a non-negative int."""
    with pytest.raises(ValueError, match="end_ps must be a non-negative integer"):
        chrome_trace([], end_ps=end_ps)


# -- a real run --------------------------------------------------------------------------------
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_real_scenario_exports_valid_nesting() -> None:
    """leak-rdpmc-reader for 5 ms: slices nest (ps and Perfetto), exits, PMU loads and leaks
    appear, and the PMU ownership timeline tiles the run."""
    from vpmu.scenario import load_scenario
    from vpmu.scenario.run import build, run

    out = run(build(load_scenario(EXAMPLES / "leak-rdpmc-reader.toml",
                                  overrides=["duration_ms=5"]), None, keep_trace=True))
    trace = json.loads(dumps_chrome_trace(out.records, end_ps=out.end_ps))
    assert nesting_violations(trace) == []
    assert nesting_violations(trace, perfetto=True) == []
    assert not any("overflow" in n for n in thread_names(trace).values())
    names = {e["name"] for e in trace["traceEvents"]}
    assert {"MSR_WRITE", "PMU load", "PMU put", "rdpmc LEAK"} <= names
    exits = sum(isinstance(r, VmExit) for r in out.records)
    on_vcpu = [e for e in track(trace, "vCPU 0", pid=100) if e["cat"] == "exit"]
    assert len(on_vcpu) == exits > 0
    owner = spans(track(trace, "CPU 0 PMU owner"))
    assert tiles(owner, out.end_ps)
    assert any(n.startswith("guest vm0/vcpu0") for _, _, n in owner)
