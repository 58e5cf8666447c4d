"""The mediated vPMU's effects, shown on the example scenarios (issue: seeds 000 and 003).

- examples/leak-rdpmc-reader.toml: ``clear_on_put=none`` leaks guest counter values to a host
  RDPMC task; ``upstream`` and ``all`` leak nothing; ``guest-used`` leaks no value of a
  counter the guest enabled (only the never-enabled counter its boot-time probe wrote).
- examples/blind-spot-vcpu-load.toml: ``vcpu-load`` + ``deferred`` leaves a host event blind
  for as long as the run lasts; ``ipi`` bounds the gap by the IPI and the switch.
- examples/seed-001.toml: ``mediated`` removes most PMI-handler exits and reports the cost
  per PMU switch instead.
"""

from pathlib import Path
from typing import Any

import pytest

from vpmu.report.results import results
from vpmu.scenario import load_scenario
from vpmu.scenario.run import run_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROBE_VALUE = 0xFFFF
"""check_hw_exists writes the probed counter's value XOR 0xffff and never enables it."""


def _run(name: str, design: str | None = None, *overrides: str) -> dict[str, Any]:
    sc = load_scenario(EXAMPLES / f"{name}.toml", overrides=overrides)
    return results(run_scenario(sc, design))


@pytest.fixture(scope="module")
def leak_runs() -> dict[str, dict[str, Any]]:
    """The leak example under each clear_on_put policy."""
    return {p: _run("leak-rdpmc-reader", f"mediated:clear_on_put={p}")
            for p in ("none", "upstream", "all", "guest-used")}


def test_clear_on_put_none_leaks_counted_guest_values(leak_runs: dict[str, Any]) -> None:
    """With nothing cleared the reader sees the guest's counts (not just the boot probe)."""
    leaks = leak_runs["none"]["leaks"]
    assert leaks["count"] > 0 and leaks["by_guest"] == {"vm0/vcpu0": leaks["count"]}
    counted = [o for o in leaks["observations"] if o["value"] != PROBE_VALUE]
    assert counted and all(o["observer"] == "host_task[0] rdpmc-reader" for o in counted)
    assert leak_runs["none"]["pollution"]["counting_ns"] > 0  # enabled guest selectors


@pytest.mark.parametrize("policy", ["upstream", "all"])
def test_upstream_and_all_leak_nothing(leak_runs: dict[str, Any], policy: str) -> None:
    """Zeroing the non-zero counters (or every one) leaves nothing for the reader."""
    assert leak_runs[policy]["leaks"]["count"] == 0
    assert leak_runs[policy]["pollution"]["host_ns"] == 0


def test_guest_used_leaks_only_the_never_enabled_probe(leak_runs: dict[str, Any]) -> None:
    """Option a clears every counter the guest enabled; what remains visible is the value
    the guest kernel's boot probe wrote into a counter it never enabled: KVM cannot see
    that write (counters pass through), which is this policy's weakness."""
    observations = leak_runs["guest-used"]["leaks"]["observations"]
    assert {o["value"] for o in observations} <= {PROBE_VALUE}


def _blind(data: dict[str, Any]) -> dict[str, Any]:
    events = data["host_profiling"]["events"]
    assert len(events) == 1
    event: dict[str, Any] = events[0]
    return event


@pytest.fixture(scope="module")
def blind_runs() -> dict[tuple[str, int], dict[str, Any]]:
    """The blind-spot example under deferred and ipi, at two run lengths."""
    runs = {}
    for pre in ("deferred", "ipi"):
        for ms in (12, 24):
            spec = f"mediated:switch_point=vcpu-load,host_preemption={pre}"
            runs[pre, ms] = _blind(_run("blind-spot-vcpu-load", spec, f"duration_ms={ms}"))
    return runs


