"""Host perf's LBR users (``vpmu.host.perf.x86.lbr``, ``vpmu.host.perf.lbr``): the filter
perf programs, the enable, the reset at a task switch, the read at each sample, and the
refusal on a PMU without a legacy LBR."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from vpmu.arch.x86 import msrs
from vpmu.host.machine import Host
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.guest import PerfOpenError
from vpmu.host.task import Run, Task
from vpmu.host.tools import PerfRecord
from vpmu.linux.lbr import freezes_on_pmi, lbr_select
from vpmu.sim import ms
from vpmu.trace import LbrContext, LbrOwner, LbrRead
from vpmu.uapi.perf_event import PERF_RECORD_BRANCH_STACKS, branch_types
from vpmu.workloads import get_phase

LSB = msrs.LBR_SELECT_LSB


def select_of(option: str, *, exclude_user: bool = False, exclude_kernel: bool = False) -> int:
    types = branch_types(PERF_RECORD_BRANCH_STACKS[option], exclude_user=exclude_user,
                         exclude_kernel=exclude_kernel)
    return lbr_select(types, LSB)


def test_perf_record_b_captures_every_class_in_the_events_rings() -> None:
    """-b: no class suppressed; the rings are the event's (a :u event suppresses CPL 0)."""
    assert select_of("any") == 0
    assert select_of("any", exclude_kernel=True) == 1 << LSB["CPL_EQ_0"]
    assert freezes_on_pmi(branch_types(PERF_RECORD_BRANCH_STACKS["any"], exclude_user=False,
                                       exclude_kernel=False))


def test_call_graph_lbr_is_user_call_stack_mode_without_freeze() -> None:
    """--call-graph lbr: calls and returns at CPL > 0, EN_CALLSTACK; everything else
    suppressed (0x3c5), and no FREEZE_LBRS_ON_PMI (lbr.c: call stacks break with it)."""
    value = select_of("call-stack")
    suppressed = {n for n, b in LSB.items() if value >> b & 1}
    assert suppressed == {"CPL_EQ_0", "JCC", "NEAR_IND_JMP", "NEAR_REL_JMP", "FAR_BRANCH",
                          "EN_CALLSTACK"}
    assert value == 0x3C5
    assert not freezes_on_pmi(branch_types(PERF_RECORD_BRANCH_STACKS["call-stack"],
                                           exclude_user=False, exclude_kernel=False))


def busy(name: str, millis: int) -> Task:
    def program() -> Generator[Any, Any, None]:
        yield Run(get_phase("compute").stream_for_cycles(millis * 2_000_000))
    return Task(name, program, affinity=frozenset({0}))


def recording_host(preset: str = "intel-skl") -> tuple[Host, PerfRecord]:
    host = Host(preset, cpus=1)
    record = PerfRecord(PerfSubsystem(host), ["cycles"], freq=1000, cpus=[0],
                        branch_stack="any")
    return host, record


def test_perf_record_b_enables_the_lbr_and_reads_it_at_each_sample() -> None:
    host, record = recording_host()
    pmu = host.cpus[0].hw.x86_pmu  # type: ignore[attr-defined]
    assert pmu.regs["IA32_DEBUGCTL"] >> msrs.DEBUGCTL_LBR & 1
    assert pmu.regs["MSR_LBR_SELECT"] == 0
    host.spawn(busy("a", 10))
    host.run(ms(10))
    reads = [r for r in host.trace.records if isinstance(r, LbrRead)]
    assert len(reads) == record.samples()["cycles"] > 0
    # the first sample (frequency mode starts at period 1) finds the stack just wiped
    assert reads[0].records == 0 and reads[-1].records == 32
    assert all(0 <= r.records <= 32 and r.guest_records == 0 for r in reads)
    owners = [r for r in host.trace.records if isinstance(r, LbrOwner)]
    assert owners[0].why == "host-in" and owners[0].holder == "host"


def test_a_task_switch_wipes_the_lbr_for_a_cpu_event() -> None:
    """intel_pmu_lbr_sched_task: a task without an LBR context of its own comes in to a
    wiped stack, at the cost table's WRMSR price per register."""
    host, _ = recording_host()
    for name in ("a", "b"):
        host.spawn(busy(name, 5))
    host.run(ms(12))
    resets = [r for r in host.trace.records
              if isinstance(r, LbrContext) and r.op == "reset"]
    assert resets and all(r.why == "host-task-switch" for r in resets)
    assert all(r.msrs == 3 * 32 + 1 for r in resets)
    assert all(r.cycles == r.msrs * host.costs.instruction_cycles["lbr_wrmsr"] for r in resets)


@pytest.mark.parametrize("preset", ["intel-spr", "amd-zen4"])
def test_a_branch_stack_needs_a_legacy_lbr(preset: str) -> None:
    """No legacy LBR (architectural LBR is not modelled; AMD's LbrExtV2 neither): perf
    refuses the event with EOPNOTSUPP."""
    host = Host(preset, cpus=1)
    perf = PerfSubsystem(host)
    with pytest.raises(PerfOpenError) as err:
        PerfRecord(perf, ["cycles"], cpus=[0], branch_stack="any")
    assert err.value.errno_name == "EOPNOTSUPP"


def test_branch_stack_option_is_checked() -> None:
    host = Host("intel-skl", cpus=1)
    with pytest.raises(ValueError, match="branch_stack must be one of"):
        PerfRecord(PerfSubsystem(host), ["cycles"], cpus=[0], branch_stack="all")
