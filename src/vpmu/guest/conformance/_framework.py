"""The conformance framework: ported test programs, their checks, and how suites run.

A suite is a list of ``TestCase``; each case is a guest program (a generator function taking a
``Checker``) that yields port operations and records named checks. The suite never touches
hardware: ``run_suite`` takes a ``Runner``, supplied by ``vpmu.machine``, that runs one program
on a fresh machine, optionally with a PMU ``Variant`` (the selftests' version x counters x
PERF_CAPABILITIES sweeps; on bare metal a variant is a hardware variant of the preset, under a
hypervisor it is the guest's CPUID).

Where the expected outcome legitimately differs between bare metal and a hypervisor design
(KVM's documented differences), the case reads it from ``Expectations`` so the difference is
explicit, named and visible in the report.

A variant may also ask for VM setup done by KVM ioctls before the guest runs (the selftests'
host side): an ``EventFilterArgs`` for ``KVM_SET_PMU_EVENT_FILTER`` or ``pmu_disabled`` for
``KVM_CAP_PMU_CAPABILITY``. The guest layer cannot see the hypervisor, so the arguments are
plain data and the runner performs the ioctl. Instead of the program's return value the runner
then returns ``Unsupported`` (no hypervisor: nothing to set up, the program does not run) or
``FilterRefused`` (the ioctl failed: the program does not run); ``run_case`` turns these into a
skip or into the check of the ioctl's result, so a case states "this filter must be refused
with EINVAL" as data (``EventFilterArgs.expect_errno``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vpmu.arch.faults import Fault
from vpmu.arch.x86.caps import GuestPmuView, discover
from vpmu.arch.x86.msrs import IA32_PERF_CAPABILITIES
from vpmu.guest.port import Cpuid, GuestGen, GuestProgram, Op, Rdmsr

CPUID_LEAVES = ((0, 0), (1, 0), (0xA, 0), (0x8000_0001, 0), (0x8000_0022, 0))
"""The CPUID leaves PMU discovery reads (lib/x86/pmu.c; selftests pmu.h)."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One named check of one test case."""

    suite: str
    test: str
    check: str
    passed: bool
    detail: str = ""
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class EventFilterArgs:
    """``KVM_SET_PMU_EVENT_FILTER``'s arguments (``struct kvm_pmu_event_filter``) as plain
    data, and the result the case expects from the ioctl.

    The runner builds the kernel's filter from it (``vpmu.vpmu.filter``) with the vendor's
    event-select width; the guest layer never sees that object.
    """

    action: int
    """``KVM_PMU_EVENT_ALLOW`` (0) or ``KVM_PMU_EVENT_DENY`` (1); anything else is EINVAL."""
    events: tuple[int, ...] = ()
    """Raw events, or masked entries with ``KVM_PMU_EVENT_FLAG_MASKED_EVENTS``."""
    fixed_counter_bitmap: int = 0
    flags: int = 0
    nevents: int | None = None
    """None: ``len(events)``. Larger is how the selftest asks for too many events."""
    expect_errno: str | None = None
    """The ioctl must fail with this errno (``"EINVAL"``, ``"E2BIG"``); None: it must succeed."""
    label: str = ""
    """How the report names the filter (the test label)."""


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A runner's answer to setup the platform cannot do (a KVM ioctl on bare metal): the
    program did not run; ``run_case`` records a skip with ``reason``."""

    reason: str


@dataclass(frozen=True, slots=True)
class FilterRefused:
    """A runner's answer when ``KVM_SET_PMU_EVENT_FILTER`` failed: the program did not run."""

    errno: str
    """The errno's name, as ``EventFilterArgs.expect_errno`` spells it."""


