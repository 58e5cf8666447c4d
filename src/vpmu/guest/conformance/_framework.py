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
class Variant:
    """A PMU shape to run a case on; None keeps the machine's own value."""

    version: int | None = None
    n_gp: int | None = None
    n_fixed: int | None = None
    fixed_mask: int | None = None
    ebx_length: int | None = None
    ebx_unavailable: int | None = None
    fw_write: bool | None = None

    def changes(self) -> dict[str, object]:
        """The fields that are set, as keyword changes."""
        names = ("version", "n_gp", "n_fixed", "fixed_mask", "ebx_length", "ebx_unavailable",
                 "fw_write")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


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


class Runner(Protocol):
    """Runs one guest program on a fresh machine, on an optional PMU variant."""

    def __call__(self, program: GuestProgram, variant: Variant | None = None) -> Any:
        """Return the program's return value."""
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
    """Run one case on a fresh machine; a variant labels the test name."""
    label = case.name if ctx.variant is None else f"{case.name}[{_variant_label(ctx.variant)}]"
    checker = Checker(suite.name, label)

    def program() -> GuestGen:
        yield from case.body(checker, ctx)

    runner(program, ctx.variant)
    if not checker.results:
        checker.check("recorded a check", False, "the case recorded no check")
    return checker.results


def _variant_label(v: Variant) -> str:
    return ",".join(f"{k}={val:#x}" if k in ("fixed_mask", "ebx_unavailable") else f"{k}={val}"
                    for k, val in v.changes().items())
