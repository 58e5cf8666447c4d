"""kvm-unit-tests ``arm/pmu.c``'s shared parts as guest code: its constants, ``pmu_probe``,
``pmu_reset``, the event checks, the two hand-written asm loops as exact workload streams, and
the IRQ handler with its statistics. See ``kut_pmu`` for the sub-tests and the port decisions.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

from vpmu.arch import events as ev
from vpmu.arch.faults import Fault
from vpmu.guest.conformance._framework import Checker
from vpmu.guest.port import Execute, Mrs, Msr, Op, WaitPmi
from vpmu.workloads.streams import Stream

T = TypeVar("T")
Gen: TypeAlias = Generator[Op, Any, T]
"""A guest sub-program returning a ``T``."""

# -- upstream's constants (arm/pmu.c, HEAD 1da1819e) ---------------------------------------
PMU_PMCR_E, PMU_PMCR_P, PMU_PMCR_C = 1 << 0, 1 << 1, 1 << 2
PMU_PMCR_LC, PMU_PMCR_LP = 1 << 6, 1 << 7
PMU_PMCR_N_SHIFT, PMU_PMCR_N_MASK = 11, 0x1F
PMCR_RO_MASK = 0xFFFF_FF00
"""``pmu_probe`` keeps PMCR's read-only and RES0 bits 31:8 as ``pmu.pmcr_ro``."""
PMU_CYCLE_IDX = 31
NR_SAMPLES = 10

SW_INCR, INST_RETIRED, CPU_CYCLES, MEM_ACCESS = 0x00, 0x08, 0x11, 0x13
INST_PREC, CHAIN, STALL_FRONTEND, STALL_BACKEND = 0x1B, 0x1E, 0x23, 0x24
COMMON_EVENTS_HIGH = 0x3F

ALL_SET_32, ALL_SET_64 = 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF
PRE_OVERFLOW_32, PRE_OVERFLOW_64 = 0xFFFF_FFF0, 0xFFFF_FFFF_FFFF_FFF0
COUNT, MARGIN, COUNT_INT = 250, 100, 1000
PRE_OVERFLOW2_32 = ALL_SET_32 - COUNT - MARGIN
PRE_OVERFLOW2_64 = ALL_SET_64 - COUNT - MARGIN
"""The first ``COUNT`` accesses from here do not overflow, the second ``COUNT`` do."""
PMU_PPI = 23

ID_DFR0_PMU_NOTIMPL, ID_DFR0_PMU_IMPDEF = 0b0000, 0b1111
ID_DFR0_PMU_V3_8_1, ID_DFR0_PMU_V3_8_5 = 0b0100, 0b0110
"""ID_AA64DFR0_EL1.PMUVer values the test distinguishes."""
ID_AA64DFR0_PERFMON_SHIFT = 8
CURRENT_EL_EL2 = 2
PMCCFILTR_EL0_NSH = 1 << 27
PMEVTYPER_EL0_U = 1 << 30
"""``PMEVTYPER_EXCLUDE_EL0``'s bit 30 (plus NSH, bit 27, when the test runs at EL2)."""
PMINTENCLR = "PMINTENCLR_EL1"
PMINTENSET = "PMINTENSET_EL1"

# -- the hand-written asm loops as streams -------------------------------------------------
ISB_CYCLES = 12
"""Estimate: an ISB refills the pipeline (Cortex-A53 has 8 stages, A72 15)."""
DSB_CYCLES = 20
"""Estimate: a DSB ISH with no outstanding stores waits for the memory system to answer."""
LOOP_ITERATION_CYCLES = 2
"""Estimate per iteration of either loop (a flag-setting ALU op and a taken branch; the load
of ``mem_access_loop`` hits L1 every time)."""


def precise_instrs_stream(loop: int) -> Stream:
    """``precise_instrs_loop``'s counted block.

    Upstream's asm: ``msr pmcr_el0, <pmcr>; isb; 1: subs w, w, #1; b.gt 1b; msr pmcr_el0,
    xzr; isb`` ("Total instrs = isb + msr + 2*loop"). The enabling MSR lands after it retires
    and the closing ISB runs after counting stopped, so neither counts; the disabling MSR is
    the port's own instruction. This stream is what lies between: the ISB and ``loop``
    iterations of SUBS + B.GT, i.e. exactly 1 + 2*loop instructions and ``loop`` branches
    (the last B.GT falls through; BR_RETIRED counts it too). Cycles are an estimate.
    """
    return Stream(f"precise_instrs_loop({loop})", {
        ev.INSTRUCTIONS: 1 + 2 * loop, ev.BRANCHES: loop,
        ev.CYCLES: ISB_CYCLES + LOOP_ITERATION_CYCLES * loop,
    })


