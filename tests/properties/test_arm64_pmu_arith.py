"""Arm PMUv3 register arithmetic (``vpmu.hw.arm64.pmu.ArmPmu``, driven through its MRS / MSR
interface at EL1) against a small reference written from the Arm ARM (DDI 0487, D13 and the
PMCR_EL0, PMCNTEN*, PMINTEN*, PMOVS*, PMSWINC_EL0, PMSELR_EL0 and PMEV* descriptions).

The reference shares no code with the model: every bit position and rule is restated here.
It models counter widths (event counters 32 bits, 64 from PMUv3p5; the cycle counter 64) and
where each overflows (bit 31 unless PMCR_EL0.LP for event counters, LC for the cycle counter;
LP RES0 without PMUv3p5, LC RES1 without AArch32), CHAIN (an even counter's 32-bit overflow
adds 1 to the odd counter above it if that one counts CHAIN and counts here), SW_INCR, the
PMCR_EL0.P / .C resets, the W1S/W1C pairs (RAZ/WI bits for unimplemented counters), the
PMSELR_EL0 windows, UNDEFINED per-counter accesses beyond PMCR_EL0.N, and the interrupt level.
Execution is a stream of ``n`` instructions and ``n + 1`` cycles at EL1 (INST_RETIRED and
CPU_CYCLES count it; ``n`` < 2^32, so at most one 32-bit wrap per counter).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vpmu.arch import events as ev
from vpmu.arch.arm64 import sysregs as sr
from vpmu.arch.arm64.caps import PMUVER_V3, PMUVER_V3P1, PMUVER_V3P5, PMUVER_V3P7, ArmPmuCaps
from vpmu.arch.faults import Fault
from vpmu.arch.presets import CpuPreset
from vpmu.hw.arm64.pmu import ArmPmu
from vpmu.hw.counting import RING_KERNEL, Segment
from vpmu.sim import Environment
from vpmu.workloads.streams import Stream

from .strategies import PROPERTY_SETTINGS

E, P, C, D, LC, LP = 1, 1 << 1, 1 << 2, 1 << 3, 1 << 6, 1 << 7
KEPT = E | D | 1 << 4 | 1 << 5 | LC | LP
"""PMCR_EL0 bits 7:0 that hold a value (P and C are actions that read 0)."""
SW_INCR, INST_RETIRED, CPU_CYCLES, CHAIN, NOT_COUNTED = 0x00, 0x08, 0x11, 0x1E, 0x1A
EXCLUDE_EL1 = 1 << 31
FILTER_BITS = 0xFD00_0000
"""PMCCFILTR_EL0 holds only the filter bits (31:26 and 24); it has no evtCount."""
CYCLE = 31
U64 = (1 << 64) - 1
PAIRS = (("PMCNTENSET_EL0", "PMCNTENCLR_EL0"), ("PMINTENSET_EL1", "PMINTENCLR_EL1"),
         ("PMOVSSET_EL0", "PMOVSCLR_EL0"))
SEQ = itertools.count()


# -- the reference -------------------------------------------------------------------------
@dataclass
class RefPmuv3:
    """PMUv3 as the Arm ARM states it, at EL1 (so a filter's P bit alone excludes)."""

    n: int
    long: bool
    aarch32: bool
    pmcr: int = 0
    cnt: dict[int, int] = field(default_factory=dict)
    typ: dict[int, int] = field(default_factory=dict)
    bitmaps: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("PMCNTENSET_EL0", "PMINTENSET_EL1", "PMOVSSET_EL0"), 0))
    sel: int = 0

    def __post_init__(self) -> None:
        self.cnt = dict.fromkeys([*range(self.n), CYCLE], 0)
        self.typ = dict.fromkeys([*range(self.n), CYCLE], 0)
        self.pmcr = self._kept(0)

    @property
    def impl(self) -> int:
        return (1 << self.n) - 1 | 1 << CYCLE

    def _kept(self, value: int) -> int:
        value &= KEPT & ~(0 if self.long else LP)
        return value | (0 if self.aarch32 else LC)

    def width(self, i: int) -> int:
        return 64 if i == CYCLE or self.long else 32

    def overflows_at(self, i: int) -> int:
        return 64 if self.pmcr & (LC if i == CYCLE else LP) else 32

    def counts(self, i: int) -> bool:
        enabled = self.pmcr & E and self.bitmaps["PMCNTENSET_EL0"] >> i & 1
        return bool(enabled) and not self.typ[i] & EXCLUDE_EL1

    def add(self, i: int, k: int) -> None:
        """``k`` events on counter ``i`` (at most one wrap at its overflow width)."""
        old, at = self.cnt[i], self.overflows_at(i)
        self.cnt[i] = (old + k) % (1 << self.width(i))
        if old % (1 << at) + k < 1 << at:
            return
        self.bitmaps["PMOVSSET_EL0"] |= 1 << i
        odd = i + 1
        if i % 2 == 0 and odd < self.n and at == 32 and self.typ[odd] & 0xFFFF == CHAIN \
                and self.counts(odd):
            self.add(odd, 1)

    def event(self, i: int) -> int:
        return CPU_CYCLES if i == CYCLE else self.typ[i] & 0xFFFF

    def execute(self, n: int) -> None:
        for i in sorted(self.cnt):
            if self.counts(i) and self.event(i) in (INST_RETIRED, CPU_CYCLES):
                self.add(i, n + 1 if self.event(i) == CPU_CYCLES else n)

    def counter(self, name: str) -> int | None:
        """The counter a per-counter register (or a PMXEV* window) names; None: UNDEFINED."""
        if name.startswith("PMXEV"):
            i = self.sel
        elif name == "PMCCNTR_EL0":
            i = CYCLE
        else:
            i = int(name.removeprefix("PMEVCNTR").removeprefix("PMEVTYPER").split("_")[0])
        return i if i < self.n or (i == CYCLE and not name.startswith("PMEVTYPER")) else None

    def read(self, name: str) -> int | Fault:
        if name == "PMCR_EL0":
            return 0x41 << 24 | self.n << 11 | self.pmcr
        for st_name, clr in PAIRS:
            if name in (st_name, clr):
                return self.bitmaps[st_name]
        if name == "PMSELR_EL0":
            return self.sel
        i = self.counter(name)
        if i is None:
            return Fault.UNDEF
        if "TYPER" in name:
            return self.typ[i]
        return self.cnt[i]

    def write(self, name: str, value: int) -> Fault | None:
        if name == "PMCR_EL0":
            self.pmcr = self._kept(value)
            for i in self.cnt:
                if value & (C if i == CYCLE else P):
                    self.cnt[i] = 0
        elif name == "PMSWINC_EL0":
            for i in range(self.n):
                if value >> i & 1 and self.counts(i) and self.event(i) == SW_INCR:
                    self.add(i, 1)
        elif name == "PMSELR_EL0":
            self.sel = value & 0x1F
        elif any(name in pair for pair in PAIRS):
            reg = next(s for s, c in PAIRS if name in (s, c))
            bits = value & self.impl
            self.bitmaps[reg] = self.bitmaps[reg] | bits if name == reg \
                else self.bitmaps[reg] & ~bits
        else:
            return self._write_counter(name, value)
        return None

    def _write_counter(self, name: str, value: int) -> Fault | None:
        i = self.counter(name)
        if i is None:
            return Fault.UNDEF
        if "TYPER" in name:
            self.typ[i] = value & FILTER_BITS if i == CYCLE else value
        else:
            self.cnt[i] = value % (1 << self.width(i))
        return None

    @property
    def irq(self) -> bool:
        return bool(self.pmcr & E and self.bitmaps["PMOVSSET_EL0"]
                    & self.bitmaps["PMINTENSET_EL1"])


