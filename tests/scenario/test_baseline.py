"""Baselines: the same scenario unprofiled and on bare metal, the per-VM block, the headline."""

from __future__ import annotations

from typing import Any

import pytest

from vpmu.metrics.baseline import relative
from vpmu.report.headline import headline
from vpmu.report.results import results
from vpmu.scenario.baseline import BareMetalRuns, bare_metal_ps, measure, profiled, unprofiled
from vpmu.scenario.load import parse_scenario
from vpmu.scenario.run import build, run
from vpmu.scenario.schema import Scenario

PROFILED = """
name = "b"
duration_ms = 4
seed = 3
[host]
preset = "intel-icx"
cpus = 2
[[vm]]
vcpus = 2
pin = [0, 1]
design = "emulated"
[[vm.guest]]
vcpu = 0
workload = "compute"
tool = "perf-record"
events = ["cycles", "instructions"]
freq = 2000
runs = 2
[[host_task]]
kind = "perf-record"
events = ["cycles"]
[[host_task]]
kind = "load"
cpu = 1
"""


def scenario(text: str = PROFILED, *overrides: str) -> Scenario:
    return parse_scenario(text, "test", overrides=overrides)


def run_with_baseline(sc: Scenario, design: str | None = None) -> dict[str, Any]:
    outcome = run(build(sc, design))
    return results(outcome, measure(outcome, design))


def test_unprofiled_removes_every_guest_tool_and_keeps_the_work() -> None:
    """Tools, events and sampling go; workload, runs, start and the host's tasks stay."""
    sc = scenario()
    plain = unprofiled(sc)
    g, g0 = plain.vm[0].guest[0], sc.vm[0].guest[0]
    assert (g.tool, g.events, g.freq, g.period) == ("none", [], None, None)
    assert (g.workload, g.runs, g.start_ms) == (g0.workload, g0.runs, g0.start_ms)
    assert plain.host_task == sc.host_task and plain.host == sc.host
    assert profiled(sc) and not profiled(plain)


def test_vs_unprofiled_is_the_completion_against_an_independent_unprofiled_run() -> None:
    """The baseline equals what running the unprofiled scenario on its own gives, and
    profiling under emulated makes the guest finish later."""
    sc = scenario()
    data = run_with_baseline(sc)
    alone = run(build(unprofiled(sc)))
    ov = data["overhead"]
    assert ov["baseline"]["unprofiled_guest_end_ms"] == round(max(alone.guest_end_ps()) / 1e9, 6)
    end = round(ov["baseline"]["guest_end_ms"] * 1e9)
    assert ov["vs_unprofiled"] == relative(end, max(alone.guest_end_ps()))
    assert ov["vs_unprofiled"] > 0


def test_guest_completion_is_the_last_vcpu_thread_exit() -> None:
    """Each VM's completion is its latest vCPU thread's exit time, within the run."""
    outcome = run(build(scenario()))
    exits = [v.task.exit_ps for v in outcome.vms[0].vcpus]
    assert all(t is not None for t in exits)
    assert outcome.guest_end_ps() == (max(t for t in exits if t is not None),)
    assert outcome.guest_end_ps()[0] <= outcome.end_ps


def test_a_scenario_without_guest_tools_is_its_own_unprofiled_baseline() -> None:
    """Nothing to remove: vs_unprofiled is exactly 0 (the same run, not run again)."""
    data = run_with_baseline(unprofiled(scenario()))
    assert data["overhead"]["vs_unprofiled"] == 0.0
    assert "no guest tool runs" in headline("emulated", data)


def test_bare_metal_runs_the_same_guest_without_a_hypervisor() -> None:
    """On bare metal, the profiled guest finishes no later than in the VM under emulated,
    and profiling costs it something there too; the runs are cached per scenario."""
    sc = scenario()
    runs = BareMetalRuns()
    bare, bare_plain = runs(sc), runs(sc, profiled_run=False)
    assert runs(sc) is bare
    assert bare == bare_metal_ps(sc) and bare_plain == bare_metal_ps(unprofiled(sc))
    data = run_with_baseline(sc)
    assert data["overhead"]["vs_bare_metal"] == relative(
        round(data["overhead"]["baseline"]["guest_end_ms"] * 1e9), bare[0])
    assert bare[0] > bare_plain[0]
    assert data["overhead"]["vs_bare_metal"] > 0


def test_baselines_are_deterministic() -> None:
    """The same scenario and seed give the same baselines."""
    a, b = run_with_baseline(scenario()), run_with_baseline(scenario())
    assert a["overhead"] == b["overhead"] and a["vms"] == b["vms"]


def test_no_baseline_leaves_the_keys_null() -> None:
    """Without baselines the keys are there, null, and the headline says so."""
    data = results(run(build(scenario())))
    ov = data["overhead"]
    assert ov["vs_unprofiled"] is None and ov["vs_bare_metal"] is None
    assert ov["baseline"]["unprofiled_guest_end_ms"] is None
    assert "not measured (--no-baseline)" in headline("emulated", data)


TWO_VMS = PROFILED + """
[[vm]]
name = "quiet"
vcpus = 1
design = "none"
[[vm.guest]]
workload = "compute"
"""


def test_each_vm_is_described_under_vms() -> None:
    """Two VMs: each has its design, options, exits and PMIs; the exits add up to the run's."""
    sc = scenario(TWO_VMS, "host.cpus=3", "host_task[1].cpu=2")
    data = run_with_baseline(sc)
    vms = data["vms"]
    assert [v["name"] for v in vms] == ["vm0", "quiet"]
    assert [v["design"] for v in vms] == ["emulated", "none"]
    assert vms[1]["design_options"] == {} and vms[0]["design_options"]["is_paused"] is True
    assert sum(v["vm_exits"]["total"] for v in vms) == data["vm_exits"]["total"]
    assert sum(v["guest_pmi"]["count"] for v in vms) == data["guest_pmi"]["count"]
    assert vms[0]["guest_pmi"]["count"] > 0 and vms[1]["guest_pmi"]["count"] == 0
    assert vms[1]["overhead"]["vs_unprofiled"] is not None
    assert [v["vcpus"] for v in vms] == [2, 1]
    assert all(v["event_filter"] == {"installed": False, "enforced": False} for v in vms)
    assert vms[0]["guest_perf"]["max_sample_rate"] is not None  # perf record ran
    assert vms[1]["guest_perf"] == {"throttles": 0, "rate_lowerings": 0, "max_sample_rate": None}


@pytest.mark.parametrize("design", ["mediated", "none"])
def test_headline_names_the_costs_in_plain_words(design: str) -> None:
    """The headline states the guest's cost, the host's blind share and the leaks."""
    text = headline(design, run_with_baseline(scenario(), design))
    assert text.startswith(f"{design}: profiling costs the guest ")
    assert "host perf was blind" in text and text.endswith("0 leaks.")
    # with no vPMU the guest's perf opens nothing: its cost is that of measuring nothing
    assert ("its perf counted nothing" in text) == (design == "none")
