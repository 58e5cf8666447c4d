"""kvm-unit-tests ``arm/pmu.c`` (HEAD 1da1819e) as a guest program suite.

Spec: the upstream file (kvm-unit-tests/kvm-unit-tests@1da1819e arm/pmu.c). Upstream runs
one sub-test per invocation (``pmu <sub-test>``); here each is a case on a fresh machine, in
upstream's order of ``main()``, starting with ``pmu_probe``. The event sub-tests run through
``run_event_test`` as upstream: with "32-bit overflows", and where upstream also runs it with
"64-bit overflows" (basic-event-count, mem-access-reliability, mem-access, sw-incr,
overflow-interrupt), a second case that skips without FEAT_PMUv3p5 with upstream's reason.
A case's label is ``name[prefix]``. Each upstream ``report(...)`` is one check named by its
message (chain-promotion's carry their ``subtestN`` prefix); each ``report_skip`` is a skip.

Port decisions:
- The asm loops are exact streams (``_kut_lib.precise_instrs_stream``,
  ``mem_access_stream``); ``isb`` is not an operation (an MSR lands when it retires).
- Upstream aborts on an unexpected exception; here an UNDEFINED MRS/MSR is a failed check named
  after the access, and the case goes on.
- The IRQ handler runs at the first port-operation boundary after the PPI is delivered
  (``take_irqs``), once interrupts are enabled; it reads and clears PMOVSCLR_EL0 as upstream.
- ``pmccntr64_test`` is AArch32 only and the ``cycle-counter`` CPI argument (TCG icount) is not
  given, as in kvm-unit-tests' arm/unittests.cfg: cycles must be non-zero and below 2^32.
"""

from __future__ import annotations

from collections.abc import Callable

from vpmu.guest.conformance._framework import Checker, Suite, SuiteContext, TestCase
from vpmu.guest.conformance.arm64._kut_lib import (
    ALL_SET_32,
    CHAIN,
    COUNT,
    COUNT_INT,
    CPU_CYCLES,
    ID_DFR0_PMU_V3_8_1,
    INST_PREC,
    INST_RETIRED,
    MARGIN,
    MEM_ACCESS,
    NR_SAMPLES,
    PMINTENCLR,
    PMINTENSET,
    PMU_CYCLE_IDX,
    PMU_PMCR_C,
    PMU_PMCR_E,
    PMU_PMCR_LC,
    PMU_PMCR_P,
    PRE_OVERFLOW2_32,
    PRE_OVERFLOW2_64,
    PRE_OVERFLOW_32,
    STALL_BACKEND,
    STALL_FRONTEND,
    SW_INCR,
    ArmKut,
    Gen,
    check_overflow_prerequisites,
    disable_chain_counter,
    enable_chain_counter,
    enable_irqs,
    expect_interrupts,
    is_event_supported,
    measure_instrs,
    mem_access_loop,
    mrs,
    msr,
    pmcr_lp,
    pmevcntr,
    pmevtyper,
    pmu_probe,
    pmu_reset,
    pmu_reset_stats,
    pre_overflow,
    precise_instrs_loop,
    satisfy_prerequisites,
)
from vpmu.guest.port import GuestGen

CPI_INSTRUCTIONS = tuple(range(4, 300, 32))
"""``check_cpi``'s instruction counts: 4, 36, ..., 292."""


# -- cycle-counter -------------------------------------------------------------------------
def cycle_counter(k: ArmKut) -> GuestGen:
    """The cycle counter increases between back-to-back reads and over the exact loops."""
    ok, detail = yield from check_cycles_increase(k)
    k.checker.check("Monotonically increasing cycle count", ok, detail)
    ok, detail = yield from check_cpi(k, 0)
    k.checker.check("Cycle/instruction ratio", ok, detail)


def _start_cycle_counter(k: ArmKut) -> Gen[None]:
    """Both checks' init: reset, enable only PMCCNTR, default filter."""
    yield from pmu_reset(k)
    yield from msr(k, "PMCNTENSET_EL0", 1 << PMU_CYCLE_IDX)
    yield from msr(k, "PMCCFILTR_EL0", k.pmccfiltr_default)


