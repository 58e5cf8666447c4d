"""Port of the KVM selftest ``x86/pmu_event_filter_test.c`` (``KVM_SET_PMU_EVENT_FILTER``).

Source: torvalds/linux ``01f492e1`` tools/testing/selftests/kvm/x86/pmu_event_filter_test.c,
with the filter's rules of arch/x86/kvm/pmu.c@v6.6 (``kvm_vm_ioctl_set_pmu_event_filter``,
``pmc_event_is_allowed``); no upstream code is copied here.

The selftest is a host program: it sets filters with VM ioctls and runs guest code that reports
counter deltas. Here the guest code is the case body and the ioctls are the variant's VM setup
(``Variant.event_filter`` / ``pmu_disabled``), performed by the runner before the guest runs.
Upstream reuses one VM and re-sets the filter between runs; every run here is a fresh VM with
the filter installed before its first entry, which is the state upstream reaches (a filter
change takes effect on the next run). The expected outcomes are the selftest's own (zero or
non-zero deltas, the ioctl's result), never derived from the model's filter code.

Cases, in upstream order: the guest's PMU sanity check; the AMD 12-bit deny list; no filter;
the base list as deny / allow list, with and without the measured events; the masked-events
table, sparse and dense; the ioctl validation; KVM_PMU_CAP_DISABLE; the fixed-counter bitmap.
The whole suite needs a KVM VM (``Expectations.kvm_vm_ioctls``): on bare metal it is skipped.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from vpmu.arch.faults import Fault
from vpmu.arch.x86 import events as ev
from vpmu.arch.x86.caps import GuestPmuView
from vpmu.arch.x86.msrs import (
    IA32_A_PMC0,
    IA32_FIXED_CTR0,
    IA32_FIXED_CTR_CTRL,
    IA32_PERF_GLOBAL_CTRL,
    IA32_PERFEVTSEL0,
    MSR_K7_EVNTSEL0,
    MSR_K7_PERFCTR0,
)
from vpmu.guest.conformance._framework import (
    Checker,
    EventFilterArgs,
    Expectations,
    Suite,
    SuiteContext,
    TestCase,
    Variant,
    discover_pmu,
)
from vpmu.guest.conformance.x86._filter_defs import (
    AMD_DENIED_12BIT,
    AMD_ZEN_BRANCHES,
    AMD_ZEN_INSTRUCTIONS,
    BASE_EVENTS,
    FIXED_PMC_KERNEL,
    INTEL_BRANCHES,
    INTEL_INSTRUCTIONS,
    INVALID_ACTION,
    INVALID_FLAGS,
    INVALID_NEVENTS,
    LS_DISPATCH,
    LS_DISPATCH_UMASKS,
    MASKED_EVENTS_INTEL_MODELS,
    MAX_FILTER_EVENTS,
    MAX_TEST_EVENTS,
    MEASURED_EVENTS,
    MEM_INST_RETIRED,
    MEM_INST_RETIRED_UMASKS,
    NUM_BRANCHES,
    OS_EN,
    exclude,
    include,
    mem_block,
)
from vpmu.guest.port import Execute, GuestGen, Op, Rdmsr, Wrmsr
from vpmu.uapi.kvm_pmu import (
    KVM_PMU_EVENT_ALLOW,
    KVM_PMU_EVENT_DENY,
    KVM_PMU_EVENT_FLAG_MASKED_EVENTS,
    masked_entry,
    raw_event,
)
from vpmu.workloads.streams import Stream, loop_self

# -- guest code -----------------------------------------------------------------------------

def _must(checker: Checker, what: str, result: object) -> bool:
    """Upstream's plain WRMSR/RDMSR: a fault kills the guest, so record it as a failure."""
    if isinstance(result, Fault):
        checker.check(f"{what}: no fault", False, f"got {result!r}")
        return False
    return True


