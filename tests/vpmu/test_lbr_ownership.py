"""Who keeps the LBR when host perf and a guest both want it (``lbr_ownership``,
``vpmu.host.perf.lbr``), run on examples/lbr-ownership.toml: a guest ``perf record -b`` and a
host ``perf record -b -a`` arriving 20 ms in, on one Skylake pCPU shared with a host task."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from vpmu.host.perf.lbr import OWNERSHIP_RULES, CpuLbr, guest_wins
from vpmu.metrics.lbr import LbrUse
from vpmu.report.results import results
from vpmu.scenario import load_scenario
from vpmu.scenario.run import build, run, run_scenario
from vpmu.trace import LbrOwner, LbrRead
from vpmu.trace.perfetto import chrome_trace
from vpmu.vpmu.designs.emulated.entry import ENTRY
from vpmu.vpmu.x86.lbr import GuestLbrEvent

EXAMPLE = Path(__file__).parents[2] / "examples" / "lbr-ownership.toml"


def lbr_run(rule: str, *overrides: str) -> dict[str, Any]:
    sc = load_scenario(EXAMPLE, overrides=overrides)
    return results(run_scenario(sc, f"emulated:lbr_ownership={rule}"))


@pytest.fixture(scope="module")
def first_come() -> dict[str, Any]:
    return lbr_run("first-come")


@pytest.fixture(scope="module")
def precedence() -> dict[str, Any]:
    return lbr_run("cpu-event-precedence")


def test_the_rules_are_the_designs_choices() -> None:
    assert ENTRY.choices["lbr_ownership"] == OWNERSHIP_RULES
    assert ENTRY.defaults["lbr_ownership"] == OWNERSHIP_RULES[0]


class _Host:
    def __init__(self, id_: int, cpu: int) -> None:
        self.id, self.cpu = id_, cpu


def test_rule_first_come_is_the_older_claim() -> None:
    host_events = [_Host(7, 0)]
    created = {7: 1000}
    older = GuestLbrEvent(999, "first-come", "vm/vcpu0")
    younger = GuestLbrEvent(1001, "first-come", "vm/vcpu0")
    assert guest_wins(older, host_events, created)  # type: ignore[arg-type]
    assert not guest_wins(younger, host_events, created)  # type: ignore[arg-type]


def test_rule_guest_precedence_always_lets_the_guest_win() -> None:
    claim = GuestLbrEvent(10**9, "guest-precedence", "vm/vcpu0")
    assert guest_wins(claim, [_Host(7, 0)], {7: 0})  # type: ignore[arg-type]


def test_rule_cpu_event_precedence_lets_only_cpu_events_win() -> None:
    claim = GuestLbrEvent(0, "cpu-event-precedence", "vm/vcpu0")
    assert not guest_wins(claim, [_Host(7, 0)], {7: 10})  # type: ignore[arg-type]
    assert guest_wins(claim, [_Host(8, -1)], {8: 10})  # type: ignore[arg-type]
    assert CpuLbr().holder == ""


def test_first_come_refuses_the_host_while_the_older_guest_event_runs(
        first_come: dict[str, Any]) -> None:
    lbr = first_come["lbr"]
    host = lbr["host"]
    assert host["refused"] == 1 and host["preempted"] >= 1
    assert host["samples_without_stack"] > 0
    assert lbr["guest_reclaimed"] == 0


def test_kvms_debugctl_read_at_vcpu_load_pollutes_a_guest_that_wins_later() -> None:
    """The host's LBR is on when the vCPU is loaded; the guest's perf starts 10 ms later and
    (guest-precedence) takes the LBR: perf turns the host's off, but KVM writes back the
    DEBUGCTL it read at vcpu load after every VM-exit, so host branches go into the guest's
    stack until the next load. Without that window (the example as it is) nothing pollutes."""
    late = lbr_run("guest-precedence", "host_task[1].start_ms=0", "vm[0].guest[0].start_ms=10")
    guest = late["lbr"]["guests"]["guest/vcpu0"]
    assert guest["availability"] == 1.0 and 0 < guest["polluted"] < guest["records"] // 10
    on_time = lbr_run("guest-precedence")["lbr"]["guests"]["guest/vcpu0"]
    assert on_time["polluted"] == 0


def test_a_re_created_guest_event_is_younger_and_loses_under_first_come(
        first_come: dict[str, Any]) -> None:
    """The legacy freeze clears DEBUGCTL.LBR at a virtual PMI; descheduled before it re-enables
    it, the guest has its event released at the next sched-in; the new event is younger than
    the host's and is refused: after that the guest's branches go to the host."""
    lbr = first_come["lbr"]
    assert lbr["guest_refused"] >= 1
    guest = lbr["guests"]["guest/vcpu0"]
    assert 0 < guest["availability"] < 1 and guest["lost"] > 0
    assert first_come["leaks"]["by_guest"]["guest/vcpu0"] > 0


def test_cpu_event_precedence_reclaims_the_lbr_and_leaks_guest_branches(
        precedence: dict[str, Any], first_come: dict[str, Any]) -> None:
    lbr = precedence["lbr"]
    assert lbr["guest_reclaimed"] == 1
    assert lbr["host"]["refused"] == 0 and lbr["host"]["samples_without_stack"] == 0
    guest = lbr["guests"]["guest/vcpu0"]
    assert guest["polluted"] == 0
    assert guest["availability"] < first_come["lbr"]["guests"]["guest/vcpu0"]["availability"]
    seen = lbr["host"]["guest_records_seen"]
    leaks = precedence["leaks"]
    assert seen > 0 and leaks["count"] > 0
    assert {o["path"] for o in leaks["observations"]} == {"lbr"}
    assert all(0 < o["value"] <= 32 and o["counter"] is None for o in leaks["observations"])


def test_guest_precedence_keeps_the_guest_whole_and_blinds_the_host() -> None:
    """Upstream's behaviour: the guest's event never loses on its CPU; the host's samples
    there carry no stack."""
    data = lbr_run("guest-precedence")
    lbr = data["lbr"]
    guest = lbr["guests"]["guest/vcpu0"]
    assert guest["availability"] == 1.0 and guest["lost"] == 0 and guest["polluted"] == 0
    assert lbr["guest_refused"] == lbr["guest_reclaimed"] == 0
    assert lbr["host"]["samples_without_stack"] > 0 and data["leaks"]["count"] == 0


def test_a_host_event_opened_first_refuses_the_guest_under_first_come() -> None:
    data = lbr_run("first-come", "host_task[1].start_ms=0")
    lbr = data["lbr"]
    assert lbr["guest_refused"] >= 1 and lbr["host"]["refused"] == 0
    assert lbr["guests"]["guest/vcpu0"]["availability"] == 0


def test_without_a_host_lbr_user_the_guest_keeps_its_lbr() -> None:
    data = lbr_run("cpu-event-precedence", "host_task[1].branch_stack='none'")
    lbr = data["lbr"]
    guest = lbr["guests"]["guest/vcpu0"]
    assert guest["availability"] == 1.0 and guest["lost"] == 0 and guest["polluted"] == 0
    assert lbr["host"] == {"samples": 0, "samples_without_stack": 0, "guest_records_seen": 0,
                           "refused": 0, "preempted": 0}
    assert data["leaks"]["count"] == 0


def test_the_lbr_records_show_in_the_perfetto_export() -> None:
    sc = load_scenario(EXAMPLE, overrides=["duration_ms=25"])
    outcome = run(build(sc, "emulated:lbr_ownership=cpu-event-precedence", keep_trace=True))
    trace = chrome_trace(outcome.records, end_ps=outcome.end_ps)
    names = Counter(e["name"] for e in trace["traceEvents"] if e.get("cat") == "lbr")
    assert names["LBR guest-reclaimed"] == 1 and names["LBR save"] > 0
    assert names["lbr read LEAK"] > 0
    assert trace["metadata"]["skipped"] == {}


def test_lbr_use_folds_stretches_by_who_held_the_lbr() -> None:
    use = LbrUse()
    g = "vm/vcpu0"
    use.owner(LbrOwner(10, 0, "guest-in", "", "guest", g, 0, 0, 0))
    use.owner(LbrOwner(20, 0, "guest-reclaimed", "guest", "host", g, 30, 300, 7))
    use.owner(LbrOwner(40, 0, "end", "host", "host", g, 10, 100, 50))
    use.read(LbrRead(41, 0, 5, 32, 32, g))
    use.read(LbrRead(42, 0, 5, -1, 0, g))
    section = use.section()
    assert section["guests"][g] == {"recording_ns": 0.0, "availability": 0.75, "records": 400,
                                    "lost": 100, "polluted": 7}
    assert section["host"] == {"samples": 2, "samples_without_stack": 1,
                               "guest_records_seen": 32, "refused": 0, "preempted": 0}
    assert section["guest_reclaimed"] == 1 and section["guest_refused"] == 0
    assert LbrUse().used is False and use.used
