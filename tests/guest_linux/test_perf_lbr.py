"""A guest's ``perf record -b`` / ``--call-graph lbr`` (``vpmu.guest.linux.lbr``): the LBR
accesses Linux adds to its PMU code, and what they cost under each design."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vpmu.arch.x86 import msrs
from vpmu.guest.linux.lbr import LBR_DEPTH, GuestLbr, legacy_lbr_format
from vpmu.guest.port import Rdmsr, Wrmsr
from vpmu.report.results import results
from vpmu.scenario import load_scenario
from vpmu.scenario.run import build, run

EXAMPLE = Path(__file__).parents[2] / "examples" / "lbr-ownership.toml"
NO_HOST_LBR = "host_task[1].branch_stack='none'"


def _run(design: str, *overrides: str) -> tuple[Any, dict[str, Any]]:
    sc = load_scenario(EXAMPLE, overrides=["duration_ms=30", NO_HOST_LBR, *overrides])
    outcome = run(build(sc, design))
    (result,) = outcome.guest_results()["guest/vcpu0"]
    return result, results(outcome)


def test_arch_lbr_format_is_no_legacy_lbr() -> None:
    assert legacy_lbr_format(0x3F) == 0 and legacy_lbr_format(0x3005) == 5


def ops(gen: Any, answers: dict[int, int]) -> list[Any]:
    """Drive a guest generator, answering each RDMSR from ``answers`` (0 otherwise)."""
    out, value = [], None
    try:
        while True:
            op = gen.send(value)
            out.append(op)
            value = answers.get(op.addr, 0) if isinstance(op, Rdmsr) else None
    except StopIteration:
        return out


def test_the_first_user_resets_then_enables_with_freeze_outside_call_stack() -> None:
    lbr = GuestLbr(5, version=2)
    lbr.add(("USER", "KERNEL", "ANY"))
    seq = ops(lbr.enable(pmi=False), {})
    writes = [op for op in seq if isinstance(op, Wrmsr)]
    assert len(writes) == 3 * LBR_DEPTH + 1 + 1 + 1  # reset, LBR_SELECT, DEBUGCTL
    assert writes[-2] == Wrmsr(msrs.MSR_LBR_SELECT, 0)
    freeze = 1 << msrs.DEBUGCTL_LBR | 1 << msrs.DEBUGCTL_FREEZE_LBRS_ON_PMI
    assert writes[-1] == Wrmsr(msrs.IA32_DEBUGCTL, freeze)
    # the end of a PMI: no reset again, no LBR_SELECT, the DEBUGCTL read-modify-write only
    again = ops(lbr.enable(pmi=True), {msrs.IA32_DEBUGCTL: 0})
    assert [type(op) for op in again] == [Rdmsr, Wrmsr]


def test_pmu_v4_leaves_the_pmi_re_enable_to_the_status_ack() -> None:
    lbr = GuestLbr(5, version=4)
    lbr.add(("USER", "CALL_STACK"))
    lbr.reset_pending = False
    assert ops(lbr.enable(pmi=True), {}) == []
    seq = ops(lbr.enable(pmi=False), {})
    assert seq[-1] == Wrmsr(msrs.IA32_DEBUGCTL, 1 << msrs.DEBUGCTL_LBR)  # no freeze


def test_a_read_walks_down_from_tos_until_an_empty_from() -> None:
    lbr = GuestLbr(5, version=2)
    lbr.add(("ANY",))
    tos = 3
    answers = {msrs.MSR_LBR_TOS: tos, **{msrs.MSR_LBR_NHM_FROM + i: 0x1000 + i
                                        for i in (3, 2, 1)}}
    seq = ops(lbr.read(), answers)
    froms = [op.addr - msrs.MSR_LBR_NHM_FROM for op in seq
             if isinstance(op, Rdmsr) and msrs.MSR_LBR_NHM_FROM <= op.addr
             < msrs.MSR_LBR_NHM_FROM + LBR_DEPTH]
    assert froms == [3, 2, 1, 0]
    assert lbr.reads == 1 and lbr.records == 3


def test_perf_record_b_in_the_guest_passes_the_lbr_through_after_the_first_access() -> None:
    """emulated: the reset's first WRMSR exits and creates the guest LBR event; the rest
    (reset, each PMI's stack read: 97 registers on Skylake) runs on the hardware, but for
    the first access after each lazy release, which exits and re-creates the event;
    DEBUGCTL's read and write exit."""
    _, data = _run("emulated")
    by_msr = data["msr_exits"]["by_msr"]
    pmis = data["guest_pmi"]["count"]
    assert pmis > 0
    assert by_msr["msr_write, MSR_0x680"] == 1
    assert by_msr["msr_read, MSR_IA32_DEBUGCTLMSR"] >= pmis
    lbr_exits = sum(n for k, n in by_msr.items() if "MSR_LBR_" in k or "MSR_0x6" in k)
    assert lbr_exits < pmis / 10
    guest = data["lbr"]["guests"]["guest/vcpu0"]
    assert guest["availability"] == 1.0 and guest["records"] > 0


def test_without_guest_lbr_the_branch_stack_event_is_not_supported() -> None:
    result, data = _run("emulated:lbr=false")
    (event,) = result.events
    assert not event.supported
    assert data["lbr"] is None


@pytest.mark.parametrize("design", ["mediated:lbr=true"])
def test_a_mediated_guest_with_lbr_records_its_branches(design: str) -> None:
    _, data = _run(design)
    guest = data["lbr"]["guests"]["guest/vcpu0"]
    assert guest["availability"] == 1.0 and guest["records"] > 0 and guest["polluted"] == 0
