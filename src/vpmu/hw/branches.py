"""A branch record stack filled lazily from the streams the CPU executes (an LBR's hardware).

The stack is a ring of ``depth`` records (source, target, mispredicted, cycles) and a top
(``tos``, the newest). While it records, every taken branch the CPU retires that the filter
keeps (its kind and its ring) is pushed; in call-stack mode a return pops the newest record
instead (and clears it), so the ring holds the call chain (SDM 18.4.8, 18.9 "LBR call stack").

Branches are not walked as they execute: ``sync`` is called before anything that changes what
would be recorded (the CPU's stream, privilege level, guest mode, the enable or the filter)
and before the stack is read or written, and it pushes what the stretch since the last sync
recorded. A stream's branches are a cycle (``vpmu.workloads.branches``), so the count a filter
keeps over a stretch comes from a per-cycle prefix table, and only the last ``depth`` kept
branches are materialised. In call-stack mode a whole cycle whose kept branches are balanced
calls and returns zeroes what it touches and then changes nothing, so at most one cycle is
walked between the stretch's ends. (A filter that keeps other kinds, or calls without their
returns, in call-stack mode is walked branch by branch: exact, slower.)
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from math import lcm
from typing import TYPE_CHECKING

from vpmu.arch import events as ev
from vpmu.hw.counting import RING_KERNEL, RING_USER, Segment, count_at
from vpmu.workloads.branches import KERNEL_CODE_BASE, USER_CODE_BASE, BranchKind, BranchPattern

if TYPE_CHECKING:
    from vpmu.hw.engine import CountingPmu

MAX_CYCLES = 0xFFFF
"""A record's elapsed-cycles field saturates here (LBR_INFO.CYC_CNT is 16 bits)."""


@dataclass(frozen=True, slots=True)
class BranchFilter:
    """Which taken branches are recorded: their kinds and rings; call-stack mode."""

    kinds: frozenset[BranchKind] = frozenset(BranchKind)
    rings: frozenset[int] = frozenset((RING_KERNEL, RING_USER))
    call_stack: bool = False


@dataclass(frozen=True, slots=True)
class _Table:
    """A pattern under a filter and a ring assignment, over one period of branch indices."""

    period: int
    prefix: tuple[int, ...]
    """prefix[i]: kept branches among the period's first i."""
    kept: tuple[bool, ...]
    user: tuple[bool, ...]
    """Each branch of the period runs at CPL > 0."""
    skippable: bool
    """Call-stack mode: the kept branches of a period are balanced calls and returns."""
    gap: tuple[int, ...]
    """Branches since the previous kept one (cyclically; the period if it is the only one):
    a record's elapsed cycles are this many branches' worth, wherever syncs fall."""

    def count(self, g0: int, g1: int) -> int:
        """Kept branches with global index in ``[g0, g1)``."""
        return self._upto(g1) - self._upto(g0)

    def _upto(self, g: int) -> int:
        q, r = divmod(g, self.period)
        return q * self.prefix[-1] + self.prefix[r]


@cache
def _table(pattern: BranchPattern, flt: BranchFilter, user_fraction: Fraction | None,
           cpl_user: bool) -> _Table:
    """``pattern`` under ``flt``: with a user fraction its branches alternate between rings
    evenly (branch g is at CPL 3 iff floor((g+1)f) > floor(gf), the split the counters use);
    without one every branch is at the current ring (``cpl_user``)."""
    den = 1 if user_fraction is None else user_fraction.denominator
    period = lcm(len(pattern), den)
    user: list[bool] = []
    kept: list[bool] = []
    prefix = [0]
    depth, balanced = 0, True
    for g in range(period):
        u = cpl_user if user_fraction is None else \
            (g + 1) * user_fraction // 1 > g * user_fraction // 1
        b = pattern.branches[g % len(pattern)]
        k = b.kind in flt.kinds and (RING_USER if u else RING_KERNEL) in flt.rings
        user.append(u)
        kept.append(k)
        prefix.append(prefix[-1] + k)
        if k:
            depth += b.kind.is_call - (b.kind is BranchKind.NEAR_RET)
            balanced = balanced and depth >= 0 and (b.kind.is_call
                                                    or b.kind is BranchKind.NEAR_RET)
    at = [g for g in range(period) if kept[g]]
    gap = [0] * period
    for j, g in enumerate(at):
        gap[g] = g - at[j - 1] if j else g + period - at[-1]
    return _Table(period, tuple(prefix), tuple(kept), tuple(user), balanced and depth == 0,
                  tuple(gap))


