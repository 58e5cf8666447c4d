"""The results' ``arm64`` block on rk3399 (CPUs 0-3 Cortex-A53, 4-5 A72) under ``emulated``:
coverage is the share of guest run time on the VM's host PMU's cluster; migrations by
cluster pair; null on x86."""

from __future__ import annotations

from typing import Any

from vpmu.report.results import results
from vpmu.scenario import parse_scenario
from vpmu.scenario.run import build, run

GUEST = """
[[vm.guest]]
vcpu = "all"
workload = "compute"
tool = "perf-stat"
events = ["cycles", "instructions"]
"""


def arm64_block(body: str, preset: str = "rk3399") -> dict[str, Any]:
    text = (f'name = "t"\nduration_ms = 20\n[host]\npreset = "{preset}"\ncpus = 6\n'
            f"{body}{GUEST}")
    block: dict[str, Any] = results(run(build(parse_scenario(text))))["arm64"]
    return block


def test_pinned_on_its_pmus_cluster_counts_all_the_time_and_on_the_other_never() -> None:
    """vCPU 0 pinned to an A53 is initialised first: the VM's PMU is the A53's; vCPU 1
    pinned to an A72 runs with its counters frozen."""
    block = arm64_block('[[vm]]\nvcpus = 2\npin = [0, 4]\ndesign = "emulated"\n')
    v0, v1 = block["vcpus"]["vm0/vcpu0"], block["vcpus"]["vm0/vcpu1"]
    assert v0["pmu"] == v1["pmu"] == "armv8_cortex_a53"
    assert v0["coverage"] == 1.0 and v0["guest_ns"] > 0
    assert v1["coverage"] == 0.0 and v1["guest_ns"] > 0 and v1["counted_ns"] == 0
    assert v0["migrations"] == v1["migrations"] == {} == block["migrations"]
    assert 0 < block["coverage"] < 1


def test_a_free_vcpu_pushed_to_the_big_cluster_by_load_counts_only_part_of_the_time() -> None:
    """A load pinned to the vCPU's A53 starts at 5 ms; balancing moves the waiting vCPU to
    an idle A72 (cluster 0 -> 1), where its A53 events do not count."""
    block = arm64_block('[[host_task]]\nkind = "load"\ncpu = 0\nstart_ms = 5\n'
                        '[[host_task]]\nkind = "load"\ncpu = 1\nstart_ms = 1\n'
                        '[[host_task]]\nkind = "load"\ncpu = 2\nstart_ms = 1\n'
                        '[[host_task]]\nkind = "load"\ncpu = 3\nstart_ms = 1\n'
                        '[[vm]]\nvcpus = 1\ndesign = "emulated"\n')
    v0 = block["vcpus"]["vm0/vcpu0"]
    assert v0["pmu"] == "armv8_cortex_a53"
    assert 0.1 < v0["coverage"] < 0.5
    assert v0["migrations"] == {"0->1": 1} == block["migrations"]
    assert v0["cycle_counter"]["discontinuities"] == 0
    assert v0["cycle_counter"]["samples"] >= 2


def test_the_example_figures() -> None:
    """examples/arm64-big-little.toml: vCPUs 0 and 1 are pushed to the A72s (coverage < 1),
    vCPUs 2 and 3 stay on A53s (1.0)."""
    from pathlib import Path
    text = (Path(__file__).parents[2] / "examples" / "arm64-big-little.toml").read_text()
    block = results(run(build(parse_scenario(text))))["arm64"]
    cov = [block["vcpus"][f"vm0/vcpu{i}"]["coverage"] for i in range(4)]
    assert cov[0] < 1 and cov[1] < 1 and cov[2] == cov[3] == 1.0
    assert block["migrations"] == {"0->1": 2}
    assert 0 < block["coverage"] < 1


def _example(design: str) -> dict[str, Any]:
    from pathlib import Path
    text = (Path(__file__).parents[2] / "examples" / "arm64-big-little.toml").read_text()
    block: dict[str, Any] = results(run(build(parse_scenario(text), design)))["arm64"]
    return block


def test_the_example_under_each_pmu_mode() -> None:
    """Seed 004's three modes on the same run: fixed-counters-only follows the migrated vCPUs
    to the A72s (every vCPU covered, the cycle counter continuous); an explicit A53 PMU makes
    the two migrated vCPUs fail entry on the A72s (FAIL_ENTRY, CPU_UNSUPPORTED) instead of
    freezing."""
    fixed = _example("emulated:pmu=fixed-counters-only")
    assert fixed["coverage"] == 1.0 and fixed["migrations"] == {"0->1": 2}
    assert fixed["cycle_counter"]["discontinuities"] == 0 and fixed["fail_entry"] == 0
    explicit = _example("emulated:pmu=armv8_cortex_a53")
    assert explicit["fail_entry"] == 2
    assert [explicit["vcpus"][f"vm0/vcpu{i}"]["fail_entry"] for i in range(4)] == [1, 1, 0, 0]


def test_the_block_is_null_on_x86() -> None:
    text = ('name = "t"\nduration_ms = 5\n[host]\npreset = "intel-icx"\ncpus = 2\n'
            '[[vm]]\nvcpus = 1\ndesign = "emulated"\n' + GUEST)
    assert results(run(build(parse_scenario(text))))["arm64"] is None