@dataclass(frozen=True, slots=True)
class Variant:
    """A PMU shape to run a case on; None keeps the machine's own value.

    Besides the shape, a variant may ask for VM setup by KVM ioctls before the guest runs:
    ``event_filter`` (``KVM_SET_PMU_EVENT_FILTER``) and ``pmu_disabled``
    (``KVM_CAP_PMU_CAPABILITY`` with ``KVM_PMU_CAP_DISABLE``). They are not part of the
    shape: ``changes()`` leaves them out.
    """

    version: int | None = None
    n_gp: int | None = None
    n_fixed: int | None = None
    fixed_mask: int | None = None
    ebx_length: int | None = None
    ebx_unavailable: int | None = None
    fw_write: bool | None = None
    event_filter: EventFilterArgs | None = None
    """``KVM_SET_PMU_EVENT_FILTER`` before the first run; None: no filter."""
    pmu_disabled: bool = False
    """``KVM_CAP_PMU_CAPABILITY(KVM_PMU_CAP_DISABLE)`` before the vCPU is created."""

    def changes(self) -> dict[str, object]:
        """The shape fields that are set, as keyword changes."""
        names = ("version", "n_gp", "n_fixed", "fixed_mask", "ebx_length", "ebx_unavailable",
                 "fw_write")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def label(self) -> str:
        """How the report names this variant: the shape changes, then the VM setup."""
        parts = [f"{k}={val:#x}" if k in ("fixed_mask", "ebx_unavailable") else f"{k}={val}"
                 for k, val in self.changes().items()]
        if self.event_filter is not None:
            parts.append(self.event_filter.label or "filter")
        if self.pmu_disabled:
            parts.append("KVM_PMU_CAP_DISABLE")
        return ",".join(parts)


@dataclass(frozen=True, slots=True)
class Expectations:
    """Outcomes that differ by platform, named so a difference is explicit.

    The defaults are bare metal (Intel SDM / AMD APM); a design overrides the fields where KVM
    documents a difference.
    """

    platform: str = "bare-metal"
    unsupported_legacy_perfctr01: str = "gp"
    """WRMSR/RDMSR of PERFCTR0/1 beyond the GP count: ``"gp"`` on hardware; KVM drops the
    write and reads 0 (``"drop"``), pmu_counters_test 2.2."""
    max_version: int | None = None
    """Highest PMU version the platform presents (KVM's emulated vPMU: 2); None: the preset's."""
    forced_emulation: bool = False
    """KVM's forced-emulation prefix is available (check_emulated_instr runs)."""
    kvm_vm_ioctls: bool = False
    """The platform is a KVM VM, so the host side can issue VM ioctls before the guest runs
    (``KVM_SET_PMU_EVENT_FILTER``, ``KVM_CAP_PMU_CAPABILITY``); bare metal has no hypervisor."""
    event_filter_enforced: bool = True
    """KVM applies ``KVM_SET_PMU_EVENT_FILTER`` to the guest's counters. A design whose guest
    programs the event selectors without an exit (``mediated:passthrough=all``) cannot: an
    event the filter denies counts as if there were no filter."""
    fixed_counters_only: bool = True
    """arm64: the kernel has the fixed-counters-only opt-in (vCPU PMU attribute 5 of "KVM:
    arm64: PMU: Use multiple host PMUs"); one with the partitioned PMU series has its
    ENABLE_PARTITION under that id instead."""


class Runner(Protocol):
    """Runs one guest program on a fresh machine, on an optional PMU variant."""

    def __call__(self, program: GuestProgram, variant: Variant | None = None) -> Any:
        """Return the program's return value; or, without running it, ``Unsupported`` when the
        variant asks for setup the platform cannot do, or ``FilterRefused`` when
        ``KVM_SET_PMU_EVENT_FILTER`` fails."""
        ...


class Checker:
    """Collects the checks of one test case run."""

    def __init__(self, suite: str, test: str) -> None:
        self.suite = suite
        self.test = test
        self.results: list[CheckResult] = []

    def __repr__(self) -> str:
        return f"Checker(suite={self.suite!r}, test={self.test!r})"

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record a check; returns ``ok`` so callers can branch on it."""
        self.results.append(CheckResult(self.suite, self.test, name, bool(ok), detail))
        return ok

    def equal(self, name: str, got: object, expected: object) -> bool:
        """Record ``got == expected``."""
        return self.check(name, got == expected, f"got {_fmt(got)}, expected {_fmt(expected)}")

    def in_range(self, name: str, got: object, lo: int, hi: int) -> bool:
        """Record ``lo <= got <= hi`` (a Fault is never in range)."""
        ok = isinstance(got, int) and lo <= got <= hi
        return self.check(name, ok, f"got {_fmt(got)}, expected [{lo}, {hi}]")

    def faults(self, name: str, got: object, fault: Fault = Fault.GP) -> bool:
        """Record that an access took ``fault``."""
        return self.check(name, got is fault, f"got {_fmt(got)}, expected {fault.value}")

    def no_fault(self, name: str, got: object) -> bool:
        """Record that an access did not fault."""
        return self.check(name, not isinstance(got, Fault), f"got {_fmt(got)}")

    def skip(self, reason: str) -> None:
        """Record that the case does not apply here, with the suite's reason."""
        self.results.append(CheckResult(self.suite, self.test, "skipped", True, reason, True))