def check_msr(msr: int, bits: int) -> Generator[Op, Any, str | None]:
    """check_msr: flip ``bits`` and read back, then flip back; a description of the first
    fault or mismatch, or None."""
    value = yield Rdmsr(msr)
    if isinstance(value, Fault):
        return f"RDMSR {msr:#x}: {value!r}"
    for step in ("flipped", "restored"):
        value ^= bits
        wrote = yield Wrmsr(msr, value)
        got = yield Rdmsr(msr)
        if isinstance(wrote, Fault) or got != value:
            return f"MSR {msr:#x} {step} value {value:#x}: WRMSR {wrote!r}, RDMSR {got!r}"
    return None


def sanity_check(view: GuestPmuView) -> Generator[Op, Any, str | None]:
    """The guest's PMU sanity check: GLOBAL_CTRL bit 0, 0xFFFF in EVNTSEL0 and PMC0 (the K7
    MSRs on AMD). None when the PMU is usable, else the first failure."""
    probes = ((IA32_PERF_GLOBAL_CTRL, 1), (IA32_PERFEVTSEL0, 0xFFFF), (IA32_A_PMC0, 0xFFFF)) \
        if view.is_intel else ((MSR_K7_EVNTSEL0, 0xFFFF), (MSR_K7_PERFCTR0, 0xFFFF))
    for msr, bits in probes:
        failure = yield from check_msr(msr, bits)
        if failure:
            return failure
    return None


def _program(checker: Checker, writes: Sequence[tuple[int, int]]) -> Generator[Op, Any, bool]:
    """WRMSR each (MSR, value); False (recorded) at the first fault."""
    for msr, value in writes:
        if not _must(checker, f"WRMSR {msr:#x} = {value:#x}", (yield Wrmsr(msr, value))):
            return False
    return True


def _deltas(checker: Checker, bases: Sequence[int], stream: Stream
            ) -> Generator[Op, Any, list[int] | None]:
    """Read the counters at ``bases``, run ``stream``, read them again: the deltas."""
    before = []
    for msr in bases:
        before.append((yield Rdmsr(msr)))
    yield Execute(stream)
    after = []
    for msr in bases:
        after.append((yield Rdmsr(msr)))
    reads = [*zip(bases, before, strict=True), *zip(bases, after, strict=True)]
    if not all(_must(checker, f"RDMSR {msr:#x}", value) for msr, value in reads):
        return None
    return [a - b for a, b in zip(after, before, strict=True)]


def measure_loop(checker: Checker, view: GuestPmuView) -> Generator[Op, Any, list[int] | None]:
    """intel_guest_code / amd_guest_code after the sanity check: GP0 branches, GP1
    instructions (OS|EN), then run_and_measure_loop; [branches, instructions] deltas."""
    if view.is_intel:
        writes = [(IA32_PERF_GLOBAL_CTRL, 0), (IA32_PERFEVTSEL0, OS_EN | INTEL_BRANCHES),
                  (IA32_PERFEVTSEL0 + 1, OS_EN | INTEL_INSTRUCTIONS), (IA32_PERF_GLOBAL_CTRL, 3)]
        base = IA32_A_PMC0
    else:
        writes = [(MSR_K7_EVNTSEL0, 0), (MSR_K7_EVNTSEL0 + 1, 0),
                  (MSR_K7_EVNTSEL0, OS_EN | AMD_ZEN_BRANCHES),
                  (MSR_K7_EVNTSEL0 + 1, OS_EN | AMD_ZEN_INSTRUCTIONS)]
        base = MSR_K7_PERFCTR0
    if not (yield from _program(checker, writes)):
        return None
    return (yield from _deltas(checker, (base, base + 1), loop_self(NUM_BRANCHES)))


def _counting(checker: Checker, deltas: list[int], why: str = "") -> None:
    """ASSERT_PMC_COUNTING_INSTRUCTIONS: both deltas non-zero (branches == 42 only logged);
    ``why`` names a platform difference that makes a filtered case count."""
    br, ir = deltas
    checker.check(f"branches retired counted (!= 0){why}", br != 0,
                  f"got {br} (upstream logs anything but {NUM_BRANCHES})")
    checker.check(f"instructions retired counted (!= 0){why}", ir != 0, f"got {ir}")


NOT_ENFORCED = ": filter not enforced"
"""The check-name suffix where ``Expectations.event_filter_enforced`` is False: a case whose
filter would stop the counter asserts that it counts, as with no filter."""