# -- the model under test ------------------------------------------------------------------
def make_pmu(caps: ArmPmuCaps) -> tuple[Environment, ArmPmu]:
    preset = CpuPreset("arm-prop", "a property-test core", caps, 2000, 100, 4)
    env = Environment()
    return env, ArmPmu(preset, env, lambda: None)


def address(name: str) -> int:
    """A register's MRS/MSR encoding, unimplemented counters included."""
    for prefix, enc in (("PMEVCNTR", sr.pmevcntr), ("PMEVTYPER", sr.pmevtyper)):
        if name.startswith(prefix):
            return enc(int(name.removeprefix(prefix).split("_")[0]))
    return int(getattr(sr, name))


def execute(env: Environment, pmu: ArmPmu, n: int) -> None:
    """``n`` instructions and ``n + 1`` cycles at EL1, to the end."""
    stream = Stream("prop", {ev.INSTRUCTIONS: n, ev.CYCLES: n + 1})
    duration = 1_000_000
    pmu.set_segment(Segment(stream, env.now_ps, duration, RING_KERNEL, next(SEQ)))
    env.run(env.now_ps + duration)
    pmu.sync()
    pmu.set_segment(None)


# -- strategies ----------------------------------------------------------------------------
def caps_strategy() -> st.SearchStrategy[ArmPmuCaps]:
    return st.builds(
        lambda ver, n, a32: ArmPmuCaps(0x41, 0xD0C, ver, n, aarch32_el0=a32),
        st.sampled_from([PMUVER_V3, PMUVER_V3P1, PMUVER_V3P5, PMUVER_V3P7]),
        st.sampled_from([0, 1, 2, 5, 6, 20, 31]), st.booleans())


