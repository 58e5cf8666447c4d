"""Which branches a stream takes: a cyclic pattern of taken branches, for branch recording.

A stream's ``counts`` say how many branches it retires; a branch recorder (an LBR) also needs
*which*: their kind, addresses and whether they were mispredicted. A ``BranchPattern`` is a
short cycle of ``Branch`` templates; a stream's i-th branch is its pattern's entry
``(offset + i) % len(pattern)``, so a recorder can tell the last N branches of any stretch of
a stream, and how many of them a filter keeps, without walking the branches themselves.

- Scripted streams have exact patterns (``LOOP_BACK_EDGE``: a loop's one conditional branch
  back to its head; ``CALL_LOOP``: kvm-unit-tests pmu_lbr.c's loop calling a function).
- Rate phases get a plausible one (``for_phase``) at their branch rate: a mix of conditional
  branches, calls and their returns, and jumps. The mix is an assumption, stated at
  ``PHASE_MIX``: the phases' own rates (branches and misses per instruction) say nothing of
  kinds.

Every pattern is *balanced*: each call has its return later in the same cycle and no return
comes before its call, so a call-stack recorder is back where it started after each cycle.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import Enum
from functools import cache


class BranchKind(Enum):
    """Taken-branch kinds as branch filters name them (SDM 18.4.8 LBR_SELECT's classes)."""

    JCC = "jcc"
    """Conditional branch (taken)."""
    NEAR_REL_CALL = "near_rel_call"
    NEAR_IND_CALL = "near_ind_call"
    NEAR_RET = "near_ret"
    NEAR_REL_JMP = "near_rel_jmp"
    NEAR_IND_JMP = "near_ind_jmp"
    FAR = "far"
    """Far branches, interrupts, exceptions, their returns."""

    @property
    def is_call(self) -> bool:
        """A call: pushes onto a call stack."""
        return self in (BranchKind.NEAR_REL_CALL, BranchKind.NEAR_IND_CALL)


@dataclass(frozen=True, slots=True)
class Branch:
    """One taken branch of a pattern: its kind, source and target as offsets from the
    pattern's code base, and whether it was mispredicted."""

    kind: BranchKind
    src: int
    dst: int
    mispredicted: bool = False


USER_CODE_BASE = 0x0000_5555_5555_0000
"""Where user code lives (a PIE binary's usual load address); an assumption."""
KERNEL_CODE_BASE = 0xFFFF_FFFF_8100_0000
"""Where kernel text starts (x86-64 Linux's __START_KERNEL_map + 16 MiB)."""


@dataclass(frozen=True, slots=True)
class BranchPattern:
    """A cycle of taken branches; ``name`` places its code (``code_offset``)."""

    name: str
    branches: tuple[Branch, ...]

    def __post_init__(self) -> None:
        if not self.branches:
            raise ValueError(f"branch pattern {self.name!r} is empty")
        depth = 0
        for b in self.branches:
            depth += b.kind.is_call - (b.kind is BranchKind.NEAR_RET)
            if depth < 0:
                raise ValueError(f"branch pattern {self.name!r}: a return before its call")
        if depth:
            raise ValueError(f"branch pattern {self.name!r}: {depth} calls never return")

    def __len__(self) -> int:
        return len(self.branches)

    def __hash__(self) -> int:
        """By name and length (equal patterns hash alike): recorders look patterns up on
        every sync, and hashing a thousand branches each time would cost more than the
        lookup saves."""
        return hash((self.name, len(self.branches)))

    @property
    def code_offset(self) -> int:
        """Where this pattern's code sits within the user or kernel code (a stable hash of
        its name, 64 KiB aligned within 1 GiB): different code, different addresses."""
        return (zlib.crc32(self.name.encode()) & 0x3FFF) << 16


LOOP_BACK_EDGE = BranchPattern("loop", (Branch(BranchKind.JCC, 0x2A, 0x10),))
"""A counted loop: one taken conditional branch per iteration, back to the loop's head."""

CALL_LOOP = BranchPattern("call_loop", (
    Branch(BranchKind.NEAR_REL_CALL, 0x40, 0x200),
    Branch(BranchKind.JCC, 0x214, 0x230),
    Branch(BranchKind.NEAR_RET, 0x238, 0x45),
    Branch(BranchKind.JCC, 0x60, 0x10),
))
"""kvm-unit-tests x86/pmu_lbr.c's ``lbr_test`` loop: a call to the ``noinline``
``compute_flag``, its conditional, its return, the loop's back edge."""

PHASE_MIX = ((BranchKind.JCC, 10), (BranchKind.NEAR_REL_CALL, 2), (BranchKind.NEAR_IND_CALL, 1),
             (BranchKind.NEAR_RET, 3), (BranchKind.NEAR_REL_JMP, 2))
"""Assumption: taken branches of compiled server code are about 55% conditional, 17% calls
and as many returns, 11% direct jumps (no published mix is specific to the phases)."""


@cache
def for_phase(name: str, miss_rate_per_mille: int) -> BranchPattern:
    """A rate phase's pattern: ``PHASE_MIX`` in one 18-branch cycle of nested calls, repeated
    56 times (1008 branches, enough to place a miss rate to 0.1%), with
    ``miss_rate_per_mille`` / 1000 of all its branches mispredicted, spread evenly over its
    conditional ones (assumption: calls, returns and direct jumps predict well)."""
    cycle = _mix_cycle()
    repeats = 56
    jccs = sum(1 for b in cycle if b.kind is BranchKind.JCC) * repeats
    misses = min(round(len(cycle) * repeats * miss_rate_per_mille / 1000), jccs)
    out: list[Branch] = []
    seen = 0
    for r in range(repeats):
        for b in cycle:
            src, dst = b.src + r * 0x400, b.dst + r * 0x400
            miss = False
            if b.kind is BranchKind.JCC:
                miss = seen * misses // jccs != (seen + 1) * misses // jccs
                seen += 1
            out.append(Branch(b.kind, src, dst, miss))
    return BranchPattern(f"phase:{name}", tuple(out))


def _mix_cycle() -> tuple[Branch, ...]:
    """``PHASE_MIX`` as one balanced cycle: call, work, nested call, work, returns."""
    k = BranchKind
    seq = (k.JCC, k.NEAR_REL_CALL, k.JCC, k.JCC, k.NEAR_IND_CALL, k.JCC, k.NEAR_REL_JMP,
           k.JCC, k.NEAR_RET, k.JCC, k.NEAR_REL_CALL, k.JCC, k.NEAR_RET, k.JCC, k.NEAR_REL_JMP,
           k.NEAR_RET, k.JCC, k.JCC)
    assert sorted(seq, key=str) == sorted([x for x, n in PHASE_MIX for _ in range(n)], key=str)
    return tuple(Branch(kind, 0x20 * i + 0x8, 0x20 * i + 0x100) for i, kind in enumerate(seq))


KERNEL_WORK_INSNS_PER_BRANCH = 5
"""Host kernel work (KVM's exit handling, perf, the scheduler) retires one taken branch per this
many instructions. Assumption, where the model has no measured kernel profile: the density of
the ``syscall-heavy`` phase, about what integer kernel code shows; its branches follow
``for_phase``'s mix and none is mispredicted (kernel work adds no branch misses)."""


def kernel_work_pattern() -> BranchPattern:
    """The branches host kernel work records into an LBR that is on in host mode."""
    return for_phase("kernel-work", 0)