def _not_counting(checker: Checker, deltas: list[int]) -> None:
    """ASSERT_PMC_NOT_COUNTING_INSTRUCTIONS: both deltas zero."""
    checker.equal("branches retired not counted (== 0)", deltas[0], 0)
    checker.equal("instructions retired not counted (== 0)", deltas[1], 0)


# -- test_without_filter, test_member_*, test_not_member_*, test_amd_deny_list -------------

def base_filter(action: int, label: str, *, without_measured: bool = False,
                fixed_counter_bitmap: int = 0) -> EventFilterArgs:
    """base_event_filter with ``action``; ``without_measured`` applies remove_event to the
    measured events (instructions, Intel and AMD branches)."""
    events = tuple(e for e in BASE_EVENTS if not (without_measured and e in MEASURED_EVENTS))
    return EventFilterArgs(action, events, fixed_counter_bitmap=fixed_counter_bitmap,
                           label=label)


def measuring_case(name: str, expect_counting: bool, args: EventFilterArgs | None, doc: str, *,
                   amd_only: bool = False) -> TestCase:
    """A case that runs the measured loop on a VM with filter ``args`` (None: no filter) and
    asserts counting or not counting."""

    def body(checker: Checker, ctx: SuiteContext) -> GuestGen:
        view = yield from discover_pmu()
        if amd_only and view.is_intel:
            checker.skip(f"{name} runs on AMD only (use_amd_pmu): Intel's 8-bit event select "
                         "has no bits 11:8 to compare")
            return
        deltas = yield from measure_loop(checker, view)
        if deltas is None:
            return
        if expect_counting:
            _counting(checker, deltas)
        elif not ctx.expectations.event_filter_enforced:
            _counting(checker, deltas, NOT_ENFORCED)
        else:
            _not_counting(checker, deltas)

    def variants(view: GuestPmuView) -> Sequence[Variant | None]:
        if args is None or (amd_only and view.is_intel):
            return [None]
        return [Variant(event_filter=args)]

    return TestCase(name, body, variants=variants, doc=doc)


# -- test_masked_events ----------------------------------------------------------------------

ALLOW_LOADS, ALLOW_STORES, ALLOW_LOADS_STORES = 1 << 0, 1 << 1, 1 << 2
MASKED_COUNTERS = ("loads", "stores", "loads + stores")
"""The three counters of the masked-events guest, in counter order (flag bit i: counter i)."""


@dataclass(frozen=True, slots=True)
class MaskedEventsRow:
    """One row of the selftest's masked-events table: entries per vendor, counters allowed."""

    msg: str
    intel: tuple[int, ...]
    amd: tuple[int, ...]
    allowed: int
    """ALLOW_LOADS | ALLOW_STORES | ALLOW_LOADS_STORES: the counters that must count."""


_MIR, _LSD = MEM_INST_RETIRED, LS_DISPATCH
MASKED_EVENTS_TABLE: tuple[MaskedEventsRow, ...] = (
    MaskedEventsRow("Only allow loads.", (include(_MIR, 0xFF, 0x81),),
                    (include(_LSD, 0xFF, 1 << 0),), ALLOW_LOADS),
    MaskedEventsRow("Only allow stores.", (include(_MIR, 0xFF, 0x82),),
                    (include(_LSD, 0xFF, 1 << 1),), ALLOW_STORES),
    MaskedEventsRow("Only allow loads + stores.", (include(_MIR, 0xFF, 0x83),),
                    (include(_LSD, 0xFF, 1 << 2),), ALLOW_LOADS_STORES),
    MaskedEventsRow("Only allow loads and stores.",
                    (include(_MIR, 0x7C, 0), exclude(_MIR, 0xFF, 0x83)),
                    (include(_LSD, ~(1 << 0 | 1 << 1), 0),), ALLOW_LOADS | ALLOW_STORES),
    MaskedEventsRow("Only allow loads and loads + stores.",
                    (include(_MIR, 0x7C, 0), exclude(_MIR, 0xFF, 0x82)),
                    (include(_LSD, 0xF8, 0), exclude(_LSD, 0xFF, 1 << 1)),
                    ALLOW_LOADS | ALLOW_LOADS_STORES),
    MaskedEventsRow("Only allow stores and loads + stores.", (include(_MIR, 0xFE, 0x82),),
                    (include(_LSD, 0xF8, 0), exclude(_LSD, 0xFF, 1 << 0)),
                    ALLOW_STORES | ALLOW_LOADS_STORES),
    MaskedEventsRow("Only allow loads, stores, and loads + stores.", (include(_MIR, 0x7C, 0),),
                    (include(_LSD, 0xF8, 0),), ALLOW_LOADS | ALLOW_STORES | ALLOW_LOADS_STORES),
)
"""The selftest's seven cases, in its order."""