def mem_access_stream(loop: int) -> Stream:
    """``mem_access_loop``'s counted block.

    Upstream's asm: ``dsb ish; msr pmcr_el0, <pmcr>; isb; dsb ish; mov x10, <loop>; 1: sub
    x10, x10, #1; ldr x9, [addr]; cmp x10, #0; b.gt 1b; dsb ish; msr pmcr_el0, xzr; isb``.
    Between the enabling MSR (lands after it retires) and the disabling one (the port's own
    instruction) run ISB, DSB, MOV, ``loop`` x (SUB, LDR, CMP, B.GT) and DSB: exactly
    4 + 4*loop instructions, ``loop`` branches and ``loop`` loads (the only data accesses:
    MEM_ACCESS counts exactly ``loop``). Cycles are an estimate.
    """
    return Stream(f"mem_access_loop({loop})", {
        ev.INSTRUCTIONS: 4 + 4 * loop, ev.BRANCHES: loop, ev.LOADS: loop,
        ev.CYCLES: ISB_CYCLES + 2 * DSB_CYCLES + LOOP_ITERATION_CYCLES * loop,
    })


# -- the test's state ----------------------------------------------------------------------
@dataclass(slots=True)
class PmuStats:
    """``struct pmu_stats``: what the IRQ handler saw."""

    bitmap: int = 0
    interrupts: list[int] = field(default_factory=lambda: [0] * 32)
    unexpected: bool = False

    def describe(self) -> str:
        """The tallies, for a check's detail."""
        counts = {i: n for i, n in enumerate(self.interrupts) if n}
        return f"bitmap {self.bitmap:#x}, interrupts {counts}, unexpected {self.unexpected}"


@dataclass(slots=True)
class ArmKut:
    """One sub-test run: ``struct pmu`` as ``pmu_probe`` fills it, the IRQ statistics, and
    the checker."""

    checker: Checker
    version: int
    """ID_AA64DFR0_EL1.PMUVer."""
    nb_implemented_counters: int
    """PMCR_EL0.N."""
    pmcr_ro: int
    current_el: int
    stats: PmuStats = field(default_factory=PmuStats)
    irqs_enabled: bool = False
    """``local_irq_enable()`` ran: a delivered PPI is taken at the next instruction
    boundary (``take_irqs``)."""

    @property
    def exclude_el0(self) -> int:
        """``PMEVTYPER_EXCLUDE_EL0``."""
        return PMEVTYPER_EL0_U | (PMCCFILTR_EL0_NSH if self.current_el == CURRENT_EL_EL2 else 0)

    @property
    def pmccfiltr_default(self) -> int:
        """``PMCCFILTR_EL0_DEFAULT``: count at EL2 when the test runs there."""
        return PMCCFILTR_EL0_NSH if self.current_el == CURRENT_EL_EL2 else 0

    @property
    def pmevcntr_mask(self) -> int:
        """``pmevcntr_mask``: 64-bit counters keep bits 63:32 whatever the overflow width
        (AArch64.IncrementEventCounter, Arm ARM DDI 0487I.a J1.1.1)."""
        return ALL_SET_64 if self.version >= ID_DFR0_PMU_V3_8_5 else ALL_SET_32

    @property
    def implemented_counter_mask(self) -> int:
        """``BIT(N) - 1``."""
        return (1 << self.nb_implemented_counters) - 1


def pre_overflow(at64: bool) -> int:
    """``PRE_OVERFLOW(overflow_at_64bits)``."""
    return PRE_OVERFLOW_64 if at64 else PRE_OVERFLOW_32


def pmcr_lp(at64: bool) -> int:
    """``overflow_at_64bits ? PMU_PMCR_LP : 0``."""
    return PMU_PMCR_LP if at64 else 0


# -- register access -----------------------------------------------------------------------
def mrs(k: ArmKut, name: str) -> Gen[int]:
    """``read_sysreg``: an UNDEFINED read (upstream: an unhandled exception) is a failed check
    named after the access and reads 0."""
    value = yield Mrs(name)
    if isinstance(value, int):
        return value
    k.checker.check(f"MRS {name}", False, f"unexpected {value!r}")
    return 0


