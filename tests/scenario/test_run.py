"""The scenario runner: build a scenario's machine, run it until the guests finish, and read
the results back through the metrics (small scenarios: 5-10 ms of guest work, 1-2 runs)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from vpmu.guest.linux import RunResult
from vpmu.host.task import TaskState
from vpmu.metrics import mode_time_ps
from vpmu.report.results import RESULT_KEYS, results
from vpmu.scenario import parse_scenario
from vpmu.scenario.run import RunOutcome, build, design_for, run
from vpmu.trace import CounterRead, GuestPmi, PerfCall

INTEL_BRANCHES = "0x00c4"
"""BR_INST_RETIRED.ALL_BRANCHES, the event select Linux maps ``branches`` to on Intel."""
AMD_BRANCHES = "0x00c2"
"""Retired branch instructions, Linux's ``branches`` on AMD (amd_perfmon_event_map)."""
PS_PER_MS = 10**9


def scenario_text(*, preset: str = "intel-icx", design: str = "emulated", tool: str = "perf-stat",
                  events: str = '["cycles", "instructions", "branches"]', runs: int = 1,
                  duration_ms: int = 10, vcpus: int = 1, extra_vm: str = "",
                  tail: str = "") -> str:
    """A one-VM scenario whose guest runs ``tool`` around br_instr on vCPU 0; ``extra_vm``
    goes inside ``[[vm]]`` (tables such as [vm.filter]), ``tail`` after everything."""
    pin = ", ".join(str(i) for i in range(vcpus))
    return f"""\
name = "runner-test"
duration_ms = {duration_ms}
seed = 3
[host]
preset = "{preset}"
cpus = {vcpus + 2}
[[vm]]
name = "g"
vcpus = {vcpus}
pin = [{pin}]
design = "{design}"
{extra_vm}
[[vm.guest]]
vcpu = 0
workload = "br_instr"
tool = "{tool}"
events = {events}
runs = {runs}
{tail}"""


def run_text(text: str, design: str | None = None) -> RunOutcome:
    """Parse, build and run a scenario, keeping its trace (the tests read its records)."""
    return run(build(parse_scenario(text), design, keep_trace=True))