def dummy_events(n: int) -> tuple[int, ...]:
    """add_dummy_events: entries for event selects 0..0xFE in turn, every 4th an exclude, none
    for MEM_INST_RETIRED or LS_DISPATCH (the next select instead); mask and match 0."""
    selects = (i % 0xFF for i in range(n))
    return tuple(masked_entry(s + 1 if s in (_MIR, _LSD) else s, 0, 0, i % 4 == 0)
                 for i, s in enumerate(selects))


@dataclass(frozen=True, slots=True)
class MaskedEventsRun(Variant):
    """One run of run_masked_events_tests: a table row on a sparse or dense filter."""

    row: MaskedEventsRow | None = None
    dense: bool = False


def masked_events_skip(view: GuestPmuView) -> str | None:
    """Why the masked-events test does not run on this PMU (upstream's gate), or None."""
    if not view.is_intel:
        return None
    if view.family != 6 or view.model not in MASKED_EVENTS_INTEL_MODELS:
        return (f"model {view.family:#x}/{view.model:#x} is not one supports_event_mem_inst_"
                f"retired lists ({', '.join(f'{m:#x}' for m in MASKED_EVENTS_INTEL_MODELS)})")
    if view.n_gp < len(MASKED_COUNTERS):
        return f"needs {len(MASKED_COUNTERS)} GP counters, the guest has {view.n_gp}"
    return None


def masked_events_variants(view: GuestPmuView) -> Sequence[Variant | None]:
    """Every table row on a sparse filter, then on a dense one (290 dummy entries first)."""
    if masked_events_skip(view):
        return [None]
    runs: list[Variant | None] = []
    for dense in (False, True):
        pad = dummy_events(MAX_FILTER_EVENTS - MAX_TEST_EVENTS) if dense else ()
        for row in MASKED_EVENTS_TABLE:
            events = pad + (row.intel if view.is_intel else row.amd)
            label = f"{row.msg} ({'dense' if dense else 'sparse'})"
            args = EventFilterArgs(KVM_PMU_EVENT_ALLOW, events,
                                   flags=KVM_PMU_EVENT_FLAG_MASKED_EVENTS, label=label)
            runs.append(MaskedEventsRun(event_filter=args, row=row, dense=dense))
    return runs


def masked_events_setup(view: GuestPmuView) -> tuple[list[tuple[int, int]], int]:
    """The guest's WRMSRs for the three counters and the first counter MSR: MEM_INST_RETIRED
    on GP0-2 under GLOBAL_CTRL = 7 on Intel, LS_DISPATCH on the K7 MSRs on AMD."""
    if view.is_intel:
        sels = [(IA32_PERFEVTSEL0 + i, OS_EN | raw_event(MEM_INST_RETIRED, u))
                for i, u in enumerate(MEM_INST_RETIRED_UMASKS)]
        return [(IA32_PERF_GLOBAL_CTRL, 0), *sels, (IA32_PERF_GLOBAL_CTRL, 0b111)], IA32_A_PMC0
    sels = [(MSR_K7_EVNTSEL0 + i, OS_EN | raw_event(LS_DISPATCH, u))
            for i, u in enumerate(LS_DISPATCH_UMASKS)]
    return [*((msr, 0) for msr, _ in sels), *sels], MSR_K7_PERFCTR0


