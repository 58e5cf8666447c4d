"""Port of the KVM selftest ``x86/pmu_counters_test.c`` (Intel only).

Source: linux-next ``7886d3dd`` tools/testing/selftests/kvm/x86/pmu_counters_test.c and
include/x86/pmu.h (no upstream code is copied here).

Upstream runs three guests per sweep point (PMU version x PERF_CAPABILITIES):

- ``guest_test_arch_events``: every architectural event, whether or not guest CPUID lists it,
  on every GP counter and on its fixed twin, checked against the test's pass table for the
  events the *host* supports, plus two sanity checks for every event (a disabled counter does
  not move; RDPMC returns what the counter MSR was written with);
- ``guest_test_gp_counters``: GLOBAL_CTRL's reset value and the read/write/RDPMC behaviour of
  GP counters 0..7 for every guest GP count;
- ``guest_test_fixed_counters``: the same for the fixed counters, over the fixed count and the
  v5 ECX support mask, plus FIXED_CTR_CTRL / GLOBAL_CTRL #GP for missing counters and a
  non-zero count for present ones.

Index spaces are named as in ``vpmu.arch.x86.caps``: *MSR address*, *RDPMC index* and
*global counter index*. A sweep point is a ``CountersVariant``: the PMU shape under test plus
the host facts upstream syncs into the guest (``sync_global_to_guest``).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from vpmu.arch.faults import Fault
from vpmu.arch.x86 import events as ev
from vpmu.arch.x86.caps import (
    CPUID_1_EDX_CLFLUSH,
    CPUID_7_EBX_CLFLUSHOPT,
    RDPMC_FAST,
    RDPMC_FIXED,
    GuestPmuView,
)
from vpmu.arch.x86.events import INTEL_ARCH_EVENTS, INTEL_FIXED_EVENTS, ArchEvent
from vpmu.arch.x86.msrs import (
    IA32_A_PMC0,
    IA32_FIXED_CTR0,
    IA32_FIXED_CTR_CTRL,
    IA32_PERF_GLOBAL_CTRL,
    IA32_PERFEVTSEL0,
    IA32_PMC0,
)
from vpmu.guest.conformance._framework import (
    Checker,
    Suite,
    SuiteContext,
    TestCase,
    Variant,
    discover_pmu,
)
from vpmu.guest.port import Cpuid, Execute, GuestGen, Op, Rdmsr, Rdpmc, Wrmsr
from vpmu.workloads.streams import (
    SELFTEST_NUM_BRANCHES,
    SELFTEST_NUM_INSNS_RETIRED,
    loop_self,
    selftest_measured_block,
)

# -- constants of the upstream test and include/x86/pmu.h ----------------------------------

NUM_INSNS_RETIRED = SELFTEST_NUM_INSNS_RETIRED
"""65 instructions in GUEST_MEASURE_EVENT's window: 10 x (ENTER, CLFLUSH*, MFENCE, load,
LEAVE, LOOP) + 2 MOV + 2 XOR + the disabling WRMSR (45 in older trees)."""

NUM_BRANCHES = SELFTEST_NUM_BRANCHES
"""10 branches in the window: one LOOP per iteration."""

NUM_LOOPS = 10
"""Iterations of the bare ``loop .`` (upstream NUM_LOOPS): the "10 more loop ." sanity check
and the fixed-counter workload."""

TEST_VAL = 0xFFFF
"""Value guest_rd_wr_counters writes to every counter MSR."""

SANITY_VAL = 0xDEAD
"""Value written to the counter MSR that RDPMC must then return (always checked)."""

NR_INTEL_ARCH_EVENTS = len(INTEL_ARCH_EVENTS)
"""13 architectural events in newer trees (include/x86/pmu.h); the EBX-length sweep runs to NR +
1."""

MAX_NR_GP_COUNTERS = 8
"""GP counters 0..7 are probed whatever the enumeration (guest_test_gp_counters)."""

MAX_NR_FIXED_COUNTERS = 3
"""Fixed counters 0..2 are always probed; counter 3 (slots) too when the host has it."""

UNAVAILABLE_MASKS = (0xFFFF_FFFF, 0xAAAA_AAAA, 0x5555_5555, 0xF0F0_F0F0, 0x0F0F_0F0F,
                     0xA0A0_A0A0, 0x0A0A_0A0A, 0x5050_5050, 0x0505_0505)
"""CPUID.0xA:EBX "unavailable" masks of the newer tree; its table also has 0, which the
loop skips, so it is left out here."""

EVENTSEL_OS = 1 << 17
EVENTSEL_EN = 1 << 22
FIXED_PMC_KERNEL = 0x1
"""FIXED_CTR_CTRL field value: count at CPL 0 only (OS bit of the counter's 4-bit field)."""

LEGACY_PERFCTR01 = (IA32_PMC0, IA32_PMC0 + 1)
"""MSR_P6_PERFCTR0/1: KVM drops writes to them when unsupported instead of #GP."""




@dataclass(frozen=True, slots=True)
class PassRule:
    """One row of the 2.2 pass table, applied only to events the host supports."""

    expect: str
    """``"=="``, ``">="`` or ``"!=0"``."""
    value: int = 0
    needs_clflush: bool = False
    """Checked only if CPUID lists CLFLUSH or CLFLUSHOPT (the workload then flushes)."""


PASS_TABLE: dict[str, PassRule] = {
    ev.INSTRUCTIONS: PassRule("==", NUM_INSNS_RETIRED),
    ev.BRANCHES: PassRule("==", NUM_BRANCHES),
    ev.LLC_REFERENCES: PassRule("!=0", needs_clflush=True),
    ev.LLC_MISSES: PassRule("!=0", needs_clflush=True),
    ev.CYCLES: PassRule("!=0"),
    ev.REF_CYCLES: PassRule("!=0"),
    ev.TOPDOWN_BACKEND_BOUND: PassRule("!=0"),
    ev.TOPDOWN_FRONTEND_BOUND: PassRule("!=0"),
    ev.SLOTS: PassRule(">=", NUM_INSNS_RETIRED),
    ev.TOPDOWN_RETIRING: PassRule(">=", NUM_INSNS_RETIRED),
}
"""The 2.2 pass table by event key; events not listed (branch misses, bad speculation, LBR
inserts) get only the sanity checks."""

CLFLUSH_GATED_EVENTS = tuple(e.name for e in INTEL_ARCH_EVENTS
                             if e.key in PASS_TABLE and PASS_TABLE[e.key].needs_clflush)
"""Events whose pass rule needs CLFLUSH: LLC references and LLC misses."""


# -- sweep points ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CountersVariant(Variant):
    """A sweep point plus the host facts upstream syncs into the guest.

    The host fields are not part of the PMU shape (``changes()`` leaves them out), so the
    runner never applies them and the report label does not show them.
    """

    host_version: int = 0
    """The host's PMU version: the platform maximum unless Expectations.max_version says."""
    host_arch_events: int = 0
    """Bit i set: the host supports architectural event i (upstream hardware_pmu_arch_events)."""
    host_fixed_probed: int = MAX_NR_FIXED_COUNTERS
    """How many fixed counters the fixed-counter test probes (3, or 4 with host slots)."""


def sweep_point(view: GuestPmuView, version: int, fw_write: bool, *, n_gp: int | None = None,
                n_fixed: int | None = None, fixed_mask: int | None = None,
                ebx_length: int | None = None,
                ebx_unavailable: int | None = None) -> CountersVariant:
    """One sweep point on the host ``view``, carrying the host facts the guest needs."""
    events = sum(1 << e.ebx_bit for e in INTEL_ARCH_EVENTS if view.arch_event_available(e.ebx_bit))
    probed = MAX_NR_FIXED_COUNTERS + (1 if view.fixed_supported(MAX_NR_FIXED_COUNTERS) else 0)
    return CountersVariant(version=version, n_gp=n_gp, n_fixed=n_fixed, fixed_mask=fixed_mask,
                           ebx_length=ebx_length, ebx_unavailable=ebx_unavailable,
                           fw_write=fw_write, host_version=view.version,
                           host_arch_events=events, host_fixed_probed=probed)


def _versions(view: GuestPmuView) -> range:
    """Guest PMU versions swept: 0..host version.

    Upstream sweeps 0..max(5, host version); the posted mediated-PMU change stops at the host
    version. On bare metal a variant is hardware, and hardware cannot exceed its own version,
    so the sweep stops there.
    """
    return range(view.version + 1)


def _perf_caps(view: GuestPmuView) -> tuple[bool, ...]:
    """PERF_CAPABILITIES swept: {0, FW_WRITE}; FW_WRITE only if the host has it (upstream
    skips it without KVM PERF_CAPABILITIES support)."""
    return (False, True) if view.fw_write else (False,)


def arch_event_variants(view: GuestPmuView) -> list[Variant | None]:
    """The CPUID sweep: EBX length 0..NR+1 x the unavailability masks, per version x caps.

    Upstream runs the full length x mask product (135 guests) at every version x caps point.
    That is ~1,350 guests of 13 events x every GP counter (~95 s on intel-icx here); bare
    metal counts the same whatever CPUID says, so the product is thinned: at the host version
    every length runs with the masks in rotation (all 15 lengths and all 9 masks, for both
    caps values); each lower version runs length 0 and length NR+1, the masks continuing the
    rotation. Version 0 is skipped as upstream does (arch events need a vPMU).
    """
    points: list[Variant | None] = []
    turn = 0
    for v in range(1, view.version + 1):
        lengths = range(NR_INTEL_ARCH_EVENTS + 2) if v == view.version else (
            0, NR_INTEL_ARCH_EVENTS + 1)
        for fw in _perf_caps(view):
            for length in lengths:
                mask = UNAVAILABLE_MASKS[turn % len(UNAVAILABLE_MASKS)]
                points.append(sweep_point(view, v, fw, ebx_length=length, ebx_unavailable=mask))
                turn += 1
    return points


def gp_counter_variants(view: GuestPmuView) -> list[Variant | None]:
    """Every guest GP count 0..host count, per version x caps (guest_test_gp_counters)."""
    return [sweep_point(view, v, fw, n_gp=n)
            for v in _versions(view) for fw in _perf_caps(view) for n in range(view.n_gp + 1)]


def fixed_counter_variants(view: GuestPmuView) -> list[Variant | None]:
    """Every fixed count 0..host count x every ECX mask, per version x caps.

    The ECX support mask exists from v5; below it only mask 0 runs (the posted mediated-PMU
    change: "use ECX mask 0 below v5").
    """
    points: list[Variant | None] = []
    for v in _versions(view):
        masks = range(1 << view.n_fixed) if v >= 5 else range(1)
        for fw in _perf_caps(view):
            points += [sweep_point(view, v, fw, n_fixed=n, fixed_mask=k)
                       for n in range(view.n_fixed + 1) for k in masks]
    return points


# -- what the guest knows ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GuestFacts:
    """What the upstream guest reads before testing: CPUID, the effective version, the
    counter MSR base, CLFLUSH and errata, and the host facts synced into it."""

    view: GuestPmuView
    version: int
    """Effective version: min(platform maximum, CPUID version)."""
    clflush: bool
    overcount: frozenset[str]
    host: CountersVariant

    @property
    def base_pmc_msr(self) -> int:
        """PMCi if the guest has FW_WRITE, else the legacy PERFCTRi."""
        return IA32_A_PMC0 if self.view.fw_write else IA32_PMC0


def _host(ctx: SuiteContext) -> CountersVariant:
    """The sweep point this case runs on (every case of this suite has one)."""
    if not isinstance(ctx.variant, CountersVariant):
        raise TypeError(f"variant must be a CountersVariant, not {ctx.variant!r}")
    return ctx.variant


def guest_facts(ctx: SuiteContext) -> Generator[Op, Any, GuestFacts]:
    """Discover the PMU as the guest does and fold in the platform's version limit."""
    host = _host(ctx)
    view = yield from discover_pmu()
    edx1 = (yield Cpuid(1))[3]
    ebx7 = (yield Cpuid(7, 0))[1]
    limit = ctx.expectations.max_version
    platform = host.host_version if limit is None else limit
    overcount = ev.overcounts(view.family, view.model)
    return GuestFacts(view, min(platform, view.version),
                      bool(edx1 & CPUID_1_EDX_CLFLUSH or ebx7 & CPUID_7_EBX_CLFLUSHOPT),
                      overcount, host)


def _must(checker: Checker, what: str, result: object) -> None:
    """Upstream uses a plain WRMSR here: a fault kills the guest, so record it as a failure."""
    if isinstance(result, Fault):
        checker.check(f"{what}: no fault", False, f"got {result!r}")


# -- guest_test_arch_events ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Window:
    """One counter under GUEST_MEASURE_EVENT: which MSR opens and closes the window."""

    name: str
    rdpmc: int
    """RDPMC index of the counter."""
    pmc_msr: int
    ctrl_msr: int
    ctrl_value: int
    """Written to ``ctrl_msr`` to open the window; 0 closes it."""


def guest_test_arch_events(checker: Checker, ctx: SuiteContext) -> GuestGen:
    """Every arch event on every GP counter and its fixed twin (guest_test_arch_event)."""
    g = yield from guest_facts(ctx)
    if not checker.check("guest has a PMU version and GP counters",
                         g.version >= 1 and g.view.n_gp > 0,
                         f"version {g.version}, {g.view.n_gp} GP counters"):
        return
    if not g.clflush:
        checker.skip(f"{', '.join(CLFLUSH_GATED_EVENTS)} counts not checked: CPUID lists "
                     "neither CLFLUSH nor CLFLUSHOPT (the test's pass table)")
    for event in INTEL_ARCH_EVENTS:
        yield from _arch_event_gp(checker, g, event)
        yield from _arch_event_fixed(checker, g, event)


def _arch_event_gp(checker: Checker, g: GuestFacts, event: ArchEvent) -> GuestGen:
    """The event on each GP counter: window from EVNTSEL = OS|EN|event to EVNTSEL = 0."""
    for i in range(g.view.n_gp):
        sel = IA32_PERFEVTSEL0 + i
        _must(checker, f"{event.name} GP{i}: clear EVNTSEL", (yield Wrmsr(sel, 0)))
        if g.version >= 2:
            _must(checker, f"{event.name} GP{i}: GLOBAL_CTRL = BIT({i})",
                  (yield Wrmsr(IA32_PERF_GLOBAL_CTRL, 1 << i)))
        window = Window(f"GP{i}", i, g.base_pmc_msr + i, sel,
                        EVENTSEL_OS | EVENTSEL_EN | event.encoding)
        yield from _measure(checker, g, event, window)


def fixed_twin(event: ArchEvent) -> int | None:
    """The fixed counter counting the same thing (0 instructions, 1 cycles, 2 ref-TSC,
    3 slots), or None."""
    return INTEL_FIXED_EVENTS.index(event.key) if event.key in INTEL_FIXED_EVENTS else None


def _arch_event_fixed(checker: Checker, g: GuestFacts, event: ArchEvent) -> GuestGen:
    """The fixed twin, OS only, if supported: the window toggles GLOBAL_CTRL bit 32+i."""
    i = fixed_twin(event)
    if g.version < 2 or i is None or not g.view.fixed_supported(i):
        return
    _must(checker, f"{event.name} fixed{i}: FIXED_CTR_CTRL",
          (yield Wrmsr(IA32_FIXED_CTR_CTRL, FIXED_PMC_KERNEL << 4 * i)))
    window = Window(f"fixed{i}", RDPMC_FIXED | i, IA32_FIXED_CTR0 + i, IA32_PERF_GLOBAL_CTRL,
                    1 << (32 + i))
    yield from _measure(checker, g, event, window)


def _measure(checker: Checker, g: GuestFacts, event: ArchEvent, w: Window) -> GuestGen:
    """GUEST_TEST_EVENT: zero, open, run the block, close, then check the count and the two
    sanity rules (a closed counter does not move; RDPMC returns the MSR's new value)."""
    what = f"{event.name} {w.name}"
    _must(checker, f"{what}: zero the counter", (yield Wrmsr(w.pmc_msr, 0)))
    _must(checker, f"{what}: open the window", (yield Wrmsr(w.ctrl_msr, w.ctrl_value)))
    yield Execute(selftest_measured_block())
    _must(checker, f"{what}: close the window", (yield Wrmsr(w.ctrl_msr, 0)))
    count = yield Rdpmc(w.rdpmc)
    _check_count(checker, g, event, what, count)
    yield Execute(loop_self(NUM_LOOPS))
    checker.equal(f"{what}: unchanged after {NUM_LOOPS} more loop .", (yield Rdpmc(w.rdpmc)),
                  count)
    _must(checker, f"{what}: write {SANITY_VAL:#x}", (yield Wrmsr(w.pmc_msr, SANITY_VAL)))
    checker.equal(f"{what}: RDPMC after writing {SANITY_VAL:#x}", (yield Rdpmc(w.rdpmc)),
                  SANITY_VAL)


def _check_count(checker: Checker, g: GuestFacts, event: ArchEvent, what: str,
                 count: object) -> None:
    """Apply the pass table, only for events the host supports (upstream
    guest_assert_event_count)."""
    rule = PASS_TABLE.get(event.key)
    if rule is None or not g.host.host_arch_events >> event.ebx_bit & 1:
        return
    if rule.needs_clflush and not g.clflush:
        return  # recorded once per guest by guest_test_arch_events
    expect = ">=" if rule.expect == "==" and event.key in g.overcount else rule.expect
    name = f"{what}: count {expect} {rule.value}" if rule.value else f"{what}: count != 0"
    if expect == "==":
        checker.equal(name, count, rule.value)
    elif expect == ">=":
        checker.in_range(name, count, rule.value, (1 << 64) - 1)
    else:
        checker.check(name, isinstance(count, int) and count != 0, f"got {count!r}")


# -- guest_test_gp_counters / guest_test_fixed_counters -----------------------------------

@dataclass(frozen=True, slots=True)
class Bank:
    """A bank of counters probed by guest_rd_wr_counters."""

    name: str
    base_msr: int
    rdpmc_space: int
    """0 for GP counters, RDPMC_FIXED for fixed counters."""
    n_possible: int
    n_counters: int
    or_mask: int
    """Fixed counters: the v5 ECX support mask; GP counters: 0."""

    def supported(self, i: int) -> bool:
        """Counter i exists: i < count, or its bit in the support mask."""
        return i < self.n_counters or bool(self.or_mask >> i & 1)


def guest_test_gp_counters(checker: Checker, ctx: SuiteContext) -> GuestGen:
    """GLOBAL_CTRL's reset value and GP counters 0..7 (guest_test_gp_counters)."""
    g = yield from guest_facts(ctx)
    n = g.view.n_gp if g.version else 0
    if g.version >= 2:
        checker.equal(f"GLOBAL_CTRL reset value with {n} GP counters",
                      (yield Rdmsr(IA32_PERF_GLOBAL_CTRL)), (1 << n) - 1)
    bank = Bank("GP", g.base_pmc_msr, 0, MAX_NR_GP_COUNTERS, n, 0)
    yield from rd_wr_counters(checker, ctx, bank)


def _drops_write(ctx: SuiteContext, bank: Bank, i: int) -> bool:
    """An unsupported legacy PERFCTR0/1 drops the write and reads 0 instead of #GP, where
    the platform says so (KVM; bare metal #GPs)."""
    outcome = ctx.expectations.unsupported_legacy_perfctr01
    if outcome not in ("gp", "drop"):
        raise ValueError(f"unsupported_legacy_perfctr01 must be 'gp' or 'drop', not {outcome!r}")
    return (outcome == "drop" and not bank.supported(i)
            and bank.base_msr + i in LEGACY_PERFCTR01)


def rd_wr_counters(checker: Checker, ctx: SuiteContext, bank: Bank) -> GuestGen:
    """guest_rd_wr_counters: write TEST_VAL, read it back, RDPMC, fast RDPMC, write 0."""
    for i in range(bank.n_possible):
        yield from _rd_wr_counter(checker, ctx, bank, i)


def _rd_wr_counter(checker: Checker, ctx: SuiteContext, bank: Bank, i: int) -> GuestGen:
    """One counter of guest_rd_wr_counters."""
    msr, ok = bank.base_msr + i, bank.supported(i)
    expect_gp = not ok and not _drops_write(ctx, bank, i)
    expected = TEST_VAL if ok else 0
    what = f"{bank.name}{i} (MSR {msr:#x}, {'supported' if ok else 'unsupported'})"
    _access(checker, f"{what}: WRMSR {TEST_VAL:#x}", (yield Wrmsr(msr, TEST_VAL)), expect_gp)
    value = yield Rdmsr(msr)
    _access(checker, f"{what}: RDMSR", value, expect_gp)
    if not expect_gp:
        checker.equal(f"{what}: RDMSR value", value, expected)
    idx = bank.rdpmc_space | i
    value = yield Rdpmc(idx)
    if ok:
        checker.equal(f"{what}: RDPMC({idx:#x})", value, expected)
    else:
        checker.faults(f"{what}: RDPMC({idx:#x}) #GP", value)
    checker.faults(f"{what}: fast RDPMC({idx | RDPMC_FAST:#x}) #GP",
                   (yield Rdpmc(idx | RDPMC_FAST)))
    _access(checker, f"{what}: WRMSR 0", (yield Wrmsr(msr, 0)), expect_gp)


def _access(checker: Checker, name: str, got: object, expect_gp: bool) -> None:
    """Record that an MSR access took #GP, or did not fault, as expected."""
    if expect_gp:
        checker.faults(f"{name} #GP", got)
    else:
        checker.no_fault(name, got)


def guest_test_fixed_counters(checker: Checker, ctx: SuiteContext) -> GuestGen:
    """Fixed counters: access rules, #GP for missing ones, counting for present ones."""
    g = yield from guest_facts(ctx)
    n = g.view.n_fixed if g.version >= 2 else 0
    mask = g.view.fixed_mask if g.version >= 5 else 0
    bank = Bank("fixed", IA32_FIXED_CTR0, RDPMC_FIXED, g.host.host_fixed_probed, n, mask)
    yield from rd_wr_counters(checker, ctx, bank)
    for i in range(bank.n_possible):
        if bank.supported(i):
            yield from _fixed_counts(checker, i)
        else:
            yield from _fixed_missing(checker, i)


def _fixed_missing(checker: Checker, i: int) -> GuestGen:
    """A missing fixed counter: its FIXED_CTR_CTRL field and GLOBAL_CTRL bit take #GP."""
    checker.faults(f"fixed{i} (unsupported): FIXED_CTR_CTRL field write #GP",
                   (yield Wrmsr(IA32_FIXED_CTR_CTRL, FIXED_PMC_KERNEL << 4 * i)))
    checker.faults(f"fixed{i} (unsupported): GLOBAL_CTRL bit {32 + i} write #GP",
                   (yield Wrmsr(IA32_PERF_GLOBAL_CTRL, 1 << (32 + i))))


def _fixed_counts(checker: Checker, i: int) -> GuestGen:
    """A present fixed counter counts `loop .` x NUM_LOOPS at CPL 0 (count != 0)."""
    what = f"fixed{i} (supported)"
    _must(checker, f"{what}: zero", (yield Wrmsr(IA32_FIXED_CTR0 + i, 0)))
    _must(checker, f"{what}: FIXED_CTR_CTRL",
          (yield Wrmsr(IA32_FIXED_CTR_CTRL, FIXED_PMC_KERNEL << 4 * i)))
    _must(checker, f"{what}: enable", (yield Wrmsr(IA32_PERF_GLOBAL_CTRL, 1 << (32 + i))))
    yield Execute(loop_self(NUM_LOOPS))
    _must(checker, f"{what}: disable", (yield Wrmsr(IA32_PERF_GLOBAL_CTRL, 0)))
    value = yield Rdmsr(IA32_FIXED_CTR0 + i)
    checker.check(f"{what}: count != 0 after {NUM_LOOPS} loop . at CPL 0",
                  isinstance(value, int) and value != 0, f"got {value!r}")


# -- host-side checks and the suite -----------------------------------------------------------

def host_arch_event_length(checker: Checker, ctx: SuiteContext) -> GuestGen:
    """Upstream fails by design when the host enumerates more arch events than it knows."""
    del ctx  # the host's own CPUID, no variant
    view = yield from discover_pmu()
    checker.in_range(f"host EBX length <= {NR_INTEL_ARCH_EVENTS} (no unknown arch events)",
                     view.ebx_length, 0, NR_INTEL_ARCH_EVENTS)


def intel_only(view: GuestPmuView) -> str | None:
    """pmu_counters_test runs on Intel only."""
    return None if view.is_intel else "pmu_counters_test is Intel only"


SUITE = Suite(
    "selftests/x86/pmu_counters_test",
    source="linux-next 7886d3dd tools/testing/selftests/kvm/x86/pmu_counters_test.c",
    cases=(
        TestCase("host_arch_event_length", host_arch_event_length,
                 doc="The host's CPUID.0xA EBX length is at most the 13 known events."),
        TestCase("arch_events", guest_test_arch_events, variants=arch_event_variants,
                 doc="Arch events count on every GP and fixed counter, whatever CPUID says."),
        TestCase("gp_counters", guest_test_gp_counters, variants=gp_counter_variants,
                 doc="GLOBAL_CTRL reset; GP counters 0..7 read/write/RDPMC or #GP."),
        TestCase("fixed_counters", guest_test_fixed_counters, variants=fixed_counter_variants,
                 doc="Fixed counters: access or #GP, FIXED_CTR_CTRL/GLOBAL_CTRL #GP, counting."),
    ),
    applies=intel_only,
)
"""The port, with cases in upstream order (within each sweep point: arch events, GP counters,
fixed counters)."""


__all__ = ["SUITE", "Bank", "CountersVariant", "GuestFacts", "PassRule", "Window",
           "arch_event_variants", "fixed_counter_variants", "fixed_twin", "gp_counter_variants",
           "guest_facts", "guest_test_arch_events", "guest_test_fixed_counters",
           "guest_test_gp_counters", "host_arch_event_length", "intel_only", "rd_wr_counters",
           "sweep_point"]