def accuracy_by_event(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The accuracy rows of a one-vCPU-tool run, by event name."""
    return {row["event"]: row for row in data["accuracy"]["events"]}


@pytest.fixture(scope="module")
def record_run() -> tuple[RunOutcome, dict[str, Any]]:
    """Seed 001 in small: 2 of its 4 events sampled in frequency mode, twice, over 5 ms of
    br_instr on a 2-vCPU Intel VM (vCPU 1 idle)."""
    text = scenario_text(tool="perf-record", runs=2, vcpus=2, duration_ms=5,
                         events='["cycles", "instructions"]',
                         extra_vm="[vm.design_options]\nemulated_instructions = false")
    outcome = run_text(text)
    return outcome, results(outcome)


def test_build_makes_the_vms_and_run_finishes_every_vcpu(
        record_run: tuple[RunOutcome, dict[str, Any]]) -> None:
    """Every vCPU thread (the one with the tool and the idle one) has finished, after at least
    duration_ms of simulated time."""
    outcome, _ = record_run
    assert outcome.vcpu_tasks == ["g/vcpu0", "g/vcpu1"]
    assert all(v.task.state is TaskState.DEAD for vm in outcome.vms for v in vm.vcpus)
    assert all(vm.done for vm in outcome.vms)
    assert outcome.end_ps >= 5 * PS_PER_MS
    assert outcome.designs == ["emulated:emulated_instructions=false"]


def test_a_built_scenario_has_not_run_yet() -> None:
    """``build`` only wires the machine: no time has passed and no guest has finished."""
    outcome = build(parse_scenario(scenario_text()))
    assert outcome.end_ps == 0 and outcome.host.env.now_ps == 0
    assert not any(vm.done for vm in outcome.vms)
    assert run(outcome) is outcome and outcome.end_ps > 0


def test_guest_results_are_one_run_result_per_run(
        record_run: tuple[RunOutcome, dict[str, Any]]) -> None:
    """vCPU 0 returns one perf record result per run (its counts; not its samples, which no
    result reads and which would grow with the run); the vCPU no guest entry names returns
    no tool results."""
    outcome, data = record_run
    res = outcome.guest_results()
    assert set(res) == {"g/vcpu0", "g/vcpu1"}
    runs = res["g/vcpu0"]
    assert len(runs) == 2 and all(isinstance(r, RunResult) and r.tool == "record" for r in runs)
    assert [e.name for e in runs[0].events] == ["cycles", "instructions"]
    assert all(e.count > 0 and e.samples == () for r in runs for e in r.events)
    assert data["guest_pmi"]["count"] > 0
    assert not (isinstance(res["g/vcpu1"], list) and res["g/vcpu1"])


def test_perf_record_exits_include_msr_writes_and_pmi_nmis(
        record_run: tuple[RunOutcome, dict[str, Any]]) -> None:
    """Sampling programs counters (MSR_WRITE exits) and each guest PMI arrives as a host NMI
    (EXCEPTION_NMI exits); by_reason adds up to the total."""
    _, data = record_run
    exits = data["vm_exits"]
    assert exits["by_reason"]["MSR_WRITE"] > 0
    assert exits["by_reason"]["EXCEPTION_NMI"] > 0
    assert sum(exits["by_reason"].values()) == exits["total"]
    assert data["msr_exits"]["total"] == sum(data["msr_exits"]["by_msr"].values())
    assert data["perf_calls"]["total"] > 0


def test_guest_pmi_latency_statistics_are_ordered(
        record_run: tuple[RunOutcome, dict[str, Any]]) -> None:
    """Guest PMIs were handled; min <= p50 <= p99 <= max and the mean lies between min and max;
    the count is the number of GuestPmi records."""
    outcome, data = record_run
    pmi = data["guest_pmi"]
    assert pmi["count"] > 0
    assert pmi["count"] == sum(isinstance(r, GuestPmi) for r in outcome.records)
    lat = pmi["handler_latency_ns"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"]


def test_intel_pmi_handler_msr_sequence_per_pmi(
        record_run: tuple[RunOutcome, dict[str, Any]]) -> None:
    """intel_pmu_handle_irq reads GLOBAL_STATUS twice (once, then again after handling to see
    that nothing new overflowed) and acks once through OVF_CTRL: exactly 2.0 and 1.0 per PMI."""
    _, data = record_run
    per_pmi = data["guest_pmi"]["per_pmi"]
    assert per_pmi["global_status_reads"] == 2.0
    assert per_pmi["ovf_ctrl_writes"] == 1.0
    assert per_pmi["global_ctrl_writes"] >= 2.0  # disable on entry, enable on exit
    assert list(per_pmi) == ["global_ctrl_writes", "global_status_reads", "ovf_ctrl_writes",
                             "lvt_pmi_writes", "counter_writes", "rdpmc"]


def test_results_have_the_contract_keys_and_echo_the_scenario(
        record_run: tuple[RunOutcome, dict[str, Any]]) -> None:
    """The results dict has the contract's keys in order, the later issues' sections null, and
    the scenario embedded as loaded (defaults filled in)."""
    outcome, data = record_run
    assert tuple(data) == RESULT_KEYS
    assert [data[k] for k in ("host_profiling", "lbr", "arm64")] == [None] * 3
    assert data["leaks"]["count"] == 0 and data["pollution"]["host_ns"] == 0
    assert data["scenario"]["name"] == "runner-test"
    assert data["scenario"]["file_model"]["vm"][0]["guest"][0]["tick_hz"] == 1000
    assert data["design"] == "emulated" and data["preset"] == "intel-icx"
    assert data["design_options"] == {"is_paused": True, "reuse_perf_events": True,
                                      "emulated_instructions": False, "lbr": True,
                                      "lbr_save_point": "thread-switch",
                                      "lbr_ownership": "first-come"}
    assert data["sim"]["end_ms"] == outcome.end_ps / PS_PER_MS
    assert data["sim"]["records"] == len(outcome.records)


def test_perf_stat_under_emulated_counts_within_one_percent() -> None:
    """Counting mode has no sampling to lose counts to: every event is within 1% of the
    workload's truth (the rest is the guest kernel's own work inside the count)."""
    data = results(run_text(scenario_text(runs=2)))
    rows = data["accuracy"]["events"]
    assert [r["event"] for r in rows] == ["cycles", "instructions", "branches"]
    for r in rows:
        assert r["vcpu"] == "g/vcpu0" and r["tool"] == "stat"
        assert r["truth"] > 0 and r["count"] >= r["truth"]
        assert abs(r["error"]) < 0.01, r
    assert data["accuracy"]["worst_abs_error"] == max(abs(r["error"]) for r in rows)
    assert data["guest_pmi"]["count"] == 0  # perf stat never overflows


def test_the_same_event_twice_is_two_rows_each_with_the_whole_truth() -> None:
    """`-e instructions -e instructions` opens two events: each counts the workload once
    (not one row with twice the count and a +100% error)."""
    data = results(run_text(scenario_text(events='["instructions", "instructions"]')))
    rows = data["accuracy"]["events"]
    assert [r["event"] for r in rows] == ["instructions", "instructions"]
    assert all(abs(r["error"]) < 0.01 for r in rows), rows


@pytest.mark.parametrize("tool", ["perf-stat", "perf-record"])
def test_design_none_makes_perf_tools_not_supported(tool: str) -> None:
    """With no vPMU the guest's perf finds no PMU: every event is <not supported>, KVM makes
    no perf call, and no PMI reaches the guest."""
    outcome = run_text(scenario_text(design="none", tool=tool))
    (result,) = outcome.guest_results()["g/vcpu0"]
    assert [e.supported for e in result.events] == [False, False, False]
    data = results(outcome)
    assert data["design"] == "none" and data["design_options"] == {}
    assert data["perf_calls"] == {"total": 0, "by_api": {}, "time_ns": 0.0}
    assert not any(isinstance(r, PerfCall) for r in outcome.records)
    assert data["guest_pmi"]["count"] == 0
    assert {r["count"] for r in data["accuracy"]["events"]} == {None}
    assert "EXCEPTION_NMI" not in data["vm_exits"]["by_reason"]


def test_design_argument_replaces_the_scenario_design() -> None:
    """``build(scenario, "none")`` runs every VM without a vPMU whatever the file says."""
    outcome = run_text(scenario_text(), design="none")
    assert outcome.designs == ["none"]
    assert [type(vm.design).__name__ for vm in outcome.vms] == ["NoPmu"]


def test_host_tasks_rdpmc_reader_and_load_run() -> None:
    """An RDPMC reader reads every counter each interval until duration_ms, and a load task
    executes its whole work: (duration_ms - start_ms) of host-user time at bare-metal speed."""
    duration_ms, interval_us, load_start_ms = 5, 500, 1
    tail = f"""\
