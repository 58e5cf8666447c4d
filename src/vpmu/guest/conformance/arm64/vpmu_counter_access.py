"""KVM selftest ``tools/testing/selftests/kvm/arm64/vpmu_counter_access.c`` (torvalds/linux
@v6.16, the SET_NR_COUNTERS version) as a guest program suite, with the FIXED_COUNTERS_ONLY
cases of "KVM: arm64: PMU: Use multiple host PMUs" (Akihiko Odaki, v8 10 Jul 2026, not in
mainline).

Host side, as variants (``ArmVariant``, run by the VM runner): for every N from 0 to the
maximum the default PMU gives (read by a probe), KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS(N)
before the first run; N = maximum + 1 must fail with EINVAL; userspace (KVM_SET_ONE_REG)
writes all-ones to the SET/CLR bitmaps and the guest must see only implemented bits; with
fixed-counters-only N is 0 and SET_NR_COUNTERS(1) fails with EINVAL.

Guest side (``guest_code``): PMCR_EL0.N == N; bits N..30 RAZ in all six SET/CLR views; for
each n < N, in the four access modes (direct, PMSELR + PMXEV*, and the two mixes) the enable
bit sets and clears in all six views, a type of exclude-EL1 | 0x08 reads back, the counter
reads 0x12345 + n back; for n in N..30 every count or type access is UNDEFINED.

Port decisions: the re-INIT and second run of the host side are not modelled (one run per
N); userspace's GET_ONE_REG read-back is the guest's read of the same registers; MDCR_EL2.HPMN
(nested EL2) is not modelled. On bare metal a variant is a PMU with N counters, and the KVM
ioctls' cases are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vpmu.arch.faults import Fault
from vpmu.guest.conformance._framework import Checker, Suite, SuiteContext, TestCase, Variant
from vpmu.guest.port import GuestGen, Mrs, Msr

SUITE_NAME = "selftests/kvm/arm64/vpmu_counter_access"
PMCR_N_SHIFT, PMCR_N_MASK = 11, 0x1F
MAX_COUNTERS = 31
EXCLUDE_EL1, INST_RETIRED = 1 << 31, 0x08
SET_CLR = (("PMCNTENSET_EL0", "PMCNTENCLR_EL0"), ("PMINTENSET_EL1", "PMINTENCLR_EL1"),
           ("PMOVSSET_EL0", "PMOVSCLR_EL0"))
ALL_VIEWS = tuple(name for pair in SET_CLR for name in pair)
ACCESS_MODES = ((False, False), (True, False), (False, True), (True, True))
"""(type through PMSELR + PMXEVTYPER, counter through PMSELR + PMXEVCNTR)."""


@dataclass(frozen=True, slots=True)
class ArmVariant(Variant):
    """A run with the vCPU PMU attributes the host side sets before KVM_RUN."""

    nr_counters: int | None = None
    """SET_NR_COUNTERS; None: not set."""
    fixed_counters_only: bool = False
    """The proposal's FIXED_COUNTERS_ONLY."""
    userspace_all_ones: bool = False
    """KVM_SET_ONE_REG of all-ones to every SET/CLR bitmap."""
    expect_errno: str | None = None
    """The host side's attribute must fail with this errno (the guest does not run)."""

    def changes(self) -> dict[str, object]:
        """A bare-metal PMU with N counters."""
        return {} if self.nr_counters is None else {"n_counters": self.nr_counters}

    def label(self) -> str:
        parts = [f"N={self.nr_counters}"] if self.nr_counters is not None else []
        parts += ["fixed-counters-only"] * self.fixed_counters_only
        parts += ["userspace all-ones"] * self.userspace_all_ones
        return ",".join(parts)

    def design_options(self) -> dict[str, str]:
        """The ``emulated`` options that make the VMM set these attributes."""
        opts = {"pmu": "fixed-counters-only"} if self.fixed_counters_only else {}
        if self.nr_counters is not None:
            opts["nr_counters"] = str(self.nr_counters)
        return opts

    @property
    def needs_kvm(self) -> bool:
        """The variant is about KVM's ioctls (no bare-metal equivalent)."""
        return self.fixed_counters_only or self.userspace_all_ones or \
            self.expect_errno is not None


@dataclass(frozen=True, slots=True)
class KvmSetupRefused:
    """A runner's answer when a vCPU attribute failed: the guest did not run."""

    attr: str
    errno: str


def probe_n() -> GuestGen:
    """The default PMU's N (what the host side's ``get_pmcr_n`` reads)."""
    pmcr = yield Mrs("PMCR_EL0")
    return pmcr >> PMCR_N_SHIFT & PMCR_N_MASK if isinstance(pmcr, int) else 0


def _mask(n: int) -> int:
    return (1 << n) - 1 | 1 << MAX_COUNTERS


def _views() -> GuestGen:
    """The six SET/CLR views."""
    values = {}
    for name in ALL_VIEWS:
        values[name] = yield Mrs(name)
    return values


def _write_counter(n: int, value: int, sel: bool) -> GuestGen:
    if sel:
        yield Msr("PMSELR_EL0", n)
        return (yield Msr("PMXEVCNTR_EL0", value))
    return (yield Msr(f"PMEVCNTR{n}_EL0", value))