def check_cycles_increase(k: ArmKut) -> Gen[tuple[bool, str]]:
    """``check_cycles_increase``: ten pairs of reads, each strictly increasing."""
    yield from _start_cycle_counter(k)
    pmcr = yield from mrs(k, "PMCR_EL0")
    yield from msr(k, "PMCR_EL0", pmcr | PMU_PMCR_LC | PMU_PMCR_C | PMU_PMCR_E)
    result = (True, f"{NR_SAMPLES} pairs of reads increased")
    for _ in range(NR_SAMPLES):
        a = yield from mrs(k, "PMCCNTR_EL0")
        b = yield from mrs(k, "PMCCNTR_EL0")
        if a >= b:
            result = (False, f"Read {a} then {b}.")
            break
    pmcr = yield from mrs(k, "PMCR_EL0")
    yield from msr(k, "PMCR_EL0", pmcr & ~PMU_PMCR_E)
    return result


def check_cpi(k: ArmKut, cpi: int) -> Gen[tuple[bool, str]]:
    """``check_cpi``: every measurement of ``measure_instrs`` non-zero and below 2^32 (and
    exactly instructions x ``cpi`` when ``cpi`` > 0)."""
    pmcr = (yield from mrs(k, "PMCR_EL0")) | PMU_PMCR_LC | PMU_PMCR_C | PMU_PMCR_E
    yield from _start_cycle_counter(k)
    averages = []
    for i in CPI_INSTRUCTIONS:
        total = 0
        for _ in range(NR_SAMPLES):
            yield from msr(k, "PMCCNTR_EL0", 0)
            yield from measure_instrs(k, i, pmcr)
            cycles = yield from mrs(k, "PMCCNTR_EL0")
            if not cycles:
                return False, f"{i} instructions: cycles not incrementing!"
            if cpi > 0 and cycles != i * cpi:
                return False, f"{i} instructions: unexpected cycle count {cycles}"
            if cycles >> 32:
                return False, f"{i} instructions: cycle count bigger than 32bit! ({cycles})"
            total += cycles
        averages.append(f"{i}:{total // NR_SAMPLES}")
    return True, "instrs:avg cycles " + " ".join(averages)


# -- pmu-event-introspection ---------------------------------------------------------------
def event_introspection(k: ArmKut) -> GuestGen:
    """``test_event_introspection``: PMUv3 requires SW_INCR, CPU_CYCLES and INST_RETIRED or
    INST_PREC; PMUv3p1 adds STALL_FRONTEND and STALL_BACKEND."""
    if not k.nb_implemented_counters:
        return k.checker.skip("No event counter, skip ...")
    missing: list[str] = []
    required = (yield from _supported(k, SW_INCR, missing)) and \
        (yield from _supported(k, CPU_CYCLES, missing)) and \
        ((yield from _supported(k, INST_RETIRED, missing))
         or (yield from _supported(k, INST_PREC, missing)))
    if k.version >= ID_DFR0_PMU_V3_8_1:
        required = required and (yield from _supported(k, STALL_FRONTEND, missing)) and \
            (yield from _supported(k, STALL_BACKEND, missing))
    k.checker.check("Check required events are implemented", required,
                    "not supported: " + ", ".join(missing) if missing else "all implemented")


def _supported(k: ArmKut, event: int, missing: list[str]) -> Gen[bool]:
    """``is_event_supported(event, true)``: the warning becomes part of the detail."""
    ok = yield from is_event_supported(k, event)
    if not ok:
        missing.append(f"event {event:#x} is not supported")
    return ok


# -- pmu-event-counter-config --------------------------------------------------------------
def event_counter_config(k: ArmKut) -> GuestGen:
    """``test_event_counter_config``: PMSELR_EL0 selects what PMXEVTYPER/PMXEVCNTR reach;
    a counter programmed with an unsupported event still reads back its value."""
    if not k.nb_implemented_counters:
        return k.checker.skip("No event counter, skip ...")
    yield from pmu_reset(k)
    yield from msr(k, "PMSELR_EL0", 0)
    yield from msr(k, "PMXEVTYPER_EL0", 0xEA)
    yield from msr(k, "PMXEVCNTR_EL0", 0xDEADBEEF)
    typer = yield from mrs(k, pmevtyper(0))
    k.checker.check("PMESELR/PMXEVTYPER/PMEVTYPERn", typer & 0xFFF == 0xEA,
                    f"PMEVTYPER0_EL0 = {typer:#x}")
    k.checker.equal("PMESELR/PMXEVCNTR/PMEVCNTRn", (yield from mrs(k, pmevcntr(0))),
                    0xDEADBEEF)
    unsupported = None
    for i in range(0x40):
        if not (yield from is_event_supported(k, i)):
            unsupported = i
            break
    if unsupported is None:
        return k.checker.skip("pmevtyper: all events within [0x0, 0x3F] are supported")
    yield from msr(k, "PMSELR_EL0", 0)
    yield from msr(k, "PMXEVCNTR_EL0", unsupported)
    yield from mrs(k, "PMXEVCNTR_EL0")
    k.checker.equal("read of a counter programmed with unsupported event",
                    (yield from mrs(k, "PMXEVCNTR_EL0")), unsupported)


