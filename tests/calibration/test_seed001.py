"""Seed 001 calibration targets (docs/calibration.md), checked on the full example scenario.

ICX's KVM table has one value fitted to the is_paused=true latency (the VM-exit transition),
and host.perf_ctx_lock_cycles is derived from the is_paused saving, so the is_paused=false
latency and the ratio are fitted rows too; the per-PMI MSR ratios are predictions.
Tolerances are the issue's: 10% per latency, 0.05 on the ratio, 15% per MSR ratio. In the slow
tier (about 50 s).
"""

from pathlib import Path
from typing import Any

import pytest

from vpmu.report.results import results
from vpmu.scenario import load_scenario
from vpmu.scenario.run import build, run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed-001.toml"
SEED_PMIS = 7250
"""PMIs in seed 001's trace: one OVF_CTRL write per handler run."""
SEED_PER_PMI = {
    "global_ctrl_writes": 15822 / SEED_PMIS,
    "global_status_reads": 14558 / SEED_PMIS,
    "ovf_ctrl_writes": 7250 / SEED_PMIS,
    "lvt_pmi_writes": 7315 / SEED_PMIS,
    "counter_writes": (2922 + 2912 + 2904 + 976) / SEED_PMIS,
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, Any]]:
    """The example under both is_paused settings (about 50 s together)."""
    sc = load_scenario(EXAMPLE)
    return {spec: results(run(build(sc, spec)))
            for spec in ("emulated", "emulated:is_paused=false")}


def _latency(data: dict[str, Any]) -> float:
    mean: float = data["guest_pmi"]["handler_latency_ns"]["mean"]
    return mean


def test_pmi_latency_with_is_paused(runs: dict[str, dict[str, Any]]) -> None:
    """32,929.3 ns within 10% (the fitted target)."""
    assert _latency(runs["emulated"]) == pytest.approx(32_929.3, rel=0.10)


def test_pmi_latency_without_is_paused(runs: dict[str, dict[str, Any]]) -> None:
    """37,646.7 ns within 10% (fitted through host.perf_ctx_lock_cycles)."""
    assert _latency(runs["emulated:is_paused=false"]) == pytest.approx(37_646.7, rel=0.10)


def test_is_paused_speedup_ratio(runs: dict[str, dict[str, Any]]) -> None:
    """37,646.7 / 32,929.3 = 1.14, within 0.05 (follows from the two fitted rows)."""
    ratio = _latency(runs["emulated:is_paused=false"]) / _latency(runs["emulated"])
    assert ratio == pytest.approx(37_646.7 / 32_929.3, abs=0.05)


@pytest.mark.parametrize("name", sorted(SEED_PER_PMI))
def test_per_pmi_msr_ratios(runs: dict[str, dict[str, Any]], name: str) -> None:
    """Each per-PMI MSR access ratio within 15% of seed 001's histogram."""
    for data in runs.values():
        assert data["guest_pmi"]["per_pmi"][name] == pytest.approx(SEED_PER_PMI[name], rel=0.15)


def test_is_paused_removes_read_value_calls(runs: dict[str, dict[str, Any]]) -> None:
    """The mechanism behind the speedup: no read_value calls with is_paused, and fewer
    perf calls per PMI overall."""
    fast, slow = runs["emulated"], runs["emulated:is_paused=false"]
    assert "read_value" not in fast["perf_calls"]["by_api"]
    assert slow["perf_calls"]["by_api"]["read_value"] > 0
    per_pmi = [d["perf_calls"]["total"] / d["guest_pmi"]["count"] for d in (fast, slow)]
    assert per_pmi[0] < per_pmi[1]
