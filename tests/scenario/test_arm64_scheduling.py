"""Scheduler realism on a big.LITTLE host (rk3399: CPUs 0-3 Cortex-A53, 4-5 Cortex-A72): the
same 4-vCPU guest `perf stat` under host load, with free vCPU threads
(examples/arm64-big-little.toml), pinned to the A53s (arm64-pinned.toml) and pinned to the
A53s with the A72's PMU set (arm64-wrong-cluster.toml). The examples run as shipped (about
0.1 s each with the idle fast-forward)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vpmu.machine.arm64.run import KVM_EXIT_FAIL_ENTRY, FailEntryExit
from vpmu.report.results import dumps, results
from vpmu.scenario import load_scenario
from vpmu.scenario.run import RunOutcome, build, run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VCPUS = [f"vm0/vcpu{i}" for i in range(4)]
A53, A72 = "armv8_cortex_a53", "armv8_cortex_a72"


def run_example(name: str, *overrides: str) -> RunOutcome:
    return run(build(load_scenario(EXAMPLES / f"{name}.toml", overrides=overrides)))


def arm64_block(outcome: RunOutcome) -> dict[str, Any]:
    block: dict[str, Any] = results(outcome)["arm64"]
    return block


def cross_cluster(migrations: dict[str, int]) -> int:
    """Moves between two different clusters ("0->1", "1->0"; not "0->0")."""
    return sum(n for pair, n in migrations.items() if len(set(pair.split("->"))) == 2)


def test_free_vcpus_migrate_to_the_big_cluster_and_lose_coverage() -> None:
    """Free affinity: the vCPUs waiting behind the load are balanced to the idle A72s, where
    the VM's A53 PMU does not count; the others stay covered."""
    block = arm64_block(run_example("arm64-big-little"))
    assert cross_cluster(block["migrations"]) > 0
    assert 0 < block["coverage"] < 1
    assert block["fail_entry"] == 0
    for v in VCPUS:
        per = block["vcpus"][v]
        assert per["pmu"] == A53 and per["guest_ns"] > 0
        # exactly the vCPUs that moved to the other cluster lost coverage
        assert (cross_cluster(per["migrations"]) > 0) == (per["coverage"] < 1)


def test_pinned_vcpus_never_leave_the_little_cluster_and_count_all_their_time() -> None:
    """Pinned to the A53s under the same load: no migration, every guest nanosecond
    counted, and the guest's perf stat within half a percent of the workload's truth."""
    outcome = run_example("arm64-pinned")
    data = results(outcome)
    block = data["arm64"]
    assert cross_cluster(block["migrations"]) == 0
    assert block["coverage"] == 1.0 and block["counted_ns"] == block["guest_ns"] > 0
    for v in VCPUS:
        per = block["vcpus"][v]
        assert per["pmu"] == A53
        assert cross_cluster(per["migrations"]) == 0 and per["coverage"] == 1.0
        assert per["fail_entry"] == 0 and per["cycle_counter"]["discontinuities"] == 0
    assert len(data["accuracy"]["events"]) == 4 * 3
    assert data["accuracy"]["worst_abs_error"] < 0.005
    # the vCPUs sharing CPUs 0 and 1 with the load took longer than the free ones did
    assert data["sim"]["end_ms"] > results(run_example("arm64-big-little"))["sim"]["end_ms"]


def test_a_pmu_of_the_other_cluster_fails_every_entry() -> None:
    """SET_PMU to the A72's PMU with the threads pinned to A53s: each vCPU's KVM_RUN returns
    FAIL_ENTRY (CPU_UNSUPPORTED) on its A53, the VMM stops it, no guest time is counted."""
    outcome = run_example("arm64-wrong-cluster")
    data = results(outcome)
    block = data["arm64"]
    assert block["fail_entry"] == len(VCPUS)
    assert block["guest_ns"] == block["counted_ns"] == 0 and block["coverage"] is None
    for i, v in enumerate(VCPUS):
        per = block["vcpus"][v]
        assert per["pmu"] == A72 and per["fail_entry"] >= 1
        assert per["guest_ns"] == per["counted_ns"] == 0 and per["migrations"] == {}
        result = outcome.guest_results()[v]
        assert isinstance(result, FailEntryExit)
        assert result.exit_reason == KVM_EXIT_FAIL_ENTRY and result.cpu == i
    assert data["accuracy"]["events"] == [] and data["overhead"]["guest_ns"] == 0


def test_pinning_to_the_pmus_cluster_runs_the_same_vm() -> None:
    """The wrong-cluster VM pinned to the A72s instead (its comment's fix): no failed entry,
    coverage 1.0."""
    block = arm64_block(run_example("arm64-wrong-cluster", "vm[0].pin=[4, 5, 4, 5]"))
    assert block["fail_entry"] == 0 and block["coverage"] == 1.0
    assert all(block["vcpus"][v]["pmu"] == A72 for v in VCPUS)


@pytest.mark.parametrize("name", ["arm64-big-little", "arm64-pinned", "arm64-wrong-cluster"])
def test_the_examples_are_deterministic(name: str) -> None:
    """Two runs of the same file give the same results JSON, byte for byte."""
    first, second = (dumps(results(run_example(name))) for _ in range(2))
    assert first == second and '"arm64": {' in first