# -- pmu-basic-event-count -----------------------------------------------------------------
def basic_event_count(k: ArmKut, at64: bool) -> GuestGen:
    """``test_basic_event_count``: the SET/CLR pairs keep only implemented counters, PMCR.P
    and .C read 0, and over a 20-iteration loop only the preset CPU_CYCLES counter
    overflows."""
    if not (yield from satisfy_prerequisites(k, (CPU_CYCLES, INST_RETIRED))) or \
            not check_overflow_prerequisites(k, at64):
        return
    c = k.checker
    implemented = k.implemented_counter_mask
    non_implemented = ~(1 << 31 | implemented) & ALL_SET_32
    yield from msr(k, pmevtyper(0), CPU_CYCLES | k.exclude_el0)
    yield from msr(k, pmevtyper(1), INST_RETIRED | k.exclude_el0)
    yield from msr(k, "PMCNTENCLR_EL0", ALL_SET_32)
    clr, st = (yield from mrs(k, "PMCNTENCLR_EL0")), (yield from mrs(k, "PMCNTENSET_EL0"))
    c.check("pmcntenclr: disable all counters", not clr and not st,
            f"CLR {clr:#x}, SET {st:#x}")
    lp = pmcr_lp(at64)
    yield from msr(k, "PMCR_EL0", k.pmcr_ro | PMU_PMCR_LC | PMU_PMCR_C | PMU_PMCR_P | lp)
    c.equal("pmcr: reset counters", (yield from mrs(k, "PMCR_EL0")),
            k.pmcr_ro | PMU_PMCR_LC | lp)
    yield from msr(k, pmevcntr(0), pre_overflow(at64))
    c.equal("counter #0 preset to pre-overflow value", (yield from mrs(k, pmevcntr(0))),
            pre_overflow(at64))
    c.equal("counter #1 is 0", (yield from mrs(k, pmevcntr(1))), 0)
    yield from msr(k, "PMCNTENSET_EL0", implemented | non_implemented)
    yield from _check_set_clr(k, "pmcntenset: enabled implemented_counters", implemented)
    yield from msr(k, "PMCNTENCLR_EL0", ~0x3)
    yield from _check_set_clr(k, "pmcntenset: just enabled #0 and #1", 0x3)
    yield from msr(k, "PMOVSCLR_EL0", ALL_SET_32)
    c.equal("check overflow reg is 0", (yield from mrs(k, "PMOVSCLR_EL0")), 0)
    yield from msr(k, PMINTENCLR, ALL_SET_32)
    c.equal("pmintenclr_el1=0, all interrupts disabled", (yield from mrs(k, PMINTENCLR)), 0)
    yield from msr(k, PMINTENSET, implemented | non_implemented)
    c.equal("overflow interrupts enabled on all implemented counters",
            (yield from mrs(k, PMINTENSET)), implemented)
    yield from precise_instrs_loop(k, 20, k.pmcr_ro | PMU_PMCR_E)
    values = yield from _counters(k)
    ovs = yield from mrs(k, "PMOVSCLR_EL0")
    c.check("check overflow happened on #0 only", ovs == 0x1,
            f"overflow reg {ovs:#x}; {values}")


def _check_set_clr(k: ArmKut, name: str, expected: int) -> Gen[None]:
    """PMCNTENSET_EL0 and PMCNTENCLR_EL0 read the same, ``expected``."""
    st = yield from mrs(k, "PMCNTENSET_EL0")
    clr = yield from mrs(k, "PMCNTENCLR_EL0")
    k.checker.check(name, st == clr == expected,
                    f"SET {st:#x}, CLR {clr:#x}, expected {expected:#x}")


def _counters(k: ArmKut) -> Gen[str]:
    """Upstream's ``report_info`` of counters #0 and #1, for a check's detail."""
    c0 = yield from mrs(k, pmevcntr(0))
    c1 = yield from mrs(k, pmevcntr(1))
    return f"#0 = {c0:#x}, #1 = {c1:#x}"