class BranchRecorder:
    """One logical CPU's branch record stack (``depth`` entries) over its PMU's segments."""

    def __init__(self, depth: int, pmu: CountingPmu) -> None:
        if depth <= 0 or depth & (depth - 1):
            raise ValueError(f"depth must be a positive power of two, not {depth!r}")
        self.depth = depth
        self.pmu = pmu
        self.src = [0] * depth
        self.dst = [0] * depth
        self.mispredicted = [False] * depth
        self.cycles = [0] * depth
        self.flags = [0] * depth
        """Per record, bits only software writes (an architecture's; a recorded branch's 0)."""
        self.tos = 0
        """The newest record's slot."""
        self.enabled = False
        self.filter = BranchFilter()
        self.mark_ps = 0
        """Recording has been applied up to here."""
        self.pushed = 0
        """Records pushed since creation (kept branches, returns excepted)."""
        self.guest = [False] * depth
        """Per record: it was recorded in guest mode (whose stack holds whose branches)."""
        self.guest_pushed = 0
        """Of ``pushed``, the records pushed in guest mode."""
        self.guest_ps = 0
        """Time spent recording in guest mode (the LBR enabled while a guest ran)."""

    def __repr__(self) -> str:
        return f"BranchRecorder(depth={self.depth}, tos={self.tos}, enabled={self.enabled})"

    def sync(self) -> None:
        """Record what the current stream did since the last sync, if recording."""
        pmu, now = self.pmu, self.pmu.env.now_ps
        seg = pmu.segment
        if self.enabled and seg is not None and now > self.mark_ps:
            start = max(self.mark_ps, seg.start_ps)
            if pmu.guest:
                before = self.pushed
                self._record(seg, start, now)
                self.guest_pushed += self.pushed - before
                self.guest_ps += now - start
            else:
                self._record(seg, start, now)
        self.mark_ps = now

    def clear(self) -> None:
        """Every record zero, the top at 0 (a reset; also what a stack looks like at power-on)."""
        self.sync()
        for slot in range(self.depth):
            self._put(slot, 0, 0, False, 0)
            self.guest[slot] = False
        self.tos = 0

    def live(self) -> int:
        """Records a reader finds walking down from the top until an empty source (perf's
        read and save loops stop there)."""
        self.sync()
        n = 0
        while n < self.depth and self.src[(self.tos - n) % self.depth]:
            n += 1
        return n

    def guest_records(self, n: int) -> int:
        """Of the newest ``n`` records, those recorded in guest mode."""
        return sum(self.guest[(self.tos - k) % self.depth] for k in range(n))

    def _record(self, seg: Segment, start_ps: int, end_ps: int) -> None:
        stream = seg.stream
        total = stream.get(ev.BRANCHES)
        if not total:
            return
        a = count_at(total, seg.duration_ps, start_ps - seg.start_ps)
        b = count_at(total, seg.duration_ps, end_ps - seg.start_ps)
        if b <= a:
            return
        pattern, off = stream.pattern, stream.branch_offset
        table = _table(pattern, self.filter, stream.user_fraction, seg.cpl != RING_KERNEL)
        per_branch = max(stream.cycles // total, 1)
        if not table.prefix[-1]:
            return
        if self.filter.call_stack and not table.skippable:
            self._walk(pattern, table, off + a, off + b, per_branch)
        elif self.filter.call_stack:
            g0, g1 = off + a, off + b
            head = min(g1, -(-g0 // table.period) * table.period)
            self._walk(pattern, table, g0, head, per_branch)
            if g1 - head >= table.period:
                self._walk(pattern, table, head, head + table.period, per_branch)
                head += (g1 - head) // table.period * table.period
            self._walk(pattern, table, head, g1, per_branch)
        else:
            self._last(pattern, table, off + a, off + b, per_branch)

    def _last(self, pattern: BranchPattern, table: _Table, g0: int, g1: int,
              per_branch: int) -> None:
        """Push the kept branches of ``[g0, g1)``: only the newest ``depth`` survive."""
        n = table.count(g0, g1)
        if not n:
            return
        self.pushed += n
        top = (self.tos + n) % self.depth
        newest: list[int] = []
        g = g1 - 1
        while len(newest) < min(n, self.depth):
            if table.kept[g % table.period]:
                newest.append(g)
            g -= 1
        for k, g in enumerate(newest):
            self._write((top - k) % self.depth, pattern, table, g, per_branch)
        self.tos = top

    def _walk(self, pattern: BranchPattern, table: _Table, g0: int, g1: int,
              per_branch: int) -> None:
        """Apply the kept branches of ``[g0, g1)`` one by one (call-stack mode)."""
        for g in range(g0, g1):
            if not table.kept[g % table.period]:
                continue
            if pattern.branches[g % len(pattern)].kind is BranchKind.NEAR_RET:
                self._put(self.tos, 0, 0, False, 0)
                self.tos = (self.tos - 1) % self.depth
            else:
                self.tos = (self.tos + 1) % self.depth
                self._write(self.tos, pattern, table, g, per_branch)
                self.pushed += 1

    def _write(self, slot: int, pattern: BranchPattern, table: _Table, g: int,
               per_branch: int) -> None:
        b, r = pattern.branches[g % len(pattern)], g % table.period
        base = (USER_CODE_BASE if table.user[r] else KERNEL_CODE_BASE) + pattern.code_offset
        self._put(slot, base + b.src, base + b.dst, b.mispredicted,
                  min(table.gap[r] * per_branch, MAX_CYCLES))

    def _put(self, slot: int, src: int, dst: int, mispredicted: bool, cycles: int) -> None:
        self.src[slot], self.dst[slot] = src, dst
        self.mispredicted[slot], self.cycles[slot] = mispredicted, cycles
        self.flags[slot] = 0
        self.guest[slot] = self.pmu.guest