def unmodelled_counter(view: GuestPmuView, i: int) -> str | None:
    """Why masked-events counter ``i`` cannot show the filter in the model, or None."""
    umask = (MEM_INST_RETIRED_UMASKS if view.is_intel else LS_DISPATCH_UMASKS)[i]
    keys = ev.intel_event_keys(MEM_INST_RETIRED, umask) if view.is_intel \
        else ev.amd_event_keys(LS_DISPATCH, umask)
    if keys:
        return None
    event = "MEM_INST_RETIRED" if view.is_intel else "LS_DISPATCH"
    return (f"{MASKED_COUNTERS[i]} counter not checked: the model has no key for {event} "
            f"umask {umask:#x} (vpmu.arch.x86.events), so it never counts, allowed or not")


def guest_masked_events(checker: Checker, ctx: SuiteContext) -> GuestGen:
    """masked_events_guest_code: three counters around a store, a load and a read-modify-
    write; each counts iff the row allows it."""
    view = yield from discover_pmu()
    run = ctx.variant
    if not isinstance(run, MaskedEventsRun) or run.row is None:
        checker.skip(f"test_masked_events does not run: {masked_events_skip(view)}")
        return
    writes, base = masked_events_setup(view)
    if not (yield from _program(checker, writes)):
        return
    deltas = yield from _deltas(checker, (base, base + 1, base + 2), mem_block())
    if deltas is None:
        return
    for i, (name, delta) in enumerate(zip(MASKED_COUNTERS, deltas, strict=True)):
        reason = unmodelled_counter(view, i)
        if reason:
            checker.skip(reason)
        elif run.row.allowed >> i & 1:
            checker.check(f"{name} counted (!= 0): allowed", delta != 0, f"got {delta}")
        elif not ctx.expectations.event_filter_enforced:
            checker.check(f"{name} counted (!= 0){NOT_ENFORCED}", delta != 0, f"got {delta}")
        else:
            checker.equal(f"{name} not counted (== 0): filtered", delta, 0)


# -- test_filter_ioctl ---------------------------------------------------------------------

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1


def filter_ioctl_variants(view: GuestPmuView) -> Sequence[Variant | None]:
    """test_filter_ioctl: which filters the ioctl accepts and which it refuses.

    Upstream only asserts success or failure; the errno expected here is the one pmu.c
    returns for the first rule broken
    (``kvm_vm_ioctl_set_pmu_event_filter``)."""
    base = EventFilterArgs(KVM_PMU_EVENT_ALLOW, BASE_EVENTS)
    unknown_fixed = ~((1 << (view.n_fixed + 1)) - 1) & U32  # ~GENMASK_ULL(nr_fixed, 0), a u32
    masked = KVM_PMU_EVENT_FLAG_MASKED_EVENTS
    cases = (
        EventFilterArgs(KVM_PMU_EVENT_ALLOW, (U64,),
                        label="event ~0, no flags: bits outside eventsel+umask are dropped"),
        EventFilterArgs(KVM_PMU_EVENT_ALLOW, (U64,), flags=masked, expect_errno="EINVAL",
                        label="event ~0 as a masked entry"),
        EventFilterArgs(KVM_PMU_EVENT_ALLOW, (masked_entry(0xFF, 0xFF, 0xFF, bool(0xF)),),
                        flags=masked, label="masked entry (0xFF, 0xFF, 0xFF, exclude 0xF)"),
        EventFilterArgs(INVALID_ACTION, BASE_EVENTS, expect_errno="EINVAL",
                        label=f"base list, action {INVALID_ACTION}"),
        EventFilterArgs(base.action, BASE_EVENTS, flags=INVALID_FLAGS, expect_errno="EINVAL",
                        label=f"base list, flags {INVALID_FLAGS:#x}"),
        EventFilterArgs(base.action, BASE_EVENTS, nevents=INVALID_NEVENTS, expect_errno="E2BIG",
                        label=f"base list, nevents {INVALID_NEVENTS}"),
        EventFilterArgs(base.action, BASE_EVENTS, fixed_counter_bitmap=unknown_fixed,
                        label=f"base list, fixed bitmap {unknown_fixed:#x} (missing counters)"),
    )
    return [Variant(event_filter=args) for args in cases]


def guest_filter_ioctl(checker: Checker, ctx: SuiteContext) -> GuestGen:
    """Upstream runs no guest after these ioctls: the check is the ioctl's result, which
    ``run_case`` records."""
    del checker, ctx
    yield from ()