# -- pmu-mem-access ------------------------------------------------------------------------
def mem_access(k: ArmKut, at64: bool) -> GuestGen:
    """``test_mem_access``: two MEM_ACCESS counters agree over 20 loads, and both overflow
    from the pre-overflow value."""
    if not (yield from satisfy_prerequisites(k, (MEM_ACCESS, MEM_ACCESS))) or \
            not check_overflow_prerequisites(k, at64):
        return
    pmcr = k.pmcr_ro | PMU_PMCR_E | pmcr_lp(at64)
    yield from pmu_reset(k)
    yield from msr(k, pmevtyper(0), MEM_ACCESS | k.exclude_el0)
    yield from msr(k, pmevtyper(1), MEM_ACCESS | k.exclude_el0)
    yield from msr(k, "PMCNTENSET_EL0", 0x3)
    yield from mem_access_loop(k, 20, pmcr)
    c0 = yield from mrs(k, pmevcntr(0))
    c1 = yield from mrs(k, pmevcntr(1))
    ovs = yield from mrs(k, "PMOVSCLR_EL0")
    k.checker.check("Ran 20 mem accesses", c0 == c1 and c0 >= 20 and not ovs,
                    f"#0 = {c0}, #1 = {c1}, overflow {ovs:#x}")
    yield from pmu_reset(k)
    yield from msr(k, pmevcntr(0), pre_overflow(at64))
    yield from msr(k, pmevcntr(1), pre_overflow(at64))
    yield from msr(k, "PMCNTENSET_EL0", 0x3)
    yield from mem_access_loop(k, 20, pmcr)
    ovs = yield from mrs(k, "PMOVSCLR_EL0")
    values = yield from _counters(k)
    k.checker.check("Ran 20 mem accesses with expected overflows on both counters",
                    ovs == 0x3, f"overflow {ovs:#x}; {values}")


# -- pmu-mem-access-reliability ------------------------------------------------------------
def mem_access_reliability(k: ArmKut, at64: bool) -> GuestGen:
    """``test_mem_access_reliability``: 100 loops of COUNT loads from PRE_OVERFLOW2 never
    overflow (the count stays within COUNT + MARGIN)."""
    if not (yield from satisfy_prerequisites(k, (MEM_ACCESS,))) or \
            not check_overflow_prerequisites(k, at64):
        return
    start = PRE_OVERFLOW2_64 if at64 else PRE_OVERFLOW2_32
    all_set = 0xFFFF_FFFF_FFFF_FFFF if at64 else ALL_SET_32
    lo, hi, overflow = k.pmevcntr_mask, 0, False
    yield from pmu_reset(k)
    yield from msr(k, pmevtyper(0), MEM_ACCESS | k.exclude_el0)
    for _ in range(100):
        yield from pmu_reset(k)
        yield from msr(k, pmevcntr(0), start)
        yield from msr(k, "PMCNTENSET_EL0", 0x1)
        yield from mem_access_loop(k, COUNT, k.pmcr_ro | PMU_PMCR_E | pmcr_lp(at64))
        value = yield from mrs(k, pmevcntr(0))
        if value >= start:
            events = value - start
        else:  # an unexpected overflow
            events, overflow = value + all_set - start, True
        lo, hi = min(lo, events), max(hi, events)
    k.checker.check("mem_access count is reliable", not overflow,
                    f"overflow={overflow} min={lo} max={hi} expected={COUNT} "
                    f"acceptable margin={MARGIN}")


# -- pmu-sw-incr ---------------------------------------------------------------------------
def sw_incr(k: ArmKut, at64: bool) -> GuestGen:
    """``test_sw_incr``: PMSWINC_EL0 increments only with PMCR.E; 100 increments of a preset
    counter overflow it once."""
    if not (yield from satisfy_prerequisites(k, (SW_INCR, SW_INCR))) or \
            not check_overflow_prerequisites(k, at64):
        return
    preset = pre_overflow(at64)
    cntr0 = (preset + 100) & k.pmevcntr_mask
    yield from pmu_reset(k)
    yield from msr(k, pmevtyper(0), SW_INCR | k.exclude_el0)
    yield from msr(k, pmevtyper(1), SW_INCR | k.exclude_el0)
    yield from msr(k, "PMCNTENSET_EL0", 0x3)
    yield from msr(k, pmevcntr(0), preset)
    for _ in range(100):
        yield from msr(k, "PMSWINC_EL0", 0x1)
    k.checker.equal("PWSYNC does not increment if PMCR.E is unset",
                    (yield from mrs(k, pmevcntr(0))), preset)
    yield from pmu_reset(k)
    yield from msr(k, pmevcntr(0), preset)
    yield from msr(k, "PMCNTENSET_EL0", 0x3)
    yield from msr(k, "PMCR_EL0", k.pmcr_ro | PMU_PMCR_E | pmcr_lp(at64))
    for _ in range(100):
        yield from msr(k, "PMSWINC_EL0", 0x3)
    k.checker.equal("counter #0 after + 100 SW_INCR", (yield from mrs(k, pmevcntr(0))), cntr0)
    k.checker.equal("counter #1 after + 100 SW_INCR", (yield from mrs(k, pmevcntr(1))), 100)
    k.checker.equal("overflow on counter #0 after 100 SW_INCR",
                    (yield from mrs(k, "PMOVSCLR_EL0")), 0x1)


