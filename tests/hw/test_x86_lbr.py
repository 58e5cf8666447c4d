"""Intel's legacy LBR on bare metal: enable, filter, call-stack mode, freeze on PMI, the
record formats and the presets without it (``vpmu.hw.x86.lbr``)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from vpmu.arch import events as ev
from vpmu.arch.faults import Fault
from vpmu.arch.presets import CpuPreset, get_preset
from vpmu.arch.x86 import msrs
from vpmu.guest import Execute, Rdmsr, SetCpl, Wrmsr
from vpmu.guest.port import Op
from vpmu.machine import BareMetal
from vpmu.workloads import PHASES, Stream, loop
from vpmu.workloads.branches import (
    CALL_LOOP,
    KERNEL_CODE_BASE,
    USER_CODE_BASE,
    Branch,
    BranchKind,
    BranchPattern,
)
from vpmu.workloads.streams import lbr_test_loop

Prog = Generator[Op, Any, Any]
DEPTH = 32
LBR = 1 << msrs.DEBUGCTL_LBR
FREEZE = 1 << msrs.DEBUGCTL_FREEZE_LBRS_ON_PMI
EN, OS, INT, INSTRUCTIONS = 1 << 22, 1 << 17, 1 << 20, 0xC0
SELECT = {"CPL_EQ_0": 0, "CPL_NEQ_0": 1, "JCC": 2, "NEAR_REL_CALL": 3, "NEAR_IND_CALL": 4,
          "NEAR_RET": 5, "NEAR_IND_JMP": 6, "NEAR_REL_JMP": 7, "FAR_BRANCH": 8,
          "EN_CALLSTACK": 9}
"""MSR_LBR_SELECT's bits (SDM Vol. 3B table 18-13), written out as the test's own oracle."""


def _run(program: Any, preset: str | CpuPreset = "intel-skl") -> Any:
    return BareMetal(preset).run(program)


def _stack() -> Generator[Op, Any, tuple[int, list[tuple[int, int, int]]]]:
    """TOS and every entry, newest first."""
    tos = yield Rdmsr(msrs.MSR_LBR_TOS)
    out = []
    for k in range(DEPTH):
        i = (tos - k) % DEPTH
        src = yield Rdmsr(msrs.MSR_LBR_NHM_FROM + i)
        dst = yield Rdmsr(msrs.MSR_LBR_NHM_TO + i)
        out.append((src, dst, (yield Rdmsr(msrs.MSR_LBR_INFO_0 + i))))
    return tos, out


def _offsets(entries: list[tuple[int, int, int]]) -> list[int]:
    """Each entry's FROM as an offset into CALL_LOOP's code (0 for an empty entry)."""
    base = KERNEL_CODE_BASE + CALL_LOOP.code_offset
    return [f - base if f else 0 for f, _, _ in entries]


def _record(select: int, stream: Stream, debugctl: int = LBR) -> Prog:
    yield Wrmsr(msrs.MSR_LBR_SELECT, select)
    yield Wrmsr(msrs.IA32_DEBUGCTL, debugctl)
    yield Execute(stream)
    yield Wrmsr(msrs.IA32_DEBUGCTL, 0)
    return (yield from _stack())


def test_records_the_newest_branches_in_order() -> None:
    """10 iterations of pmu_lbr.c's loop: 40 branches, TOS = 40 mod 32, the newest entry is
    the loop's back edge, then the return, the conditional, the call, cycling."""
    tos, entries = _run(lambda: _record(0, lbr_test_loop(10)))
    assert tos == 40 % DEPTH
    kinds = [b.src for b in CALL_LOOP.branches][::-1]
    assert _offsets(entries) == [kinds[k % 4] for k in range(DEPTH)]


def test_disabled_lbr_records_nothing() -> None:
    tos, entries = _run(lambda: _record(0, lbr_test_loop(10), debugctl=0))
    assert tos == 0 and all(e == (0, 0, 0) for e in entries)


def test_select_suppresses_conditional_branches() -> None:
    """JCC suppressed: only the call and the return of each iteration are recorded."""
    tos, entries = _run(lambda: _record(1 << SELECT["JCC"], lbr_test_loop(10)))
    assert tos == 20
    assert set(_offsets(entries[:20])) == {b.src for b in CALL_LOOP.branches
                                           if b.kind is not BranchKind.JCC}
    assert all(e == (0, 0, 0) for e in entries[20:])


def test_select_suppresses_a_ring() -> None:
    """CPL_NEQ_0 set: a user-mode loop leaves nothing; CPL_EQ_0 set: a kernel one neither."""
    def program() -> Prog:
        yield Wrmsr(msrs.MSR_LBR_SELECT, 1 << SELECT["CPL_NEQ_0"])
        yield Wrmsr(msrs.IA32_DEBUGCTL, LBR)
        yield SetCpl(3)
        yield Execute(loop(100))
        yield SetCpl(0)
        user_tos = yield Rdmsr(msrs.MSR_LBR_TOS)
        yield Wrmsr(msrs.MSR_LBR_SELECT, 1 << SELECT["CPL_EQ_0"])
        yield Execute(loop(100))
        return user_tos, (yield Rdmsr(msrs.MSR_LBR_TOS))
    assert _run(program) == (0, 0)


