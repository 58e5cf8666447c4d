"""The lazily filled branch record stack (``vpmu.hw.branches``) against a reference that
walks every branch as it retires: same records, same top, wherever the syncs fall."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpmu.arch import events as ev
from vpmu.hw.branches import MAX_CYCLES, BranchFilter, BranchRecorder
from vpmu.hw.counting import RING_KERNEL, RING_USER, Segment, count_at
from vpmu.workloads.branches import (
    KERNEL_CODE_BASE,
    USER_CODE_BASE,
    Branch,
    BranchKind,
    BranchPattern,
)
from vpmu.workloads.streams import Stream

DURATION = 1_000_000


class _Env:
    now_ps = 0


class _Pmu:
    """What a recorder reads of its PMU: the clock, the current segment, guest mode."""

    def __init__(self, segment: Segment) -> None:
        self.env = _Env()
        self.segment: Segment | None = segment
        self.guest = False


@st.composite
def patterns(draw: st.DrawFn) -> BranchPattern:
    """A balanced cycle: random kinds, every call closed by a later return."""
    kinds = [k for k in BranchKind if k is not BranchKind.NEAR_RET]
    out: list[Branch] = []
    open_calls = 0
    for i in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(kinds + [BranchKind.NEAR_RET] * bool(open_calls)))
        open_calls += kind.is_call - (kind is BranchKind.NEAR_RET)
        out.append(Branch(kind, 0x10 * i + 1, 0x10 * i + 0x800, draw(st.booleans())))
    out += [Branch(BranchKind.NEAR_RET, 0x1000 + j, 0x2000 + j) for j in range(open_calls)]
    return BranchPattern(f"p{len(out)}-{draw(st.integers(0, 3))}", tuple(out))


CALL_STACK = BranchFilter(frozenset({BranchKind.NEAR_REL_CALL, BranchKind.NEAR_IND_CALL,
                                     BranchKind.NEAR_RET}), call_stack=True)
"""What perf programs for ``--call-graph lbr`` (calls and returns, call-stack mode)."""
filters = st.one_of(
    st.just(CALL_STACK),
    st.builds(BranchFilter, st.frozensets(st.sampled_from(list(BranchKind))),
              st.frozensets(st.sampled_from([RING_KERNEL, RING_USER])), st.booleans()))


def prefill(rec: BranchRecorder, tos: int) -> None:
    """Old records in every slot (as earlier recording or software's writes leave them)."""
    for slot in range(rec.depth):
        rec._put(slot, 0xA000 + slot, 0xB000 + slot, slot % 2 == 0, slot)
    rec.tos = tos % rec.depth


def reference(rec: BranchRecorder, seg: Segment, tos: int) -> BranchRecorder:
    """The stack after the whole segment, walked branch by branch from ``prefill``."""
    stream, flt = seg.stream, rec.filter
    total = stream.get(ev.BRANCHES)
    per_branch = max(stream.cycles // total, 1)
    pat, frac = stream.pattern, stream.user_fraction

    def user(g: int) -> bool:
        if frac is None:
            return seg.cpl != RING_KERNEL
        return (g + 1) * frac // 1 > g * frac // 1

    def kept(g: int) -> bool:
        return pat.branches[g % len(pat)].kind in flt.kinds and \
            (RING_USER if user(g) else RING_KERNEL) in flt.rings

    ref = BranchRecorder(rec.depth, _Pmu(seg))  # type: ignore[arg-type]
    prefill(ref, tos)
    for g in range(stream.branch_offset, stream.branch_offset + total):
        if not kept(g):
            continue
        b = pat.branches[g % len(pat)]
        if flt.call_stack and b.kind is BranchKind.NEAR_RET:
            ref._put(ref.tos, 0, 0, False, 0)
            ref.tos = (ref.tos - 1) % ref.depth
            continue
        prev = next(p for p in range(g - 1, g - 10_000, -1) if kept(p))
        base = (USER_CODE_BASE if user(g) else KERNEL_CODE_BASE) + pat.code_offset
        ref.tos = (ref.tos + 1) % ref.depth
        ref._put(ref.tos, base + b.src, base + b.dst, b.mispredicted,
                 min((g - prev) * per_branch, MAX_CYCLES))
    return ref


def state(rec: BranchRecorder) -> tuple[object, ...]:
    return rec.tos, rec.src, rec.dst, rec.mispredicted, rec.cycles


@settings(max_examples=300, deadline=None)
@given(pattern=patterns(), flt=filters, depth=st.sampled_from([4, 8, 32]),
       branches=st.integers(1, 3000), offset=st.integers(0, 50),
       frac=st.sampled_from([None, Fraction(1), Fraction(0), Fraction(2, 5)]),
       cpl=st.sampled_from([0, 3]), syncs=st.lists(st.integers(0, DURATION), max_size=6),
       tos=st.integers(0, 31))
def test_lazy_recording_equals_walking_every_branch(
        pattern: BranchPattern, flt: BranchFilter, depth: int, branches: int, offset: int,
        frac: Fraction | None, cpl: int, syncs: list[int], tos: int) -> None:
    stream = Stream("s", {ev.CYCLES: 3 * branches, ev.BRANCHES: branches}, frac, pattern,
                    offset)
    seg = Segment(stream, 0, DURATION, cpl, 1)
    pmu = _Pmu(seg)
    rec = BranchRecorder(depth, pmu)  # type: ignore[arg-type]
    rec.enabled, rec.filter = True, flt
    prefill(rec, tos)
    for t in [*sorted(syncs), DURATION]:
        pmu.env.now_ps = t
        rec.sync()
    assert state(rec) == state(reference(rec, seg, tos))


def test_a_disabled_stretch_records_nothing_and_the_rest_continues() -> None:
    """Recording off for the middle third: the stack holds the last branches before it and
    after it, as if the middle had not run."""
    stream = Stream("s", {ev.CYCLES: 300, ev.BRANCHES: 90}, None,
                    BranchPattern("n", tuple(Branch(BranchKind.JCC, i, i + 1)
                                             for i in range(90))))
    seg = Segment(stream, 0, 90, 0, 1)
    pmu = _Pmu(seg)
    rec = BranchRecorder(64, pmu)  # type: ignore[arg-type]
    rec.enabled = True
    for t, on in ((30, False), (60, True), (90, True)):
        pmu.env.now_ps = t
        rec.sync()
        rec.enabled = on
    srcs = [rec.src[(rec.tos - k) % 64] - KERNEL_CODE_BASE - stream.pattern.code_offset
            for k in range(60)]
    assert rec.pushed == 60
    assert srcs == list(range(89, 59, -1)) + list(range(29, -1, -1))
    assert count_at(90, 90, 30) == 30


def test_call_stack_mode_holds_the_call_chain() -> None:
    """Calls push, returns pop and clear: after call, call, ret the stack holds the first
    call only (SDM 18.9); suppressed conditional branches leave no trace."""
    k = BranchKind
    pattern = BranchPattern("chain", (Branch(k.NEAR_REL_CALL, 1, 100), Branch(k.JCC, 101, 120),
                                      Branch(k.NEAR_REL_CALL, 121, 200),
                                      Branch(k.NEAR_RET, 201, 122), Branch(k.NEAR_RET, 130, 2)))
    stream = Stream("s", {ev.CYCLES: 50, ev.BRANCHES: 4}, None, pattern)
    seg = Segment(stream, 0, 4, 3, 1)
    pmu = _Pmu(seg)
    rec = BranchRecorder(8, pmu)  # type: ignore[arg-type]
    rec.enabled = True
    rec.filter = BranchFilter(frozenset({k.NEAR_REL_CALL, k.NEAR_RET}), call_stack=True)
    pmu.env.now_ps = 4
    rec.sync()
    base = USER_CODE_BASE + pattern.code_offset
    assert rec.tos == 1 and rec.src[1] == base + 1 and rec.src[2] == 0


def test_depth_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        BranchRecorder(24, _Pmu(None))  # type: ignore[arg-type]


def test_whole_call_stack_cycles_clear_the_old_records_they_touch() -> None:
    """Two cycles of nested calls and returns over old records: the slots the calls used are
    zero afterwards (each return clears its record), the others keep their old records.
    The recorder walks one whole cycle and skips the rest, which must not skip the first."""
    k = BranchKind
    pattern = BranchPattern("nest", (Branch(k.NEAR_REL_CALL, 1, 2), Branch(k.NEAR_REL_CALL, 3, 4),
                                     Branch(k.NEAR_RET, 5, 6), Branch(k.NEAR_RET, 7, 8)))
    stream = Stream("s", {ev.CYCLES: 30, ev.BRANCHES: 8}, None, pattern)
    seg = Segment(stream, 0, DURATION, 0, 1)
    pmu = _Pmu(seg)
    rec = BranchRecorder(4, pmu)  # type: ignore[arg-type]
    rec.enabled, rec.filter = True, CALL_STACK
    prefill(rec, 0)
    pmu.env.now_ps = DURATION
    rec.sync()
    assert state(rec) == state(reference(rec, seg, 0))
    assert rec.src == [0xA000, 0, 0, 0xA003] and rec.tos == 0