# -- pmu-chained-counters ------------------------------------------------------------------
def chained_counters(k: ArmKut, at64: bool) -> GuestGen:
    """``test_chained_counters``: CPU_CYCLES on #0 overflowing increments CHAIN on #1: 0 to 1,
    1 to 2, and all-ones wraps to 0 with an overflow of its own."""
    del at64  # upstream's ``bool unused``
    if not (yield from satisfy_prerequisites(k, (CPU_CYCLES, CHAIN))):
        return
    c, pmcr = k.checker, k.pmcr_ro | PMU_PMCR_E
    yield from pmu_reset(k)
    yield from msr(k, pmevtyper(0), CPU_CYCLES | k.exclude_el0)
    yield from msr(k, pmevtyper(1), CHAIN | k.exclude_el0)
    yield from msr(k, pmevcntr(0), PRE_OVERFLOW_32)
    yield from enable_chain_counter(k, 0)
    yield from precise_instrs_loop(k, 22, pmcr)
    c.equal("CHAIN counter #1 incremented", (yield from mrs(k, pmevcntr(1))), 1)
    c.equal("overflow recorded for chained incr #1", (yield from mrs(k, "PMOVSCLR_EL0")), 0x1)
    yield from pmu_reset(k)
    yield from msr(k, pmevcntr(0), PRE_OVERFLOW_32)
    yield from msr(k, pmevcntr(1), 0x1)
    yield from enable_chain_counter(k, 0)
    yield from precise_instrs_loop(k, 22, pmcr)
    c.equal("CHAIN counter #1 set to 2", (yield from mrs(k, pmevcntr(1))), 2)
    c.equal("overflow recorded for chained incr #2", (yield from mrs(k, "PMOVSCLR_EL0")), 0x1)
    yield from msr(k, pmevcntr(0), PRE_OVERFLOW_32)
    yield from msr(k, pmevcntr(1), k.pmevcntr_mask)
    yield from precise_instrs_loop(k, 22, pmcr)
    c.equal("CHAIN counter #1 wrapped", (yield from mrs(k, pmevcntr(1))), 0)
    c.equal("overflow on even and odd counters", (yield from mrs(k, "PMOVSCLR_EL0")), 0x3)


# -- pmu-chained-sw-incr -------------------------------------------------------------------
def chained_sw_incr(k: ArmKut, at64: bool) -> GuestGen:
    """``test_chained_sw_incr``: 100 SW_INCRs from PRE_OVERFLOW_32 carry once into CHAIN; from
    all-ones the CHAIN counter carries into bit 32 (or wraps) and overflows too."""
    del at64  # upstream's ``bool unused``
    if not (yield from satisfy_prerequisites(k, (SW_INCR, CHAIN))):
        return
    cntr0 = (PRE_OVERFLOW_32 + 100) & k.pmevcntr_mask
    cntr1 = (ALL_SET_32 + 1) & k.pmevcntr_mask
    yield from pmu_reset(k)
    yield from msr(k, pmevtyper(0), SW_INCR | k.exclude_el0)
    yield from msr(k, pmevtyper(1), CHAIN | k.exclude_el0)
    yield from enable_chain_counter(k, 0)
    yield from msr(k, pmevcntr(0), PRE_OVERFLOW_32)
    yield from _swinc_100(k)
    ovs = yield from mrs(k, "PMOVSCLR_EL0")
    c1 = yield from mrs(k, pmevcntr(1))
    k.checker.check("overflow and chain counter incremented after 100 SW_INCR/CHAIN",
                    ovs == 0x1 and c1 == 1, f"overflow {ovs:#x}, #1 = {c1:#x}")
    yield from pmu_reset(k)
    yield from msr(k, pmevcntr(0), PRE_OVERFLOW_32)
    yield from msr(k, pmevcntr(1), ALL_SET_32)
    yield from enable_chain_counter(k, 0)
    yield from _swinc_100(k)
    ovs = yield from mrs(k, "PMOVSCLR_EL0")
    c0 = yield from mrs(k, pmevcntr(0))
    c1 = yield from mrs(k, pmevcntr(1))
    k.checker.check("expected overflows and values after 100 SW_INCR/CHAIN",
                    ovs == 0x3 and c0 == cntr0 and c1 == cntr1,
                    f"overflow {ovs:#x}, #0 = {c0:#x}, #1 = {c1:#x}; expected 0x3, "
                    f"{cntr0:#x}, {cntr1:#x}")