[[host_task]]
kind = "rdpmc-reader"
cpu = 1
interval_us = {interval_us}
[[host_task]]
kind = "load"
cpu = 2
start_ms = {load_start_ms}
"""
    outcome = run_text(scenario_text(duration_ms=duration_ms, tail=tail))
    tasks = {t.name: t for t in outcome.host.sched.tasks}
    reader, load = tasks["host_task[0] rdpmc-reader"], tasks["host_task[1] load"]
    assert reader.state is TaskState.DEAD and load.state is TaskState.DEAD
    caps = outcome.host.preset.caps
    rounds = duration_ms * 1000 // interval_us
    ecxs = caps.n_gp + len(caps.fixed_indices)
    assert len(reader.result) == rounds * ecxs
    reads = [r for r in outcome.records if isinstance(r, CounterRead)]
    assert len(reads) == rounds * ecxs
    assert Counter(r.task for r in reads) == {reader.name: rounds * ecxs}
    assert {r.cpu for r in reads} == {1}
    load_modes = mode_time_ps(outcome.records, outcome.end_ps)[load.name]
    # its work is cut into pieces by the ticks; each piece rounds to a picosecond
    assert load_modes["host-user"] == pytest.approx((duration_ms - load_start_ms) * PS_PER_MS,
                                                    abs=1000)


@pytest.mark.parametrize(("preset", "branches"), [("intel-icx", INTEL_BRANCHES),
                                                  ("amd-zen4", AMD_BRANCHES)])
def test_filter_denying_branches_zeroes_the_guest_branch_count(preset: str,
                                                               branches: str) -> None:
    """A KVM deny filter on the branches event select: the guest's counter never counts
    (perf still opens it, so it reads 0), the other events stay within 1%."""
    extra = f'[vm.filter]\naction = "deny"\nevents = ["{branches}"]'
    outcome = run_text(scenario_text(preset=preset, extra_vm=extra))
    rows = accuracy_by_event(results(outcome))
    assert rows["branches"]["count"] == 0 and rows["branches"]["truth"] > 0
    assert rows["branches"]["error"] == -1.0
    assert abs(rows["cycles"]["error"]) < 0.01 and abs(rows["instructions"]["error"]) < 0.01
    (result,) = outcome.guest_results()["g/vcpu0"]
    assert result["branches"].supported and result["branches"].count == 0


def test_filter_without_the_event_leaves_branches_counting() -> None:
    """The same deny filter naming another event does not touch branches (the control of the
    test above)."""
    extra = '[vm.filter]\naction = "deny"\nevents = ["0x00d1"]'
    rows = accuracy_by_event(results(run_text(scenario_text(extra_vm=extra))))
    assert abs(rows["branches"]["error"]) < 0.01


def test_same_scenario_gives_the_same_trace() -> None:
    """Two runs of one scenario emit equal record lists (the basis of byte-identical JSON)."""
    text = scenario_text(tool="perf-record", events='["instructions"]', duration_ms=5)
    first, second = run_text(text), run_text(text)
    assert first.records == second.records and first.end_ps == second.end_ps


# --- design_for: how --design merges with the scenario's design ----------------------------

SEED_001_VM = scenario_text(extra_vm="[vm.design_options]\nemulated_instructions = false")


@pytest.mark.parametrize(("override", "expected"), [
    (None, "emulated:emulated_instructions=false"),
    ("emulated", "emulated:emulated_instructions=false"),
    ("emulated:is_paused=false", "emulated:emulated_instructions=false,is_paused=false"),
    ("emulated:emulated_instructions=true", "emulated:emulated_instructions=true"),
    ("none", "none"),
])
def test_design_for_merges_options_of_the_same_design(override: str | None,
                                                      expected: str) -> None:
    """Same design name: the scenario's options, then the override's on top (it wins on a
    shared key); another design name: the override alone (the scenario's options belong to
    its own design)."""
    vm = parse_scenario(SEED_001_VM).vm[0]
    assert design_for(vm, override) == expected


def test_design_for_merges_inline_options_and_the_options_table() -> None:
    """``design = "emulated:is_paused=false"`` and ``[vm.design_options]`` are one spec, and a
    command-line option of the same design goes on top of both."""
    text = scenario_text(design="emulated:is_paused=false",
                         extra_vm="[vm.design_options]\nreuse_perf_events = false")
    vm = parse_scenario(text).vm[0]
    assert design_for(vm, None) == "emulated:is_paused=false,reuse_perf_events=false"
    assert design_for(vm, "emulated:is_paused=true") == \
        "emulated:is_paused=true,reuse_perf_events=false"


def test_build_rejects_an_unknown_design_naming_the_choices() -> None:
    """A design name the registry lacks fails in build with the valid names (the CLI turns
    this into exit code 2)."""
    with pytest.raises(ValueError, match=r"design must be one of \[.*'emulated'.*\], not 'bogus'"):
        build(parse_scenario(scenario_text(design="bogus")))


def test_rdpmc_reader_clear_dirty_override_reaches_perf() -> None:
    """clear_dirty_counters on an rdpmc-reader overrides the host's for switches to it:
    with it off, a counter a host perf event used stays readable after the event leaves."""
    tail = """\