def msr(k: ArmKut, name: str, value: int) -> Gen[None]:
    """``write_sysreg``: C's value as the 64-bit register image; an UNDEFINED write is a
    failed check. With interrupts enabled, an IRQ the write raised is taken after it."""
    if (yield Msr(name, value & ALL_SET_64)) is Fault.UNDEF:
        k.checker.check(f"MSR {name}, {value & ALL_SET_64:#x}", False, "unexpected UNDEFINED")
    if k.irqs_enabled:
        yield from take_irqs(k)


def pmevtyper(n: int) -> str:
    """``write_regn_el0(pmevtyper, n, ...)``'s register."""
    return f"PMEVTYPER{n}_EL0"


def pmevcntr(n: int) -> str:
    """``read_regn_el0(pmevcntr, n)``'s register."""
    return f"PMEVCNTR{n}_EL0"


# -- probe and reset -----------------------------------------------------------------------
def pmu_probe(checker: Checker) -> Gen[ArmKut | None]:
    """``pmu_probe``: PMUVer, then PMCR's read-only half and N; None when there is no PMU
    (upstream: "No PMU found, test skipped...", a skip here)."""
    dfr0 = yield Mrs("ID_AA64DFR0_EL1")
    if not isinstance(dfr0, int):
        checker.check("MRS ID_AA64DFR0_EL1", False, f"unexpected {dfr0!r}")
        return None
    version = dfr0 >> ID_AA64DFR0_PERFMON_SHIFT & 0xF
    if version in (ID_DFR0_PMU_NOTIMPL, ID_DFR0_PMU_IMPDEF):
        checker.skip("No PMU found, test skipped...")
        return None
    current = yield Mrs("CurrentEL")
    el = current >> 2 & 3 if isinstance(current, int) else 1
    k = ArmKut(checker, version, 0, 0, el)
    pmcr = yield from mrs(k, "PMCR_EL0")
    k.pmcr_ro = pmcr & PMCR_RO_MASK
    k.nb_implemented_counters = pmcr >> PMU_PMCR_N_SHIFT & PMU_PMCR_N_MASK
    return k


def pmu_reset_stats(k: ArmKut) -> None:
    """``pmu_reset_stats``."""
    k.stats = PmuStats()


def pmu_reset(k: ArmKut) -> Gen[None]:
    """``pmu_reset``: reset every counter with counting disabled at PMCR, then disable every
    counter, clear every overflow and disable every overflow interrupt."""
    yield from msr(k, "PMCR_EL0", k.pmcr_ro | PMU_PMCR_LC | PMU_PMCR_C | PMU_PMCR_P)
    yield from msr(k, "PMCNTENCLR_EL0", ALL_SET_32)
    yield from msr(k, "PMOVSCLR_EL0", ALL_SET_32)
    yield from msr(k, PMINTENCLR, ALL_SET_32)
    pmu_reset_stats(k)


# -- events --------------------------------------------------------------------------------
def is_event_supported(k: ArmKut, n: int) -> Gen[bool]:
    """``is_event_supported``: the low halves of PMCEID0/1 enumerate events 0x00-0x3F, the
    high halves 0x4000-0x403F."""
    ceid0 = yield from mrs(k, "PMCEID0_EL0")
    ceid1 = yield from mrs(k, "PMCEID1_EL0")
    if n <= COMMON_EVENTS_HIGH:
        reg = (ceid0 & ALL_SET_32) | (ceid1 & ALL_SET_32) << 32
    else:
        reg = ceid0 >> 32 | (ceid1 >> 32) << 32
    return bool(reg >> (n & 0x3F) & 1)


def satisfy_prerequisites(k: ArmKut, events: Sequence[int]) -> Gen[bool]:
    """``satisfy_prerequisites``: enough counters and every event implemented, else a skip
    with upstream's reason."""
    if k.nb_implemented_counters < len(events):
        k.checker.skip(f"Skip test as number of counters is too small "
                       f"({k.nb_implemented_counters})")
        return False
    for e in events:
        if not (yield from is_event_supported(k, e)):
            k.checker.skip(f"Skip test as event {e:#x} is not supported")
            return False
    return True