def _swinc_100(k: ArmKut) -> Gen[None]:
    """PMCR.E on, then 100 writes of 0x1 to PMSWINC_EL0."""
    yield from msr(k, "PMCR_EL0", k.pmcr_ro | PMU_PMCR_E)
    for _ in range(100):
        yield from msr(k, "PMSWINC_EL0", 0x1)


# -- pmu-chain-promotion -------------------------------------------------------------------
def chain_promotion(k: ArmKut, at64: bool) -> GuestGen:
    """``test_chain_promotion``: CHAIN counts only while both counters of the pair are
    enabled, and follows enabling, disabling and retyping between two loops."""
    del at64  # upstream's ``bool unused``
    if not (yield from satisfy_prerequisites(k, (MEM_ACCESS, CHAIN))):
        return
    for subtest in CHAIN_PROMOTION_SUBTESTS:
        yield from subtest(k)


def _loop(k: ArmKut) -> Gen[None]:
    """``mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMU_PMCR_E)``."""
    yield from mem_access_loop(k, COUNT, k.pmcr_ro | PMU_PMCR_E)


def _promotion_1(k: ArmKut) -> Gen[None]:
    """Only the CHAIN counter enabled: the even counter does not count."""
    yield from pmu_reset(k)
    yield from msr(k, pmevtyper(0), MEM_ACCESS | k.exclude_el0)
    yield from msr(k, pmevtyper(1), CHAIN | k.exclude_el0)
    yield from msr(k, "PMCNTENSET_EL0", 0x2)
    yield from _loop(k)
    k.checker.equal("subtest1: chain counter not counting if even counter is disabled",
                    (yield from mrs(k, pmevcntr(0))), 0)


def _promotion_2(k: ArmKut) -> Gen[None]:
    """Only the even counter enabled: its overflow does not reach the odd one."""
    yield from pmu_reset(k)
    yield from msr(k, pmevcntr(0), PRE_OVERFLOW_32)
    yield from msr(k, "PMCNTENSET_EL0", 0x1)
    yield from _loop(k)
    c1 = yield from mrs(k, pmevcntr(1))
    ovs = yield from mrs(k, "PMOVSCLR_EL0")
    k.checker.check("subtest2: odd counter did not increment on overflow if disabled",
                    not c1 and ovs == 0x1, f"#1 = {c1:#x}, overflow {ovs:#x}")


def _promotion_3(k: ArmKut) -> Gen[None]:
    """Chained for the first loop, unchained for the second (which overflows)."""
    yield from pmu_reset(k)
    yield from msr(k, pmevcntr(0), PRE_OVERFLOW2_32)
    yield from enable_chain_counter(k, 0)
    yield from _loop(k)
    yield from disable_chain_counter(k, 0)
    yield from msr(k, "PMCNTENSET_EL0", 0x1)
    yield from _loop(k)
    k.checker.equal("subtest3: should have triggered an overflow on #0",
                    (yield from mrs(k, "PMOVSCLR_EL0")), 0x1)
    k.checker.equal("subtest3: CHAIN counter #1 shouldn't have incremented",
                    (yield from mrs(k, pmevcntr(1))), 0)


def _promotion_4(k: ArmKut) -> Gen[None]:
    """Unchained for the first loop, chained for the second (which overflows)."""
    yield from pmu_reset(k)
    yield from msr(k, "PMCNTENSET_EL0", 0x1)
    yield from msr(k, pmevcntr(0), PRE_OVERFLOW2_32)
    yield from _loop(k)
    yield from msr(k, "PMCNTENCLR_EL0", 0x1)
    yield from enable_chain_counter(k, 0)
    yield from _loop(k)
    yield from _check_promoted(k, "subtest4: CHAIN counter enabled: CHAIN counter was "
                                  "incremented and overflow")