def test_deferred_blind_spot_grows_with_the_run(blind_runs: dict[Any, Any]) -> None:
    """vcpu-load + deferred: the vCPU never leaves its pCPU, so the host event never counts;
    its one gap is (nearly) all host time since the open, and grows with the run."""
    short, long = blind_runs["deferred", 12], blind_runs["deferred", 24]
    for e in (short, long):
        assert e["blind_fraction"] > 0.95 and e["gaps"] == 1
    assert long["worst_gap_ns"] > 2 * short["worst_gap_ns"]  # 19 ms vs 7 ms after the open


def test_ipi_bounds_the_blind_spot(blind_runs: dict[Any, Any]) -> None:
    """With ipi the guest is switched out at once and every later exit puts: the worst gap
    stays a few microseconds whatever the run length."""
    short, long = blind_runs["ipi", 12], blind_runs["ipi", 24]
    assert long["worst_gap_ns"] < 10_000 and short["worst_gap_ns"] < 10_000
    assert long["blind_fraction"] < 0.5
    assert blind_runs["deferred", 24]["worst_gap_ns"] > 50 * long["worst_gap_ns"]


@pytest.fixture(scope="module")
def seed001() -> dict[str, dict[str, Any]]:
    """Seed 001 shortened to 40 ms, under both designs."""
    return {d: _run("seed-001", d, "duration_ms=40") for d in ("emulated", "mediated")}


def test_mediated_removes_most_pmi_handler_exits(seed001: dict[str, Any]) -> None:
    """Exits per guest PMI drop by more than 3x; the handler's GLOBAL_* and counter MSRs no
    longer exit at all, only its LVTPC write does (plus the 0xF5 IRQ exit)."""
    per_pmi = {d: r["vm_exits"]["total"] / r["guest_pmi"]["count"] for d, r in seed001.items()}
    assert per_pmi["mediated"] * 3 < per_pmi["emulated"]
    ratios = seed001["mediated"]["guest_pmi"]["per_pmi"]
    assert ratios["global_ctrl_writes"] == ratios["global_status_reads"] == 0
    assert ratios["ovf_ctrl_writes"] == ratios["rdpmc"] == ratios["counter_writes"] == 0
    assert ratios["lvt_pmi_writes"] == pytest.approx(1.0, abs=0.05)
    assert "EXCEPTION_NMI" not in seed001["mediated"]["vm_exits"]["by_reason"]


def test_mediated_reports_the_cost_per_switch(seed001: dict[str, Any]) -> None:
    """What it costs instead: a load and a put per full exit, priced per switch."""
    sw = seed001["mediated"]["overhead"]["pmu_switch"]
    exits = seed001["mediated"]["vm_exits"]
    assert sw["loads"] == sw["puts"] >= exits["total"] - exits["fastpath"]
    assert 500 < sw["per_switch_ns"] < 2000
    assert seed001["emulated"]["overhead"]["pmu_switch"]["switches"] == 0
    assert seed001["mediated"]["perf_calls"]["total"] == 0


def test_the_nmi_watchdog_refuses_a_mediated_vm_by_name() -> None:
    """Admission control: the watchdog counts the guest, so creating the mediated PMU fails
    with EBUSY and the error names the VM (a clear refusal, not a fallback)."""
    sc = load_scenario(EXAMPLES / "blind-spot-vcpu-load.toml",
                       overrides=["host.nmi_watchdog=true"])
    with pytest.raises(ValueError, match=r"vm\[0\].*EBUSY"):
        run_scenario(sc)


def test_a_host_event_counting_the_guest_is_refused_and_the_run_goes_on() -> None:
    """With a mediated VM, `perf record` without exclude_guest fails with EOPNOTSUPP; the
    refusal is reported and the guest still runs to the end."""
    data = _run("blind-spot-vcpu-load", None, "host_task[0].exclude_guest=false")
    refused = data["host_profiling"]["refused"]
    assert [(r["cpu"], r["errno"]) for r in refused] == [(0, "EOPNOTSUPP")]
    assert data["host_profiling"]["events"] == []
    assert data["guest_pmi"]["count"] > 0
