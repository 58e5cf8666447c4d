"""Execution as data: scripted exact streams and rate-based phases.

A ``Stream`` is a stretch of execution with exact event totals (``counts``, keyed by the event
keys of ``vpmu.arch.x86.events``), spread evenly over its cycles. The hardware counts it lazily:
a counter's value at any instant inside the stream is its share of the totals, so a
billion-instruction loop costs a handful of kernel events, not a billion.

Scripted streams reproduce the exact instruction and branch totals of the conformance
suites' measured blocks. Their other totals (cycles, cache misses) are estimates, each stated
at its constant: the suites only bound them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

from vpmu.arch import events as ev
from vpmu.workloads.branches import CALL_LOOP, LOOP_BACK_EDGE, BranchPattern


@dataclass(frozen=True, slots=True)
class Stream:
    """Exact event totals over ``counts["cycles"]`` core cycles.

    ``user_fraction`` None: the stream runs at the privilege level current when it executes
    (scripted code). Otherwise that fraction of every total happens at CPL 3 and the rest at
    CPL 0, interleaved evenly (a rate phase's user/kernel split).

    ``branches``: which branches its ``branches`` total are (``vpmu.workloads.branches``;
    None: ``LOOP_BACK_EDGE``), its first one being the pattern's entry ``branch_offset``.
    """

    name: str
    counts: Mapping[str, int]
    user_fraction: Fraction | None = None
    branches: BranchPattern | None = None
    branch_offset: int = 0
    _frozen: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.counts) - set(ev.EVENT_KEYS)
        if unknown:
            raise ValueError(f"stream {self.name!r}: event keys must be among "
                             f"{ev.EVENT_KEYS}, not {sorted(unknown)!r}")
        if any(not isinstance(v, int) or v < 0 for v in self.counts.values()):
            raise ValueError(f"stream {self.name!r}: counts must be non-negative ints, "
                             f"not {dict(self.counts)!r}")
        if self.counts.get(ev.CYCLES, 0) <= 0:
            raise ValueError(f"stream {self.name!r}: cycles must be positive, "
                             f"not {self.counts.get(ev.CYCLES)!r}")
        if self.user_fraction is not None and not 0 <= self.user_fraction <= 1:
            raise ValueError(f"user_fraction must be in [0, 1], not {self.user_fraction!r}")
        object.__setattr__(self, "_frozen", MappingProxyType(dict(self.counts)))
        object.__setattr__(self, "counts", self._frozen)

    @property
    def cycles(self) -> int:
        """Core cycles the stream takes."""
        return self.counts[ev.CYCLES]

    def get(self, key: str) -> int:
        """Total of one event key (0 if the stream does not produce it)."""
        return self.counts.get(key, 0)

    def remainder(self, elapsed_ps: int, duration_ps: int) -> Stream | None:
        """What is left after ``elapsed_ps`` of a ``duration_ps`` execution was interrupted.

        The done part of each total is ``floor(total * elapsed / duration)``, the same share a
        lazy counter has counted by then, so an interrupted and resumed stream counts exactly
        its totals. None when nothing is left.
        """
        if elapsed_ps >= duration_ps:
            return None
        rest = {k: v - v * elapsed_ps // duration_ps for k, v in self.counts.items()}
        done = self.get(ev.BRANCHES) - rest.get(ev.BRANCHES, 0)
        return Stream(self.name, rest, self.user_fraction, self.branches,
                      self.branch_offset + done)

    @property
    def pattern(self) -> BranchPattern:
        """The branches this stream takes (``branches``, or a loop's back edge)."""
        return self.branches if self.branches is not None else LOOP_BACK_EDGE


def loop(iterations: int, *, cycles_per_iteration: int = 3) -> Stream:
    """The ``loop`` of kvm-unit-tests x86/pmu.c: exactly 10 instructions and 1 branch per iteration.

    ``cycles_per_iteration`` is an estimate (a 10-instruction body with one load at IPC ~3.3).
    """
    _positive("iterations", iterations)
    return Stream(f"loop({iterations})", {
        ev.INSTRUCTIONS: 10 * iterations, ev.BRANCHES: iterations,
        ev.CYCLES: cycles_per_iteration * iterations, ev.LOADS: iterations,
    })


KUT_LOOP_EXTRA_INSNS_IN_BLOB = 16
"""Instructions of kvm-unit-tests x86/pmu.c's measured asm blob outside the N iterations,
excluding the disabling WRMSR: the blob totals 10N + 17 with that WRMSR
(kvm-unit-tests x86/pmu.c), and the port executes the WRMSR as its own
instruction."""

KUT_LOOP_EXTRA_BRANCHES = 2
"""Branches outside the iterations: 1,000,002 for N = 1,000,000 (kvm-unit-tests x86/pmu.c)."""


def kut_loop(n: int) -> Stream:
    """kvm-unit-tests x86/pmu.c ``loop``: N x (load, pointer += 64, 7 NOPs, LOOP), with the
    CLFLUSH + MFENCE before and the IBPB write and indirect jump after.

    Estimates (the suite only bounds them): 4 cycles per iteration; every iteration touches a
    new 64-byte line, so one LLC reference each, of which a quarter miss after prefetching,
    plus the CLFLUSHed line; two branch misses (the loop exit and the indirect jump after IBPB).
    """
    _positive("n", n)
    return Stream(f"kut_loop({n})", {
        ev.INSTRUCTIONS: 10 * n + KUT_LOOP_EXTRA_INSNS_IN_BLOB,
        ev.BRANCHES: n + KUT_LOOP_EXTRA_BRANCHES,
        ev.CYCLES: 4 * n + 40, ev.LOADS: n, ev.LLC_REFERENCES: n, ev.LLC_MISSES: n // 4 + 1,
        ev.BRANCH_MISSES: 2,
    })


SELFTEST_LOOPS = 10
SELFTEST_INSNS_PER_LOOP = 6
"""ENTER, CLFLUSHOPT/CLFLUSH/NOP, MFENCE, load, LEAVE, LOOP (pmu_counters_test.c)."""
SELFTEST_EXTRA_INSNS_IN_BLOCK = 4
"""2 MOV + 2 XOR; the fifth extra, the disabling WRMSR, is executed by the port."""
SELFTEST_NUM_INSNS_RETIRED = SELFTEST_LOOPS * SELFTEST_INSNS_PER_LOOP + 5
"""65: ``NUM_INSNS_RETIRED`` of the selftest pmu_counters_test.c."""
SELFTEST_NUM_BRANCHES = SELFTEST_LOOPS
"""10 branches: one LOOP per iteration."""


def selftest_measured_block() -> Stream:
    """pmu_counters_test's GUEST_MEASURE_EVENT body, between the enabling and the disabling
    WRMSR: 64 instructions and 10 branches here, 65 with the disabling WRMSR.

    Estimates: ~30 cycles per iteration (CLFLUSH + MFENCE dominate); each CLFLUSH makes the
    next load an LLC reference and miss.
    """
    return Stream("selftest_measured_block", {
        ev.INSTRUCTIONS: SELFTEST_LOOPS * SELFTEST_INSNS_PER_LOOP + SELFTEST_EXTRA_INSNS_IN_BLOCK,
        ev.BRANCHES: SELFTEST_NUM_BRANCHES, ev.CYCLES: 30 * SELFTEST_LOOPS + 8,
        ev.LOADS: SELFTEST_LOOPS, ev.LLC_REFERENCES: SELFTEST_LOOPS,
        ev.LLC_MISSES: SELFTEST_LOOPS, ev.BRANCH_MISSES: 1,
    })


def loop_self(n: int) -> Stream:
    """``loop .``: a LOOP instruction branching to itself n times (1 instruction, 1 branch
    each). Estimate: 2 cycles per iteration, one branch miss at the exit."""
    _positive("n", n)
    return Stream(f"loop_self({n})", {
        ev.INSTRUCTIONS: n, ev.BRANCHES: n, ev.CYCLES: 2 * n, ev.BRANCH_MISSES: 1,
    })


KUT_LBR_ITERATIONS = 200_000_000
"""kvm-unit-tests x86/pmu_lbr.c ``lbr_test``'s loop count."""


def lbr_test_loop(n: int) -> Stream:
    """kvm-unit-tests x86/pmu_lbr.c ``lbr_test``: ``n`` iterations, each calling the
    ``noinline`` ``compute_flag(i)`` and updating a volatile counter and a double.

    Estimates (the test checks only that FROM/TO are non-zero): each iteration takes the four
    branches of ``CALL_LOOP`` (call, a taken conditional, return, back edge), 12 instructions
    and 5 cycles, two loads and two stores."""
    _positive("n", n)
    return Stream(f"lbr_test({n})", {
        ev.INSTRUCTIONS: 12 * n, ev.BRANCHES: len(CALL_LOOP) * n, ev.CYCLES: 5 * n,
        ev.LOADS: 2 * n, ev.STORES: 2 * n,
    }, branches=CALL_LOOP)


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