def _promotion_5(k: ArmKut) -> Gen[None]:
    """#1 counts CPU_CYCLES for the first loop, then is retyped CHAIN from 0."""
    yield from pmu_reset(k)
    yield from msr(k, pmevtyper(0), MEM_ACCESS | k.exclude_el0)
    yield from msr(k, pmevtyper(1), CPU_CYCLES | k.exclude_el0)
    yield from msr(k, "PMCNTENSET_EL0", 0x3)
    yield from msr(k, pmevcntr(0), PRE_OVERFLOW2_32)
    yield from _loop(k)
    yield from msr(k, "PMCNTENCLR_EL0", 0x3)
    yield from msr(k, pmevtyper(1), CHAIN | k.exclude_el0)
    yield from msr(k, pmevcntr(1), 0x0)
    yield from enable_chain_counter(k, 0)
    yield from _loop(k)
    yield from _check_promoted(k, "subtest5: 32b->64b: CHAIN counter incremented and overflow")


def _promotion_6(k: ArmKut) -> Gen[None]:
    """#1 counts CHAIN for the first loop, then is retyped CPU_CYCLES."""
    yield from pmu_reset(k)
    yield from msr(k, pmevtyper(0), MEM_ACCESS | k.exclude_el0)
    yield from msr(k, pmevtyper(1), CHAIN | k.exclude_el0)
    yield from msr(k, pmevcntr(0), PRE_OVERFLOW2_32)
    yield from enable_chain_counter(k, 0)
    yield from _loop(k)
    yield from disable_chain_counter(k, 0)
    yield from msr(k, pmevtyper(1), CPU_CYCLES | k.exclude_el0)
    yield from msr(k, "PMCNTENSET_EL0", 0x3)
    yield from _loop(k)
    k.checker.equal("subtest6: overflow is expected on counter 0",
                    (yield from mrs(k, "PMOVSCLR_EL0")), 1)


def _check_promoted(k: ArmKut, name: str) -> Gen[None]:
    """The CHAIN counter reads 1 and only #0 overflowed."""
    c1 = yield from mrs(k, pmevcntr(1))
    ovs = yield from mrs(k, "PMOVSCLR_EL0")
    k.checker.check(name, c1 == 1 and ovs == 0x1, f"#1 = {c1:#x}, overflow {ovs:#x}")


CHAIN_PROMOTION_SUBTESTS = (_promotion_1, _promotion_2, _promotion_3, _promotion_4,
                            _promotion_5, _promotion_6)


# -- pmu-overflow-interrupt ----------------------------------------------------------------
def overflow_interrupt(k: ArmKut, at64: bool) -> GuestGen:
    """``test_overflow_interrupt``: the PPI fires exactly once per overflowing counter iff
    its PMINTENSET bit is set; with CHAIN the pair interrupts as a 64-bit counter, and with
    PMCR.LP the odd counter does not chain."""
    if not (yield from satisfy_prerequisites(k, (MEM_ACCESS, SW_INCR))) or \
            not check_overflow_prerequisites(k, at64):
        return
    enable_irqs(k)
    yield from pmu_reset(k)
    yield from msr(k, pmevtyper(0), MEM_ACCESS | k.exclude_el0)
    yield from msr(k, pmevtyper(1), SW_INCR | k.exclude_el0)
    yield from msr(k, "PMCNTENSET_EL0", 0x3)
    yield from _preset_both(k, at64)
    yield from _interrupts_disabled(k, at64)
    yield from _interrupts_enabled(k, at64)
    yield from _interrupts_chained(k, at64)


def _preset_both(k: ArmKut, at64: bool) -> Gen[None]:
    """Counters #0 and #1 at the pre-overflow value."""
    yield from msr(k, pmevcntr(0), pre_overflow(at64))
    yield from msr(k, pmevcntr(1), pre_overflow(at64))


def _expect(k: ArmKut, name: str, bitmap: int) -> None:
    detail = k.stats.describe()
    k.checker.check(name, expect_interrupts(k, bitmap), f"{detail}; expected {bitmap:#x}")


def _interrupts_disabled(k: ArmKut, at64: bool) -> Gen[None]:
    """PMINTENSET_EL1 == 0: overflows from loads and from SW_INCR raise nothing."""
    pmcr = k.pmcr_ro | PMU_PMCR_E | pmcr_lp(at64)
    yield from mem_access_loop(k, COUNT_INT, pmcr)
    _expect(k, "no overflow interrupt after preset", 0)
    yield from msr(k, "PMCR_EL0", pmcr)
    for _ in range(100):
        yield from msr(k, "PMSWINC_EL0", 0x2)
    yield from msr(k, "PMCR_EL0", k.pmcr_ro)
    _expect(k, "no overflow interrupt after counting", 0)


