"""The replay result: keys, per-design predictions, and findings computed from them."""

from __future__ import annotations

from typing import Any

from vpmu.report.replay import REPLAY_KEYS, replay_results


def _pred(exits: int, pmis: int, latency: float) -> dict[str, Any]:
    return {"vm_exits": {"total": exits}, "msr_exits": {}, "perf_calls": {},
            "guest_pmi": {"count": pmis, "handler_latency_ns": {"mean": latency}},
            "overhead": {"slowdown": 0.5}, "host_profiling": None,
            "leaks": {"count": 3}, "pollution": None, "accuracy": "dropped"}


OBSERVED = {"pmu_activity": True, "vcpus": [
    {"vm": "vm0", "vcpu": 0, "pmis": 10, "pmi_rate_hz": 5000.0, "mode": "period",
     "exits_per_pmi": 11.5}]}


def test_findings_compare_designs_and_keep_a_failed_run() -> None:
    """Exits per PMI and the change against the first design; a leak; a run that did not
    finish is an error entry and a finding, not a lost replay."""
    data = replay_results(OBSERVED, {"name": "x"}, [
        ("emulated", _pred(1000, 100, 30_000.0)), ("mediated", _pred(250, 100, 7_000.0)),
        ("none", {"error": "did not finish within 20 x the reconstructed duration_ms"})])
    assert tuple(data) == REPLAY_KEYS
    assert data["predictions"][2] == {"design": "none", "error": data["predictions"][2]["error"]}
    assert "accuracy" not in data["predictions"][0]
    f = data["findings"]
    assert f[0] == "vm0 vCPU 0: 10 PMIs at 5,000/s (period), 11.5 exits per PMI observed"
    assert any(x.startswith("none: the replayed guest did not finish") for x in f)
    assert ("mediated: 250 exits, 100 PMIs, 2.50 exits per PMI, handler latency 7,000.0 ns, "
            "vCPU slowdown 0.5 (-75% exits vs emulated)") in f
    assert "emulated: 3 guest counter values seen by host code (leaks)" in f


def test_no_pmu_activity_is_one_finding() -> None:
    data = replay_results({"pmu_activity": False, "vcpus": []}, None, [])
    assert data["scenario"] is None and len(data["findings"]) == 1
    assert "no guest PMU activity" in data["findings"][0]