def check_overflow_prerequisites(k: ArmKut, at64: bool) -> bool:
    """``check_overflow_prerequisites``: 64-bit overflows need FEAT_PMUv3p5."""
    if at64 and k.version < ID_DFR0_PMU_V3_8_5:
        k.checker.skip("Skip test as 64 overflows need FEAT_PMUv3p5")
        return False
    return True


# -- the loops -----------------------------------------------------------------------------
def precise_instrs_loop(k: ArmKut, loop: int, pmcr: int) -> Gen[None]:
    """``precise_instrs_loop``: PMCR = ``pmcr``, the exact loop, PMCR = 0."""
    yield from msr(k, "PMCR_EL0", pmcr)
    yield Execute(precise_instrs_stream(loop))
    if k.irqs_enabled:
        yield from take_irqs(k)
    yield from msr(k, "PMCR_EL0", 0)


def measure_instrs(k: ArmKut, num: int, pmcr: int) -> Gen[None]:
    """``measure_instrs``: ``num`` instructions counted, ``num`` even and at least 4."""
    if num < 4 or num % 2:
        raise ValueError(f"num must be even and >= 4, not {num!r}")
    yield from precise_instrs_loop(k, (num - 2) // 2, pmcr)


def mem_access_loop(k: ArmKut, loop: int, pmcr: int) -> Gen[None]:
    """``mem_access_loop``: PMCR = ``pmcr``, ``loop`` loads, PMCR = 0."""
    yield from msr(k, "PMCR_EL0", pmcr)
    yield Execute(mem_access_stream(loop))
    if k.irqs_enabled:
        yield from take_irqs(k)
    yield from msr(k, "PMCR_EL0", 0)


def enable_chain_counter(k: ArmKut, even: int) -> Gen[None]:
    """``enable_chain_counter``: the odd (high) counter first, then the even one."""
    yield from msr(k, "PMCNTENSET_EL0", 1 << (even + 1))
    yield from msr(k, "PMCNTENSET_EL0", 1 << even)


def disable_chain_counter(k: ArmKut, even: int) -> Gen[None]:
    """``disable_chain_counter``: the even (low) counter first, then the odd one."""
    yield from msr(k, "PMCNTENCLR_EL0", 1 << even)
    yield from msr(k, "PMCNTENCLR_EL0", 1 << (even + 1))


# -- the overflow interrupt ----------------------------------------------------------------
def irq_handler(k: ArmKut) -> Gen[None]:
    """``irq_handler`` for the PMU PPI: tally every overflow PMOVSCLR_EL0 shows, then clear
    them all (which drops the level-sensitive line). Runs with interrupts masked."""
    overflows = yield Mrs("PMOVSCLR_EL0")
    if not isinstance(overflows, int):
        k.checker.check("MRS PMOVSCLR_EL0 (irq handler)", False, f"unexpected {overflows!r}")
        return
    for i in range(32):
        if overflows >> i & 1:
            k.stats.interrupts[i] += 1
            k.stats.bitmap |= 1 << i
    if (yield Msr("PMOVSCLR_EL0", ALL_SET_32)) is Fault.UNDEF:
        k.checker.check("MSR PMOVSCLR_EL0 (irq handler)", False, "unexpected UNDEFINED")


def take_irqs(k: ArmKut) -> Gen[None]:
    """Take each IRQ delivered since the last instruction boundary, as the CPU does with
    PSTATE.I clear. The only interrupt source on the bare machine is the PMU's PPI 23
    (``vpmu.hw.arm64.gic``), so every one is the PMU's (upstream's ``unexpected`` flags an
    INTID other than 23)."""
    while (yield WaitPmi(0)):
        yield from irq_handler(k)


def enable_irqs(k: ArmKut) -> None:
    """``gic_enable_defaults(); install_irq_handler(...); local_irq_enable();
    gic_enable_irq(23)``: the model's PPI is enabled at reset, so only PSTATE.I changes."""
    k.irqs_enabled = True


def expect_interrupts(k: ArmKut, bitmap: int) -> bool:
    """``expect_interrupts``: exactly the counters in ``bitmap`` interrupted, once each, and
    nothing else did (consumes the bitmap, as upstream's test_and_clear_bit)."""
    s = k.stats
    if s.bitmap ^ bitmap or s.unexpected:
        return False
    for i in range(32):
        if s.bitmap >> i & 1:
            s.bitmap &= ~(1 << i)
            if s.interrupts[i] != 1:
                return False
    return True