# -- test_pmu_config_disable ---------------------------------------------------------------

def guest_pmu_config_disable(checker: Checker, ctx: SuiteContext) -> GuestGen:
    """With KVM_PMU_CAP_DISABLE the guest's sanity check must fail."""
    del ctx
    view = yield from discover_pmu()
    failure = yield from sanity_check(view)
    checker.check("guest cannot use the PMU (sanity check fails)", failure is not None,
                  failure or "the sanity check passed")


# -- test_fixed_counter_bitmap ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FixedCounterRun(Variant):
    """One run of intel_run_fixed_counter_guest_code: the counter and whether it must count."""

    fixed_idx: int = 0
    expect_count: bool = True

    def label(self) -> str:
        """The counter, then the filter (``no filter`` for the unfiltered run)."""
        return f"fixed{self.fixed_idx}, {Variant.label(self) or 'no filter'}"


def fixed_counter_variants(view: GuestPmuView) -> Sequence[Variant | None]:
    """Per fixed counter: no filter, then for every bitmap BIT(i), i < 2^nfixed, allow and deny
    with the bitmap alone and with the base event list added (the bitmap alone decides)."""
    n = view.n_fixed
    runs: list[Variant | None] = []
    for idx in range(n):
        runs.append(FixedCounterRun(fixed_idx=idx, expect_count=True))
        for i in range(1 << n):
            bitmap = 1 << i
            selected = bool(bitmap >> idx & 1)
            for action, counts in ((KVM_PMU_EVENT_ALLOW, selected),
                                   (KVM_PMU_EVENT_DENY, not selected)):
                word = "allow" if action == KVM_PMU_EVENT_ALLOW else "deny"
                alone = EventFilterArgs(action, fixed_counter_bitmap=bitmap,
                                        label=f"{word} bitmap={bitmap:#x}")
                with_base = base_filter(action, f"{word} base list, bitmap={bitmap:#x}",
                                        fixed_counter_bitmap=bitmap)
                runs += [FixedCounterRun(event_filter=a, fixed_idx=idx, expect_count=counts)
                         for a in (alone, with_base)]
    return runs or [None]


def guest_fixed_counter(checker: Checker, ctx: SuiteContext) -> GuestGen:
    """intel_run_fixed_counter_guest_code: fixed counter idx alone, OS only, around
    ``loop .`` x 42; its count is non-zero iff the filter lets it count."""
    run = ctx.variant
    if not isinstance(run, FixedCounterRun):
        checker.skip("no fixed counters: upstream's loop over KVM's fixed counters runs "
                     "zero times")
        return
    idx = run.fixed_idx
    msr = IA32_FIXED_CTR0 + idx
    writes = [(IA32_PERF_GLOBAL_CTRL, 0), (msr, 0),
              (IA32_FIXED_CTR_CTRL, FIXED_PMC_KERNEL << 4 * idx),
              (IA32_PERF_GLOBAL_CTRL, 1 << (32 + idx))]
    if not (yield from _program(checker, writes)):
        return
    yield Execute(loop_self(NUM_BRANCHES))
    if not (yield from _program(checker, [(IA32_PERF_GLOBAL_CTRL, 0)])):
        return
    count = yield Rdmsr(msr)
    if not _must(checker, f"RDMSR {msr:#x}", count):
        return
    if run.expect_count:
        checker.check(f"fixed counter {idx} counted (!= 0)", count != 0, f"got {count}")
    elif not ctx.expectations.event_filter_enforced:
        checker.check(f"fixed counter {idx} counted (!= 0){NOT_ENFORCED}", count != 0,
                      f"got {count}")
    else:
        checker.equal(f"fixed counter {idx} not counted (== 0): filtered", count, 0)


# -- the suite -------------------------------------------------------------------------------

def guest_sanity_check_pmu(checker: Checker, ctx: SuiteContext) -> GuestGen:
    """sanity_check_pmu: the guest can flip and read back bits of the PMU MSRs.

    Upstream skips the whole test when this fails (TEST_REQUIRE); here it is a check, since a
    platform that presents a vPMU must pass it."""
    del ctx
    view = yield from discover_pmu()
    failure = yield from sanity_check(view)
    checker.check("PMU sanity check: MSRs read back flipped bits", failure is None,
                  failure or "")