[[host_task]]
kind = "rdpmc-reader"
cpu = 1
interval_us = 500
clear_dirty_counters = false
[[host_task]]
kind = "rdpmc-reader"
cpu = 1
interval_us = 500
"""
    outcome = build(parse_scenario(scenario_text(duration_ms=2, tail=tail), "t.toml"))
    outcome.host.run(0)  # spawns the readers scheduled at t = 0
    tasks = {t.name: t for t in outcome.host.sched.tasks}
    assert tasks["host_task[0] rdpmc-reader"].clear_dirty is False
    assert tasks["host_task[1] rdpmc-reader"].clear_dirty is None
    perf = outcome.host.perf
    cpu = outcome.host.cpus[1]
    drv = perf.drivers[1]  # type: ignore[attr-defined]
    drv.dirty = 1  # GP0 was used by an event that has left
    cpu.hw.pmu.counters[0].value = 1234
    perf.switch_mm(cpu, tasks["host_task[0] rdpmc-reader"])  # type: ignore[attr-defined]
    assert cpu.hw.pmu.counters[0].value == 1234
    perf.switch_mm(cpu, tasks["host_task[1] rdpmc-reader"])  # type: ignore[attr-defined]
    assert cpu.hw.pmu.counters[0].value == 0


def test_mediated_and_emulated_vms_cannot_share_a_host() -> None:
    """enable_mediated_pmu is per host: the second VM is refused by name, not by a crash."""
    text = """
duration_ms = 2
[host]
preset = "intel-icx"
cpus = 2
[[vm]]
design = "mediated"
pin = [0]
[[vm.guest]]
tool = "perf-stat"
events = ["cycles"]
[[vm]]
design = "emulated"
pin = [1]
[[vm.guest]]
tool = "perf-stat"
events = ["cycles"]
"""
    with pytest.raises(ValueError, match=r"vm\[1\]\.design: 'emulated' cannot run beside"):
        build(parse_scenario(text))