VALUES = st.one_of(
    st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**32 - 16, 2**32 - 2, 2**32 - 1, 2**32,
                     2**63, 2**64 - 16, 2**64 - 2, U64]),
    st.integers(0, U64))
COUNTER_NAMES = st.one_of(
    st.integers(0, 30).map(lambda i: f"PMEVCNTR{i}_EL0"),
    st.sampled_from(["PMCCNTR_EL0", "PMXEVCNTR_EL0"]))
TYPER_NAMES = st.one_of(st.integers(0, 30).map(lambda i: f"PMEVTYPER{i}_EL0"),
                        st.just("PMXEVTYPER_EL0"))
TYPES = st.builds(lambda e, excl: e | (EXCLUDE_EL1 if excl else 0),
                  st.sampled_from([SW_INCR, INST_RETIRED, CPU_CYCLES, CHAIN, NOT_COUNTED]),
                  st.integers(0, 7).map(lambda x: x == 0))
PMCR_VALUES = st.builds(sum, st.lists(st.sampled_from([E, P, C, D, LC, LP]), unique=True))
BITMAP_NAMES = st.sampled_from([n for pair in PAIRS for n in pair])

Op = tuple[Any, ...]
OPS: st.SearchStrategy[Op] = st.one_of(
    st.tuples(st.just("msr"), st.just("PMCR_EL0"), PMCR_VALUES),
    st.tuples(st.just("msr"), BITMAP_NAMES, VALUES),
    st.tuples(st.just("msr"), st.just("PMSWINC_EL0"),
              st.one_of(st.integers(0, 0xFF), st.integers(0, U64))),
    st.tuples(st.just("msr"), st.just("PMSELR_EL0"), st.integers(0, 31)),
    st.tuples(st.just("msr"), COUNTER_NAMES, VALUES),
    st.tuples(st.just("msr"), TYPER_NAMES, TYPES),
    st.tuples(st.just("mrs"), st.one_of(BITMAP_NAMES, COUNTER_NAMES, TYPER_NAMES,
                                        st.just("PMCR_EL0"), st.just("PMSELR_EL0"))),
    st.tuples(st.just("exec"), st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1))),
)


NEAR_WRAP = st.one_of(st.integers(1, 40).map(lambda d: 2**32 - d),
                     st.integers(1, 40).map(lambda d: 2**64 - d), VALUES)
"""Counter presets a few events short of a 32- or 64-bit wrap, or any value."""
EVEN_TYPES = st.sampled_from([SW_INCR, INST_RETIRED, CPU_CYCLES, SW_INCR | EXCLUDE_EL1])
ODD_TYPES = st.one_of(st.just(CHAIN), st.just(CHAIN | EXCLUDE_EL1), TYPES)


@st.composite
def setups(draw: st.DrawFn, caps: ArmPmuCaps) -> list[Op]:
    """A likely-interesting start: the first counters typed (odd ones often CHAIN) and preset
    near a wrap, most enabled, some interrupts, PMCR_EL0.E on with LC / LP drawn; then bursts
    of SW_INCR and execution."""
    ops: list[Op] = []
    for i in range(min(caps.n_counters, 6)):
        ops += [("msr", f"PMEVTYPER{i}_EL0", draw(ODD_TYPES if i % 2 else EVEN_TYPES)),
                ("msr", f"PMEVCNTR{i}_EL0", draw(NEAR_WRAP))]
    enable = draw(st.sampled_from([0x3F, 0x3F | 1 << CYCLE, 0x3D, 0x2B])) \
        | draw(st.integers(0, 0x3F))
    ops += [("msr", "PMCCNTR_EL0", draw(NEAR_WRAP)),
            ("msr", "PMCNTENSET_EL0", enable),
            ("msr", "PMINTENSET_EL1", draw(st.integers(0, U64))),
            ("msr", "PMCR_EL0", E | draw(st.sampled_from([0, LC, LP, LC | LP])))]
    for _ in range(draw(st.integers(0, 3))):
        ops += [("msr", "PMSWINC_EL0", draw(st.integers(0, 0x3F)))] * draw(st.integers(1, 40))
        ops += [("exec", draw(st.integers(0, 64)))]
    return ops