def _read_counter(n: int, sel: bool) -> GuestGen:
    if sel:
        yield Msr("PMSELR_EL0", n)
        return (yield Mrs("PMXEVCNTR_EL0"))
    return (yield Mrs(f"PMEVCNTR{n}_EL0"))


def _write_type(n: int, value: int, sel: bool) -> GuestGen:
    if sel:
        yield Msr("PMSELR_EL0", n)
        return (yield Msr("PMXEVTYPER_EL0", value))
    return (yield Msr(f"PMEVTYPER{n}_EL0", value))


def _read_type(n: int, sel: bool) -> GuestGen:
    if sel:
        yield Msr("PMSELR_EL0", n)
        return (yield Mrs("PMXEVTYPER_EL0"))
    return (yield Mrs(f"PMEVTYPER{n}_EL0"))


def guest_code(c: Checker, ctx: SuiteContext) -> GuestGen:
    """``guest_code(expected_pmcr_n)``."""
    v = ctx.variant
    want = v.nr_counters if isinstance(v, ArmVariant) and v.nr_counters is not None else 0
    if isinstance(v, ArmVariant) and v.fixed_counters_only:
        want = 0
    pmcr = yield Mrs("PMCR_EL0")
    n = pmcr >> PMCR_N_SHIFT & PMCR_N_MASK if isinstance(pmcr, int) else -1
    c.equal("PMCR_EL0.N is the configured N", n, want)
    if isinstance(v, ArmVariant) and v.userspace_all_ones:
        seen = yield from _views()
        c.check("userspace's all-ones write is masked to the implemented counters",
                all(isinstance(x, int) and x & ~_mask(want) == 0 and x & (1 << 31)
                    for x in seen.values()), f"{seen}")
        return
    for setr, _ in SET_CLR:
        yield Msr(setr, 0xFFFF_FFFF)
    seen = yield from _views()
    c.check("bits N..30 read as zero in all six views",
            all(isinstance(x, int) and x & ~_mask(want) == 0 for x in seen.values()),
            f"{seen}")
    yield from _implemented(c, want)
    yield from _unimplemented(c, want)


def _implemented(c: Checker, n_counters: int) -> GuestGen:
    """``test_access_pmc_regs`` for each implemented counter in the four access modes."""
    ok, detail = True, f"{n_counters} counters x {len(ACCESS_MODES)} modes"
    for type_sel, cnt_sel in ACCESS_MODES:
        for n in range(n_counters):
            bit = 1 << n
            for _, clr in SET_CLR:
                yield Msr(clr, bit)
            cleared = yield from _views()
            for setr, _ in SET_CLR:
                yield Msr(setr, bit)
            set_ = yield from _views()
            yield from _write_type(n, EXCLUDE_EL1 | INST_RETIRED, type_sel)
            typ = yield from _read_type(n, type_sel)
            yield from _write_counter(n, 0x12345 + n, cnt_sel)
            cnt = yield from _read_counter(n, cnt_sel)
            good = all(x & bit == 0 for x in cleared.values()) and \
                all(x & bit for x in set_.values()) and \
                typ == EXCLUDE_EL1 | INST_RETIRED and cnt == 0x12345 + n
            if ok and not good:
                ok, detail = False, (f"counter {n} (type_sel={type_sel}, cnt_sel={cnt_sel}): "
                                     f"type {typ!r}, counter {cnt!r}")
    c.check("implemented counters: bitmaps, type and value in every access mode", ok, detail)


def _unimplemented(c: Checker, n_counters: int) -> GuestGen:
    """``test_access_invalid_pmc_regs``: every access to counters N..30 is UNDEFINED."""
    bad: list[str] = []
    for n in range(n_counters, MAX_COUNTERS):
        for sel in (False, True):
            got: Sequence[Any] = (
                (yield from _read_counter(n, sel)), (yield from _write_counter(n, 0, sel)),
                (yield from _read_type(n, sel)), (yield from _write_type(n, 0, sel)))
            if any(g is not Fault.UNDEF for g in got):
                bad.append(f"{n}{' via PMSELR' if sel else ''}: {got}")
    c.check("accesses to counters N..30 are UNDEFINED", not bad, "; ".join(bad[:3]))


def variants(max_n: Any) -> list[Variant | None]:
    """Every N from 0 to the maximum, N = maximum + 1 (EINVAL), the userspace writes, and
    the fixed-counters-only cases."""
    top = int(max_n)
    out: list[Variant | None] = [ArmVariant(nr_counters=n) for n in range(top + 1)]
    out += [ArmVariant(nr_counters=top + 1, expect_errno="EINVAL"),
            ArmVariant(nr_counters=top, userspace_all_ones=True),
            ArmVariant(fixed_counters_only=True),
            ArmVariant(fixed_counters_only=True, nr_counters=0),
            ArmVariant(fixed_counters_only=True, nr_counters=1, expect_errno="EINVAL")]
    return out


SUITE = Suite(
    name=SUITE_NAME,
    source="torvalds/linux@v6.16 tools/testing/selftests/kvm/arm64/vpmu_counter_access.c",
    cases=(TestCase("vpmu_counter_access", guest_code, variants,
                    doc="PMCR.N, RAZ bitmaps and UNDEF above N, for every N"),),
)