def _interrupts_enabled(k: ArmKut, at64: bool) -> Gen[None]:
    """PMINTENSET_EL1 all set: one interrupt each for #0 (loads) and #1 (SW_INCR)."""
    pmcr = k.pmcr_ro | PMU_PMCR_E | pmcr_lp(at64)
    pmu_reset_stats(k)
    yield from _preset_both(k, at64)
    yield from msr(k, "PMOVSCLR_EL0", ALL_SET_32)
    yield from msr(k, PMINTENSET, ALL_SET_32)
    yield from mem_access_loop(k, COUNT_INT, pmcr)
    yield from msr(k, "PMCR_EL0", pmcr)
    for _ in range(100):
        yield from msr(k, "PMSWINC_EL0", 0x3)
    yield from mem_access_loop(k, COUNT_INT, k.pmcr_ro)
    _expect(k, "overflow interrupts expected on #0 and #1", 0x3)


def _interrupts_chained(k: ArmKut, at64: bool) -> Gen[None]:
    """#1 as CHAIN: an interrupt on #0 only; from all-ones, with LP = 0 #1 wraps and
    interrupts too, with LP = 1 it does not chain."""
    pmcr = k.pmcr_ro | PMU_PMCR_E | pmcr_lp(at64)
    all_set = k.pmevcntr_mask
    pmu_reset_stats(k)
    yield from msr(k, pmevtyper(1), CHAIN | k.exclude_el0)
    yield from msr(k, pmevcntr(0), pre_overflow(at64))
    yield from mem_access_loop(k, COUNT_INT, pmcr)
    _expect(k, "expect overflow interrupt", 0x1)
    pmu_reset_stats(k)
    yield from msr(k, pmevcntr(0), pre_overflow(at64))
    yield from msr(k, pmevcntr(1), all_set)
    yield from mem_access_loop(k, COUNT_INT, pmcr)
    c1 = yield from mrs(k, pmevcntr(1))
    if at64:
        _expect(k, "expect overflow interrupt on even counter", 0x1)
        k.checker.equal("Odd counter did not change", c1, all_set)
    else:
        _expect(k, "expect overflow interrupt on even and odd counter", 0x3)
        k.checker.check("Odd counter wrapped", c1 != all_set, f"#1 = {c1:#x}")


# -- the suite -----------------------------------------------------------------------------
def _case(name: str, body: Callable[[ArmKut], GuestGen]) -> TestCase:
    """A sub-test run as ``main()`` runs it: ``pmu_probe``, then the body."""
    def run(checker: Checker, ctx: SuiteContext) -> GuestGen:
        del ctx
        k = yield from pmu_probe(checker)
        if k is not None:
            yield from body(k)

    return TestCase(name, run, doc=(body.__doc__ or "").strip())


def _event_case(name: str, body: Callable[[ArmKut, bool], GuestGen],
                at64: bool) -> TestCase:
    """``run_event_test``: the body with ``overflow_at_64bits``, labelled by its prefix."""
    prefix = "64-bit overflows" if at64 else "32-bit overflows"
    return _case(f"{name}[{prefix}]", lambda k: body(k, at64))


EVENT_TESTS: tuple[tuple[str, Callable[[ArmKut, bool], GuestGen], bool], ...] = (
    ("pmu-basic-event-count", basic_event_count, True),
    ("pmu-mem-access-reliability", mem_access_reliability, True),
    ("pmu-mem-access", mem_access, True),
    ("pmu-sw-incr", sw_incr, True),
    ("pmu-chained-counters", chained_counters, False),
    ("pmu-chained-sw-incr", chained_sw_incr, False),
    ("pmu-chain-promotion", chain_promotion, False),
    ("pmu-overflow-interrupt", overflow_interrupt, True),
)
"""``main()``'s event sub-tests in its order, and whether each also runs at 64 bits."""

SUITE = Suite(
    "kvm-unit-tests/arm/pmu",
    source="kvm-unit-tests 1da1819e arm/pmu.c",
    cases=(
        _case("cycle-counter", cycle_counter),
        _case("pmu-event-introspection", event_introspection),
        _case("pmu-event-counter-config", event_counter_config),
        *(case for name, body, both in EVENT_TESTS
          for case in ([_event_case(name, body, False), _event_case(name, body, True)] if both
                       else [_event_case(name, body, False)])),
    ),
)
"""The port: every AArch64 sub-test of ``main()``, in its order."""