def vendor_applies(view: GuestPmuView) -> str | None:
    """use_intel_pmu (a PMU with branches retired) or use_amd_pmu (family >= 0x17)."""
    if view.is_intel:
        ok = view.version >= 1 and view.n_gp > 0 and view.arch_event_available(5)
        return None if ok else "use_intel_pmu: needs a PMU with the branches-retired event"
    return None if view.family >= 0x17 else "use_amd_pmu: needs AMD family 0x17 or later"


def platform_applies(expectations: Expectations) -> str | None:
    """The filter is a KVM VM ioctl, and upstream requires an enabled vPMU."""
    if not expectations.kvm_vm_ioctls:
        return (f"KVM_SET_PMU_EVENT_FILTER is a KVM VM ioctl: {expectations.platform} has no "
                "hypervisor")
    if expectations.max_version == 0:
        return "TEST_REQUIRE(kvm_is_pmu_enabled()): the platform has no vPMU"
    return None


SUITE = Suite(
    "selftests/x86/pmu_event_filter_test",
    source="torvalds/linux 01f492e1 tools/testing/selftests/kvm/x86/pmu_event_filter_test.c",
    cases=(
        TestCase("sanity_check_pmu", guest_sanity_check_pmu,
                 doc="GLOBAL_CTRL / EVNTSEL0 / PMC0 (K7 MSRs on AMD) read back flipped bits."),
        measuring_case("test_amd_deny_list", True,
                       EventFilterArgs(KVM_PMU_EVENT_DENY, (AMD_DENIED_12BIT,),
                                       label="deny 0x1C2"),
                       "Denying 0x1C2 does not deny 0xC2: all 12 select bits are compared.",
                       amd_only=True),
        measuring_case("test_without_filter", True, None,
                       "No filter: branches and instructions count."),
        measuring_case("test_member_deny_list", False,
                       base_filter(KVM_PMU_EVENT_DENY, "deny base list"),
                       "The base list as a deny list: neither counts."),
        measuring_case("test_member_allow_list", True,
                       base_filter(KVM_PMU_EVENT_ALLOW, "allow base list"),
                       "The base list as an allow list: both count."),
        measuring_case("test_not_member_deny_list", True,
                       base_filter(KVM_PMU_EVENT_DENY, "deny base list minus measured",
                                   without_measured=True),
                       "Deny list without the measured events: both count."),
        measuring_case("test_not_member_allow_list", False,
                       base_filter(KVM_PMU_EVENT_ALLOW, "allow base list minus measured",
                                   without_measured=True),
                       "Allow list without the measured events: neither counts."),
        TestCase("test_masked_events", guest_masked_events, variants=masked_events_variants,
                 doc="Masked entries: loads/stores/loads+stores count iff the row allows."),
        TestCase("test_filter_ioctl", guest_filter_ioctl, variants=filter_ioctl_variants,
                 doc="The ioctl accepts or refuses (EINVAL, E2BIG) as pmu.c does."),
        TestCase("test_pmu_config_disable", guest_pmu_config_disable,
                 variants=lambda view: [Variant(pmu_disabled=True)],
                 doc="KVM_PMU_CAP_DISABLE: the guest's sanity check fails."),
        TestCase("test_fixed_counter_bitmap", guest_fixed_counter,
                 variants=fixed_counter_variants,
                 doc="A fixed counter counts iff the bitmap lets it; the event list is ignored."),
    ),
    applies=vendor_applies,
    applies_to_platform=platform_applies,
)
"""The port, with cases in upstream order."""


__all__ = ["BASE_EVENTS", "MASKED_EVENTS_TABLE", "SUITE", "FixedCounterRun", "MaskedEventsRow",
           "MaskedEventsRun", "base_filter", "check_msr", "dummy_events", "filter_ioctl_variants",
           "fixed_counter_variants", "masked_entry", "masked_events_setup", "masked_events_skip",
           "masked_events_variants", "measure_loop", "measuring_case", "raw_event",
           "sanity_check"]
