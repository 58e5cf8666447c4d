"""Scenarios on a host preset (a machine whose clusters carry different PMUs): the host has
each cluster's CPUs, the perf tool opens one event per core PMU, and what a host preset
fixes (its CPU count, its PMUs' names) is checked with the place named."""

from __future__ import annotations

import pytest

from vpmu.host.tools import PerfStat
from vpmu.report.results import results
from vpmu.scenario import ScenarioError, parse_scenario
from vpmu.scenario.run import build, run

RK3399 = """
name = "rk3399"
duration_ms = 4
[host]
preset = "rk3399"
cpus = 6
[[host_task]]
kind = "load"
cpu = 0
[[host_task]]
kind = "load"
cpu = 4
[[host_task]]
kind = "perf-stat"
events = ["cycles", "armv8_cortex_a72/instructions/"]
"""


def test_a_host_preset_builds_its_clusters_and_perf_stat_counts_per_pmu() -> None:
    """cycles opens on each core PMU (armv8_cortex_a53 on CPUs 0-3, armv8_cortex_a72 on
    4-5); each load runs the whole 4 ms on its CPU, so each PMU counts its cluster's clock."""
    outcome = run(build(parse_scenario(RK3399)))
    host = outcome.host
    assert [sorted(c) for c in host.clusters] == [[0, 1, 2, 3], [4, 5]]
    assert [host.cpus[i].preset.name for i in (0, 4)] == ["arm-a53", "arm-a72"]
    (stat,) = [t for t in outcome.host_tools.values() if isinstance(t, PerfStat)]
    counts = {r.event: r.count for r in stat.rows()}
    assert list(counts) == ["armv8_cortex_a53/cycles/", "armv8_cortex_a72/cycles/",
                            "armv8_cortex_a72/instructions/"]
    # Each PMU counts every cycle of its one busy CPU (the load and the kernel's ticks alike)
    # for the 4 ms, at its own cluster's clock: 1,416 MHz on the A53, 1,800 on the A72.
    assert counts["armv8_cortex_a53/cycles/"] == 1416 * 4000
    assert counts["armv8_cortex_a72/cycles/"] == 1800 * 4000


def test_a_host_preset_fixes_the_cpu_count() -> None:
    """cpus must be the host preset's own count; the error names host.cpus."""
    with pytest.raises(ScenarioError, match=r"host\.cpus: expected 6, the CPUs of host preset "
                                            r"'rk3399', got 4"):
        parse_scenario(RK3399.replace("cpus = 6", "cpus = 4"))


def test_an_event_of_a_pmu_the_host_lacks_is_refused_at_its_place() -> None:
    """A pmu/event/ term must name one of the host's PMUs (perf: the PMU is not found)."""
    bad = RK3399.replace("armv8_cortex_a72/instructions/", "armv9_cortex_a720/instructions/")
    with pytest.raises(ScenarioError, match=r"host_task\[2\]\.events\[1\]: .*PMU must be one "
                                            r"of \['armv8_cortex_a53', 'armv8_cortex_a72'\]"):
        parse_scenario(bad)


ARM_VM = """
name = "arm-vm"
duration_ms = 10
[host]
preset = "arm-n1"
cpus = 2
[[vm]]
vcpus = 1
pin = [1]
design = "emulated"
[[vm.guest]]
workload = "compute"
tool = "perf-stat"
events = ["cycles", "instructions"]
"""


def test_a_guest_perf_stat_runs_in_an_emulated_vm_on_an_arm_host() -> None:
    """An Arm scenario's guest Linux probes its PMU with MRS (no x86 vendor is passed), every
    PMU register access of its perf stat exits SYS64, and its counts are the workload's
    within the guest's own kernel work."""
    outcome = run(build(parse_scenario(ARM_VM)))
    data = results(outcome)
    assert data["vm_exits"]["by_reason"]["SYS64"] > 0
    for event in data["accuracy"]["events"]:
        assert 0 <= event["count"] - event["truth"] < 0.002 * event["truth"], event
