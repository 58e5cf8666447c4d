"""kvm-unit-tests ``lib/x86/pmu.{c,h}`` and the helpers of ``x86/pmu.c``, as guest code.

Discovery, the suite's init, the event tables with their pass ranges, and the
start/stop/measure helpers the ported tests of ``kut_pmu`` share. See ``kut_pmu`` for the port
decisions.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from vpmu.arch.faults import Fault
from vpmu.arch.x86 import events as ev
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import (
    CPUID_1_EDX_CLFLUSH,
    CPUID_7_EDX_SPEC_CTRL,
    CPUID_8000_0008_EBX_IBPB,
    FIXED_IDX_BASE,
    GuestPmuView,
)
from vpmu.guest.conformance._framework import (
    Checker,
    Expectations,
    SuiteContext,
    discover_pmu,
)
from vpmu.guest.port import Cpuid, Execute, Op, Rdmsr, WaitPmi, Wrmsr
from vpmu.workloads.streams import Stream, kut_loop, loop_self

T = TypeVar("T")
Gen: TypeAlias = Generator[Op, Any, T]
"""A guest sub-program returning a ``T``."""

U64 = (1 << 64) - 1
"""WRMSR takes EDX:EAX: the C code's negative presets are these 64-bit patterns."""

# Constants of kvm-unit-tests x86/pmu.c unless stated otherwise.
N = 1_000_000
"""Iterations of ``loop`` (``#define N``)."""
LOOP_INSNS = 10 * N + 17
"""Exact instructions of the v2+ measured blob, disabling WRMSR included."""
LOOP_BRANCHES = N + 2
"""Exact branches of the measured blob."""
FEWER_THAN_LOOP_INSNS = 10 * N
"""Tests 8 and 9 require fewer than 10N instructions. Upstream compares with the instructions
event's lower bound, which adjust_events_range raises to LOOP_INSNS on Intel v2+; the section's
10N is the stricter bound and is used on every PMU."""
WARM_UP_RUNS = 10
REF_CALIBRATION_LOOPS = 1_000_000_000
"""set_ref_cycle_expectations' ``loop .`` count."""
KVM_FEP_INSNS, KVM_FEP_BRANCHES = 22, 5
"""check_emulated_instr's presets and exact deltas."""
RDPMC_VALUE = 0xFF01_2345_6789
"""check_rdpmc's ``val``."""
WRITE_WIDTH_VALUE = 0xFFFF_FF01_2345_6789
"""check_gp_counters_write_width's ``val64``."""
PMI_VECTOR = 32
"""LVTPC of the test's PMI handler: vector 32, fixed delivery, unmasked."""
PMI_POLL_TIMEOUT_NS = 100_000 * 70
"""check_irq's 100,000 PAUSEs; estimate: ~140 cycles per PAUSE (Skylake and later, Intel
optimization manual) at ~2 GHz."""
AMD64_NUM_COUNTERS, AMD64_NUM_COUNTERS_CORE = 4, 6
"""K7 counters; F15H counters without PerfMonV2 (lib/x86/pmu.h)."""
OVERFLOW_ERRATUM_SLACK = 14
"""With the Atom overcount erratum the overflowed counter must be < 14."""
AMD_OVERFLOW_SLACK, AMD_OVERFLOW_ALL_ONES = 7, (1 << 48) - 1
"""AMD: the overflowed counter reads 0xFFFFFFFFFFFF or < 7."""

# Event-select bits (lib/x86/pmu.h; Intel SDM Vol. 3B chapter 20).
EVNTSEL_USR, EVNTSEL_OS, EVNTSEL_INT, EVNTSEL_EN = 1 << 16, 1 << 17, 1 << 20, 1 << 22
EVNTSEL_CMASK_SHIFT = 24
OS_USR = EVNTSEL_OS | EVNTSEL_USR

# Atom overcount errata, family 6 (lib/x86/pmu.c).



@dataclass(frozen=True, slots=True)
class PmuEvent:
    """x86/pmu.c ``struct pmu_event``: name, ``umask << 8 | event`` (or fixed MSR), range."""

    name: str
    unit_sel: int
    lo: int
    hi: int

    def bounded(self, lo: int | None, hi: int | None) -> PmuEvent:
        """This event with a new lower and/or upper bound (None keeps it)."""
        return PmuEvent(self.name, self.unit_sel, self.lo if lo is None else lo,
                        self.hi if hi is None else hi)