def _fmt(v: object) -> str:
    if isinstance(v, bool) or not isinstance(v, int):
        return repr(v)
    return f"{v} ({v:#x})"


CaseFn = Callable[[Checker, "SuiteContext"], GuestGen]
"""A test case body: a generator yielding port operations and recording checks."""


@dataclass(frozen=True, slots=True)
class SuiteContext:
    """What a case may consult besides the guest's own discovery: expectations and the
    runner's variant (so a case can state which shape it is checking)."""

    expectations: Expectations
    variant: Variant | None = None


@dataclass(frozen=True, slots=True)
class TestCase:
    """One ported test: a name, its body, and the variants it runs on (None: as is)."""

    name: str
    body: CaseFn
    variants: Callable[[GuestPmuView], Sequence[Variant | None]] | None = None
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Suite:
    """A ported suite: its name (as upstream), source, and cases in upstream order."""

    name: str
    source: str
    cases: tuple[TestCase, ...]
    applies: Callable[[GuestPmuView], str | None] = field(default=lambda view: None)
    """Returns a skip reason when the suite does not apply to this PMU, else None."""
    applies_to_platform: Callable[[Expectations], str | None] = field(
        default=lambda expectations: None)
    """Returns a skip reason when the platform cannot run the suite (a suite of KVM ioctls on
    bare metal), else None; asked before any machine runs."""


def discover_pmu() -> Generator[Op, Any, GuestPmuView]:
    """Read CPUID and PERF_CAPABILITIES the way lib/x86/pmu.c does (a guest sub-program)."""
    words: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    for leaf, sub in CPUID_LEAVES:
        words[(leaf, sub)] = yield Cpuid(leaf, sub)
    caps = 0
    if words[(1, 0)][2] >> 15 & 1:  # PDCM
        value = yield Rdmsr(IA32_PERF_CAPABILITIES)
        caps = value if isinstance(value, int) else 0
    return discover(words, caps)


def run_suite(suite: Suite, runner: Runner, expectations: Expectations) -> list[CheckResult]:
    """Run every case of ``suite`` (each on a fresh machine) and return all check results."""
    reason = suite.applies_to_platform(expectations)
    if reason:
        return [CheckResult(suite.name, "*", "skipped", True, reason, True)]
    view: GuestPmuView = runner(discover_pmu)
    reason = suite.applies(view)
    if reason:
        return [CheckResult(suite.name, "*", "skipped", True, reason, True)]
    results: list[CheckResult] = []
    for case in suite.cases:
        variants = case.variants(view) if case.variants else (None,)
        for variant in variants:
            results += run_case(suite, case, runner, SuiteContext(expectations, variant))
    return results


def run_case(suite: Suite, case: TestCase, runner: Runner,
             ctx: SuiteContext) -> list[CheckResult]:
    """Run one case on a fresh machine; a variant labels the test name.

    With an event filter, the ioctl's result is a check of its own: recorded before the body's
    checks when the filter was accepted (the program runs), or from ``FilterRefused``.
    """
    label = case.name if ctx.variant is None else f"{case.name}[{ctx.variant.label()}]"
    checker = Checker(suite.name, label)
    args = ctx.variant.event_filter if ctx.variant is not None else None

    def program() -> GuestGen:
        if args is not None:
            _check_filter_result(checker, args, None)
        yield from case.body(checker, ctx)

    result = runner(program, ctx.variant)
    if isinstance(result, Unsupported):
        checker.skip(result.reason)
    elif isinstance(result, FilterRefused) and args is not None:
        _check_filter_result(checker, args, result.errno)
    if not checker.results:
        checker.check("recorded a check", False, "the case recorded no check")
    return checker.results


def _check_filter_result(checker: Checker, args: EventFilterArgs, errno: str | None) -> None:
    """Record that KVM_SET_PMU_EVENT_FILTER returned what the case expects (0 or an errno)."""
    want = f"fails with {args.expect_errno}" if args.expect_errno else "returns 0"
    got = f"failed with {errno}" if errno else "returned 0"
    checker.check(f"KVM_SET_PMU_EVENT_FILTER {want}", errno == args.expect_errno, got)