FINAL_READS = ("PMCR_EL0", "PMCNTENSET_EL0", "PMINTENSET_EL1", "PMOVSSET_EL0",
               "PMCCNTR_EL0", *(f"PMEVCNTR{i}_EL0" for i in range(31)),
               *(f"PMEVTYPER{i}_EL0" for i in range(31)))


def apply(op: Op, env: Environment, pmu: ArmPmu, ref: RefPmuv3) -> tuple[object, object]:
    """Run one operation on both; their results (a read's value, a write's fault)."""
    if op[0] == "exec":
        execute(env, pmu, op[1])
        ref.execute(op[1])
        return None, None
    if op[0] == "mrs":
        return pmu.mrs(address(op[1])), ref.read(op[1])
    return pmu.msr(address(op[1]), op[2]), ref.write(op[1], op[2])


# -- properties ----------------------------------------------------------------------------
@settings(PROPERTY_SETTINGS, max_examples=500)
@given(st.data(), caps_strategy())
def test_register_arithmetic_matches_the_reference(data: st.DataObject,
                                                   caps: ArmPmuCaps) -> None:
    """Every result, the interrupt level after every operation, and every register at the
    end agree with the Arm ARM's rules (from a drawn or a reset start)."""
    start = data.draw(st.one_of(setups(caps), st.just([])), label="setup")
    ops = [*start, *data.draw(st.lists(OPS, max_size=40), label="ops")]
    env, pmu = make_pmu(caps)
    ref = RefPmuv3(caps.n_counters, caps.pmuver >= PMUVER_V3P5, caps.aarch32_el0)
    for i, op in enumerate(ops):
        got, want = apply(op, env, pmu, ref)
        assert got == want, f"op #{i} {op}: model {got!r}, reference {want!r}"
        assert pmu.irq_level == ref.irq, f"op #{i} {op}: interrupt level"
    for name in FINAL_READS:
        assert pmu.mrs(address(name)) == ref.read(name), f"final {name}"


@settings(PROPERTY_SETTINGS, max_examples=200)
@given(st.sampled_from([PMUVER_V3P1, PMUVER_V3P5]), st.integers(0, U64),
       st.integers(0, 3000))
def test_a_chained_sw_incr_pair_is_one_64_bit_counter(pmuver: int, start: int,
                                                      k: int) -> None:
    """SW_INCR on counter 0 and CHAIN on counter 1 (LP = 0): the pair counts as
    ``#1:#0`` modulo 2^64 in 32-bit halves, and each half flags its own carries."""
    _, pmu = make_pmu(ArmPmuCaps(0x41, 0xD0C, pmuver, 2))
    lo, hi = start & 0xFFFF_FFFF, start >> 32
    for name, value in (("PMEVTYPER0_EL0", SW_INCR), ("PMEVTYPER1_EL0", CHAIN),
                        ("PMEVCNTR0_EL0", lo), ("PMEVCNTR1_EL0", hi),
                        ("PMCNTENSET_EL0", 0b11), ("PMCR_EL0", E)):
        pmu.msr(address(name), value)
    for _ in range(k):
        pmu.msr(address("PMSWINC_EL0"), 1)
    total = lo + k
    new_hi = hi + (total >> 32)
    c0, c1 = pmu.mrs(address("PMEVCNTR0_EL0")), pmu.mrs(address("PMEVCNTR1_EL0"))
    assert isinstance(c0, int) and isinstance(c1, int)
    assert c0 & 0xFFFF_FFFF == total & 0xFFFF_FFFF
    assert c1 & 0xFFFF_FFFF == new_hi & 0xFFFF_FFFF
    ovs = (1 if total >> 32 else 0) | (2 if new_hi >> 32 else 0)
    assert pmu.mrs(address("PMOVSSET_EL0")) == ovs