def test_call_stack_mode_pops_returns() -> None:
    """perf's call-stack setting (only calls and returns, EN_CALLSTACK): every call of the
    loop returns, so the stack ends where it began and the entries the calls used are clear."""
    keep_calls = sum(1 << SELECT[n] for n in ("JCC", "NEAR_IND_JMP", "NEAR_REL_JMP",
                                              "FAR_BRANCH"))
    tos, entries = _run(lambda: _record(keep_calls | 1 << SELECT["EN_CALLSTACK"],
                                        lbr_test_loop(1000)))
    assert tos == 0 and all(e == (0, 0, 0) for e in entries)


@pytest.mark.parametrize("version", [2, 4])
def test_freeze_lbrs_on_pmi(version: int) -> None:
    """FREEZE_LBRS_ON_PMI: at the PMI the stack stops (v2/v3 clear DEBUGCTL.LBR, v4 sets
    GLOBAL_STATUS.LBR_FRZ), so a later loop leaves no trace; v4 resumes once LBR_FRZ is reset."""
    preset = get_preset("intel-skl").with_caps(version=version)

    def program() -> Prog:
        yield Wrmsr(msrs.X2APIC_LVTPC, 32)
        yield Wrmsr(msrs.IA32_DEBUGCTL, LBR | FREEZE)
        yield Wrmsr(msrs.IA32_PMC0, 0xFFFF_FFFF - 99)
        yield Wrmsr(msrs.IA32_PERFEVTSEL0, EN | OS | INT | INSTRUCTIONS)
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 1)
        yield Execute(loop(1000))
        frozen = yield Rdmsr(msrs.MSR_LBR_TOS)
        yield Execute(loop(50))
        after = yield Rdmsr(msrs.MSR_LBR_TOS)
        debugctl = yield Rdmsr(msrs.IA32_DEBUGCTL)
        status = yield Rdmsr(msrs.IA32_PERF_GLOBAL_STATUS)
        return frozen, after, debugctl, status
    frozen, after, debugctl, status = _run(program, preset)
    # GLOBAL_CTRL resets enabled, so the WRMSR enabling it counts: 99 of the loop's
    # instructions to the wrap, at 10 per branch 9 branches recorded
    assert frozen == after == 9
    if version == 2:
        assert debugctl == FREEZE and not status >> msrs.STATUS_LBR_FRZ & 1
    else:
        assert debugctl == LBR | FREEZE and status >> msrs.STATUS_LBR_FRZ & 1


def test_format_5_reads_back_what_software_writes() -> None:
    """A restore's writes: FROM, TO, INFO (MISPRED, IN_TSX, TSX_ABORT, cycles) and TOS."""
    info = 1 << 63 | 1 << 62 | 1 << 61 | 0x1234

    def program() -> Prog:
        yield Wrmsr(msrs.MSR_LBR_NHM_FROM + 5, 0xFFFF_FFFF_8100_1234)
        yield Wrmsr(msrs.MSR_LBR_NHM_TO + 5, 0x5555_5555_0010)
        yield Wrmsr(msrs.MSR_LBR_INFO_0 + 5, info)
        yield Wrmsr(msrs.MSR_LBR_TOS, 5)
        return (yield from _stack())
    tos, entries = _run(program)
    assert tos == 5 and entries[0] == (0xFFFF_FFFF_8100_1234, 0x5555_5555_0010, info)


def test_format_5_info_holds_the_mispredict_and_the_cycles() -> None:
    """LBR_INFO.MISPRED follows the branch; CYC_CNT is the cycles since the previous record
    (here 2 branches in 6 cycles: 3 each). A phase's branches carry user addresses."""
    pattern = BranchPattern("m", (Branch(BranchKind.JCC, 1, 2, True),
                                  Branch(BranchKind.JCC, 3, 4)))
    stream = Stream("s", {ev.CYCLES: 300, ev.BRANCHES: 100, ev.INSTRUCTIONS: 100}, None,
                    pattern)
    _, entries = _run(lambda: _record(0, stream))
    assert [i >> 63 for _, _, i in entries] == [0, 1] * (DEPTH // 2)
    assert {i & 0xFFFF for _, _, i in entries} == {3}
    _, phase = _run(lambda: _record(0, PHASES["br_instr"].stream(instructions=300_000)))
    assert all(USER_CODE_BASE <= f < KERNEL_CODE_BASE for f, _, _ in phase)


@pytest.mark.parametrize("preset", ["intel-spr", "amd-zen4"])
def test_presets_without_legacy_lbr_fault(preset: str) -> None:
    def program() -> Prog:
        return (yield Rdmsr(msrs.MSR_LBR_NHM_FROM)), (yield Wrmsr(msrs.MSR_LBR_SELECT, 0))
    assert _run(program, preset) == (Fault.GP, Fault.GP)