CORE_CYCLES, INSTRUCTIONS, REF_CYCLES = "core cycles", "instructions", "ref cycles"
LLC_MISSES, BRANCHES, BRANCH_MISSES = "llc misses", "branches", "branch misses"

# Pass ranges: x86/pmu.c's event tables. Position in the Intel table = CPUID.0xA:EBX bit.
INTEL_GP_EVENTS = (
    PmuEvent(CORE_CYCLES, 0x003C, N, 50 * N),
    PmuEvent(INSTRUCTIONS, 0x00C0, 10 * N, 102 * N // 10),
    PmuEvent(REF_CYCLES, 0x013C, N, 30 * N),
    PmuEvent("llc references", 0x4F2E, 1, 25 * N // 10),
    PmuEvent(LLC_MISSES, 0x412E, 1, N),
    PmuEvent(BRANCHES, 0x00C4, N, 11 * N // 10),
    PmuEvent(BRANCH_MISSES, 0x00C5, 1, N // 10),
)
AMD_GP_EVENTS = (
    PmuEvent(CORE_CYCLES, 0x0076, N, 50 * N),
    PmuEvent(INSTRUCTIONS, 0x00C0, 10 * N, 102 * N // 10),
    PmuEvent(BRANCHES, 0x00C2, N, 11 * N // 10),
    PmuEvent(BRANCH_MISSES, 0x00C3, 1, N // 10),
)
FIXED_EVENTS = (
    PmuEvent("fixed 0", msrs.IA32_FIXED_CTR0, 10 * N, 102 * N // 10),
    PmuEvent("fixed 1", msrs.IA32_FIXED_CTR0 + 1, N, 30 * N),
    PmuEvent("fixed 2", msrs.IA32_FIXED_CTR0 + 2, N // 10, 30 * N),
)
"""At most three fixed counters are tested (x86/pmu.c's fixed-event table has three)."""

LOOP = kut_loop(N)
"""The measured blob between the enabling and the disabling WRMSR (10N+16 instructions)."""
_FEP_HEAD = Stream("kvm_fep_asm head", {ev.INSTRUCTIONS: 8, ev.BRANCHES: 5, ev.CYCLES: 8})
"""MOV EDI, MOV EAX, CMP and five forced-emulated not-taken JNEs; cycles are an estimate."""
_FEP_MOV = Stream("mov $0xa, %eax", {ev.INSTRUCTIONS: 1, ev.CYCLES: 1})
_FEP_TAIL = Stream("kvm_fep_asm tail", {ev.INSTRUCTIONS: 3, ev.CYCLES: 3})
"""MOV ECX and two XORs before the disabling WRMSR: 8 + 5 x 2 + 3 + 1 = 22."""

PRIMARY, FW_WRITE, AMD_K7 = "", "fw_write", "amd_k7"
"""Which GP counter MSRs a case uses: lib/x86/pmu.c's, the PMCi base, or AMD's K7 MSRs."""


@dataclass(slots=True)
class Counter:
    """x86/pmu.c ``pmu_counter_t``: counter MSR, event-select config, last count."""

    ctr: int
    config: int
    count: int = 0


@dataclass(slots=True)
class Kut:
    """One case's PMU as lib/x86/pmu.c's ``struct pmu_caps`` holds it, and its checker."""

    checker: Checker
    expectations: Expectations
    view: GuestPmuView
    n_gp: int
    ctr_base: int
    sel_base: int
    stride: int
    """MSR distance between counter i and i+1 (2 for AMD's interleaved F15H MSRs)."""
    global_ctl: int = 0
    global_status: int = 0
    global_status_clr: int = 0
    """0: no global MSRs (Intel v1, AMD without PerfMonV2)."""
    insns_erratum: bool = False
    branches_erratum: bool = False
    events: tuple[PmuEvent, ...] = ()

    def gp_ctr(self, i: int) -> int:
        """``MSR_GP_COUNTERx(i)``."""
        return self.ctr_base + self.stride * i

    def gp_sel(self, i: int) -> int:
        """``MSR_GP_EVENT_SELECTx(i)``."""
        return self.sel_base + self.stride * i

    def is_gp(self, ctr: int) -> bool:
        """x86/pmu.c ``is_gp``: every AMD counter; Intel below the fixed MSRs or at PMCi."""
        return not self.view.is_intel or ctr < msrs.IA32_FIXED_CTR0 or ctr >= msrs.IA32_A_PMC0

    def global_idx(self, ctr: int) -> int:
        """``event_to_global_idx``: GP i is i, fixed i is 32 + i."""
        if self.is_gp(ctr):
            return (ctr - self.ctr_base) // self.stride
        return ctr - msrs.IA32_FIXED_CTR0 + FIXED_IDX_BASE

    @property
    def n_fixed(self) -> int:
        """``fixed_counters_num``: the fixed counters that have a table entry."""
        return min(self.view.n_fixed, len(FIXED_EVENTS))

    @property
    def full_writes(self) -> bool:
        """``pmu_use_full_writes``: the counters are written through PMCi."""
        return self.ctr_base == msrs.IA32_A_PMC0

    @property
    def gp_mask(self) -> int:
        """Value mask of a GP counter."""
        return (1 << self.view.gp_width) - 1

    def available(self, i: int) -> bool:
        """``pmu_gp_counter_is_available``: Intel EBX rule; AMD ``i < nr_gp`` (lib/x86/pmu.h)."""
        if self.view.is_intel:
            return self.view.arch_event_available(i)
        return i < self.view.n_gp

    def event(self, name: str) -> PmuEvent:
        """The (adjusted) table entry called ``name``."""
        return next(e for e in self.events if e.name == name)


# -- register access ----------------------------------------------------------------------
def _wrmsr(k: Kut, addr: int, value: int) -> Gen[None]:
    """WRMSR that upstream expects to succeed: a #GP is a failed check."""
    value &= U64
    if (yield Wrmsr(addr, value)) is Fault.GP:
        k.checker.check(f"WRMSR {addr:#x} <- {value:#x}", False, "unexpected #GP")


def _rdmsr(k: Kut, addr: int) -> Gen[int]:
    """RDMSR that upstream expects to succeed: a #GP is a failed check and reads 0."""
    value = yield Rdmsr(addr)
    if isinstance(value, int):
        return value
    k.checker.check(f"RDMSR {addr:#x}", False, f"unexpected {value!r}")
    return 0


# -- lib/x86/pmu.c: discovery and init ----------------------------------------------------
def _pmu_caps(checker: Checker, expectations: Expectations, view: GuestPmuView) -> Kut:
    """``pmu_init``'s MSR bases and global MSRs (lib/x86/pmu.c)."""
    if view.is_intel:
        k = Kut(checker, expectations, view, view.n_gp, msrs.IA32_PMC0, msrs.IA32_PERFEVTSEL0, 1)
        if view.version >= 2:
            k.global_ctl = msrs.IA32_PERF_GLOBAL_CTRL
            k.global_status = msrs.IA32_PERF_GLOBAL_STATUS
            k.global_status_clr = msrs.IA32_PERF_GLOBAL_OVF_CTRL
        errata = ev.overcounts(view.family, view.model)
        k.insns_erratum = ev.INSTRUCTIONS in errata
        k.branches_erratum = ev.BRANCHES in errata
        return k
    if not view.perfctr_core:
        return Kut(checker, expectations, view, AMD64_NUM_COUNTERS, msrs.MSR_K7_PERFCTR0,
                   msrs.MSR_K7_EVNTSEL0, 1)
    n_gp = view.n_gp if view.perfmon_v2 else AMD64_NUM_COUNTERS_CORE
    k = Kut(checker, expectations, view, n_gp, msrs.MSR_F15H_PERF_CTR0,
            msrs.MSR_F15H_PERF_CTL0, 2)
    if view.perfmon_v2:
        k.global_ctl = msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL
        k.global_status = msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS
        k.global_status_clr = msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR
    return k


def _reset_all_counters(k: Kut) -> Gen[None]:
    """``pmu_reset_all_counters``: zero every selector, counter and FIXED_CTR_CTRL."""
    for i in range(k.n_gp):
        yield from _wrmsr(k, k.gp_sel(i), 0)
        yield from _wrmsr(k, k.gp_ctr(i), 0)
    if k.view.n_fixed:
        yield from _wrmsr(k, msrs.IA32_FIXED_CTR_CTRL, 0)
        for i in range(k.view.n_fixed):
            yield from _wrmsr(k, msrs.IA32_FIXED_CTR0 + i, 0)


def _adjusted_events(k: Kut) -> Gen[tuple[PmuEvent, ...]]:
    """The vendor's table with main()'s and ``adjust_events_range``'s changes."""
    edx1 = (yield Cpuid(1))[3]
    if k.view.is_intel:
        ibpb = bool((yield Cpuid(7, 0))[3] & CPUID_7_EDX_SPEC_CTRL)
    else:
        ibpb = bool((yield Cpuid(0x8000_0008))[1] & CPUID_8000_0008_EBX_IBPB)
    exact = k.view.is_intel and bool(k.global_ctl)  # AMD exempt: VMRUN counts as a branch
    bounds: dict[str, tuple[int | None, int | None]] = {}
    if exact and not k.insns_erratum:
        bounds[INSTRUCTIONS] = (LOOP_INSNS, LOOP_INSNS)
    if exact and not k.branches_erratum:
        bounds[BRANCHES] = (LOOP_BRANCHES, LOOP_BRANCHES)
    if not ibpb:  # no way to force a branch miss
        bounds[BRANCH_MISSES] = (0, None)
    if not edx1 & CPUID_1_EDX_CLFLUSH:  # no way to force an LLC miss
        bounds[LLC_MISSES] = (0, None)
    table = INTEL_GP_EVENTS if k.view.is_intel else AMD_GP_EVENTS
    return tuple(e.bounded(*bounds.get(e.name, (None, None))) for e in table)


def _rerun_skip(view: GuestPmuView, rerun: str) -> str | None:
    """Why a rerun does not apply to this PMU (main()'s conditions), or None."""
    if rerun == FW_WRITE and not (view.is_intel and view.fw_write):
        return "full-width writes not enumerated (PERF_CAPABILITIES.FW_WRITE clear)"
    if rerun == AMD_K7 and view.is_intel:
        return "the K7 MSR rerun is AMD's"
    if rerun == AMD_K7 and not view.perfctr_core:
        return "the primary run already used the K7 MSRs (no PerfCtrCore)"
    return None


def _setup(checker: Checker, ctx: SuiteContext, rerun: str) -> Gen[Kut | None]:
    """The suite's init on a fresh machine, then the rerun's counter MSRs; None: skipped."""
    view = yield from discover_pmu()
    reason = _rerun_skip(view, rerun)
    if reason:
        checker.skip(reason)
        return None
    k = _pmu_caps(checker, ctx.expectations, view)
    yield from _reset_all_counters(k)
    if k.global_ctl:  # set_ref_cycle_expectations clears it; the blob leaves it clear
        yield from _wrmsr(k, k.global_ctl, 0)
    k.events = yield from _adjusted_events(k)
    yield from _scale_ref_cycles(k)  # main() does it once, on lib/x86/pmu.c's counters
    if rerun == FW_WRITE:
        k.ctr_base = msrs.IA32_A_PMC0
    elif rerun == AMD_K7:
        k.n_gp, k.ctr_base, k.sel_base, k.stride = (AMD64_NUM_COUNTERS, msrs.MSR_K7_PERFCTR0,
                                                     msrs.MSR_K7_EVNTSEL0, 1)
    return k


def _scale_ref_cycles(k: Kut) -> Gen[None]:
    """``set_ref_cycle_expectations``: scale the ref-cycles range by ref-cycles/TSC.

    RDTSC is not a port operation: fixed counter 2 (REF_TSC, counting at the TSC rate while
    unhalted) measures the TSC over the same window; without it the range is not scaled, as
    upstream does when its TSC delta is 0.
    """
    names = [e.name for e in k.events]
    if (not k.view.is_intel or not k.n_gp or REF_CYCLES not in names
            or not k.available(names.index(REF_CYCLES)) or k.view.n_fixed < 3):
        return
    ref = Counter(msrs.IA32_PMC0, OS_USR | k.event(REF_CYCLES).unit_sel)
    tsc = Counter(msrs.IA32_FIXED_CTR0 + 2, OS_USR)
    yield from _start_event_raw(k, ref, 0)
    yield from _start_event_raw(k, tsc, 0)
    yield from _wrmsr(k, k.global_ctl, 1 << 0 | 1 << (FIXED_IDX_BASE + 2))
    yield Execute(loop_self(REF_CALIBRATION_LOOPS))
    yield from _wrmsr(k, k.global_ctl, 0)
    yield from _stop_event_raw(k, ref)
    yield from _stop_event_raw(k, tsc)
    if tsc.count:
        e = k.event(REF_CYCLES)
        scaled = e.bounded(e.lo * ref.count // tsc.count, e.hi * ref.count // tsc.count)
        k.events = tuple(scaled if x is e else x for x in k.events)


# -- x86/pmu.c: starting, stopping and measuring counters --------------------------------
def _start_event_raw(k: Kut, c: Counter, count: int) -> Gen[None]:
    """``__start_event``: write the count, enable locally, program LVTPC."""
    c.count = count
    yield from _wrmsr(k, c.ctr, count)
    if k.is_gp(c.ctr):
        yield from _wrmsr(k, k.gp_sel(k.global_idx(c.ctr)), c.config | EVNTSEL_EN)
    else:
        field = ((1 if c.config & EVNTSEL_OS else 0) | (2 if c.config & EVNTSEL_USR else 0)
                 | (8 if c.config & EVNTSEL_INT else 0))
        yield from _set_fixed_field(k, c.ctr, field)
    yield from _wrmsr(k, msrs.X2APIC_LVTPC, PMI_VECTOR)


def _set_fixed_field(k: Kut, ctr: int, field: int) -> Gen[None]:
    """Replace the fixed counter's 4-bit OS/USR/AnyThread/PMI field in FIXED_CTR_CTRL."""
    ctrl = yield from _rdmsr(k, msrs.IA32_FIXED_CTR_CTRL)
    shift = 4 * (ctr - msrs.IA32_FIXED_CTR0)
    yield from _wrmsr(k, msrs.IA32_FIXED_CTR_CTRL, ctrl & ~(0xF << shift) | field << shift)


def _stop_event_raw(k: Kut, c: Counter) -> Gen[None]:
    """``__stop_event``: disable locally, then read the count."""
    if k.is_gp(c.ctr):
        yield from _wrmsr(k, k.gp_sel(k.global_idx(c.ctr)), c.config & ~EVNTSEL_EN)
    else:
        yield from _set_fixed_field(k, c.ctr, 0)
    c.count = yield from _rdmsr(k, c.ctr)


def _global_toggle(k: Kut, c: Counter, on: bool) -> Gen[None]:
    """``global_enable`` / ``global_disable``: flip the counter's GLOBAL_CTRL bit."""
    if not k.global_ctl:
        return
    ctl = yield from _rdmsr(k, k.global_ctl)
    bit = 1 << k.global_idx(c.ctr)
    yield from _wrmsr(k, k.global_ctl, ctl | bit if on else ctl & ~bit)


def _start_event(k: Kut, c: Counter) -> Gen[None]:
    """``start_event``: ``__start_event`` from 0, then the GLOBAL_CTRL bit."""
    yield from _start_event_raw(k, c, 0)
    yield from _global_toggle(k, c, True)


def _stop_event(k: Kut, c: Counter) -> Gen[None]:
    """``stop_event``: clear the GLOBAL_CTRL bit, then ``__stop_event``."""
    yield from _global_toggle(k, c, False)
    yield from _stop_event_raw(k, c)


def _loop(k: Kut, cntrs: int) -> Gen[None]:
    """``loop``: on v2+ the blob enables ``cntrs`` in GLOBAL_CTRL and disables them after."""
    if not k.global_ctl:
        yield Execute(LOOP)  # __loop: counting is gated by the selectors alone
        return
    yield from _wrmsr(k, k.global_ctl, cntrs)
    yield Execute(LOOP)
    yield from _wrmsr(k, k.global_ctl, 0)


def _measure_many(k: Kut, cnts: Sequence[Counter]) -> Gen[None]:
    """``measure_many``: start all from 0, one ``loop`` for all, stop all."""
    cntrs = 0
    for c in cnts:
        yield from _start_event_raw(k, c, 0)
        cntrs |= 1 << k.global_idx(c.ctr)
    yield from _loop(k, cntrs)
    for c in cnts:
        yield from _stop_event_raw(k, c)


def _measure(k: Kut, c: Counter, count: int) -> Gen[None]:
    """``__measure``: one counter from ``count`` over one ``loop``."""
    yield from _start_event_raw(k, c, count)
    yield from _loop(k, 1 << k.global_idx(c.ctr))
    yield from _stop_event_raw(k, c)


def _clear_global_status(k: Kut) -> Gen[None]:
    """``pmu_clear_global_status``: write the status back to OVF_CTRL / STATUS_CLR."""
    status = yield from _rdmsr(k, k.global_status)
    yield from _wrmsr(k, k.global_status_clr, status)


def _check_irq(k: Kut) -> Gen[bool]:
    """``check_irq``: poll for the PMI; ``cnt_overflow`` unmasks LVTPC when it ran."""
    got = yield WaitPmi(PMI_POLL_TIMEOUT_NS)
    if got:
        lvtpc = yield from _rdmsr(k, msrs.X2APIC_LVTPC)
        yield from _wrmsr(k, msrs.X2APIC_LVTPC, lvtpc & ~(1 << msrs.LVT_MASKED))
    return bool(got)
