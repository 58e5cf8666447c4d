"""kvm-unit-tests ``x86/pmu_lbr.c`` (HEAD 1da1819e) as a guest program suite.

The test, in upstream order: five ways to skip (not Intel; no PMU; no PDCM; no LBR format in
IA32_PERF_CAPABILITIES[5:0]; neither the Core 2 pair of LBR MSRs at 0x40/0x60 nor the
Nehalem-and-later pair at 0x680/0x6C0 takes a WRMSR), then the depth probe (LBR_SELECT and
TOS zeroed, FROM_i/TO_i written with 0 for i = 0, 1, ... until one takes #GP: "The number of
guest LBR entries is good." if at least one did not), then DEBUGCTL.LBR set around
``lbr_test`` (200,000,000 calls of a ``noinline`` function) and every FROM_i/TO_i below the
depth non-zero: "The guest LBR FROM_IP/TO_IP values are good.". The skip reasons and check
names are upstream's ``report_skip``/``report`` strings.

Port decisions: ``lbr_test`` is the scripted stream ``lbr_test_loop`` (its branches are
``CALL_LOOP``: a call, a taken conditional, a return, the back edge); the depth found is in
the first check's detail, since the test only requires it to be positive. Upstream dropped
its TOS check (commit 584a927e, 2 Oct 2024: TOS reads 0 when the branches recorded are a
multiple of the depth); so does the port.
"""

from __future__ import annotations

from vpmu.arch.faults import Fault
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import CPUID_1_ECX_PDCM, PERF_CAP_LBR_FMT
from vpmu.guest.conformance._framework import Checker, Suite, SuiteContext, TestCase, discover_pmu
from vpmu.guest.port import Cpuid, Execute, GuestGen, Rdmsr, Wrmsr
from vpmu.workloads.streams import KUT_LBR_ITERATIONS, lbr_test_loop

MAX_NUM_LBR_ENTRY = 32
"""The probe's bound (``#define MAX_NUM_LBR_ENTRY``)."""
DEPTH_GOOD = "The number of guest LBR entries is good."
RECORDS_GOOD = "The guest LBR FROM_IP/TO_IP values are good."


def pmu_lbr(checker: Checker, ctx: SuiteContext) -> GuestGen:
    """main() of x86/pmu_lbr.c."""
    del ctx
    view = yield from discover_pmu()
    if not view.is_intel:
        return checker.skip("PMU_LBR test is for intel CPU's only")
    if view.version == 0:
        return checker.skip("No pmu is detected!")
    _, _, ecx, _ = yield Cpuid(1, 0)
    if not ecx & CPUID_1_ECX_PDCM:
        return checker.skip("Perfmon/Debug Capabilities MSR isn't supported.")
    if not view.perf_capabilities & PERF_CAP_LBR_FMT:
        return checker.skip("(Architectural) LBR is not supported.")
    pair = None
    for from_ip, to_ip in ((msrs.MSR_LBR_CORE_FROM, msrs.MSR_LBR_CORE_TO),
                           (msrs.MSR_LBR_NHM_FROM, msrs.MSR_LBR_NHM_TO)):
        if (yield Wrmsr(from_ip, 0)) is not Fault.GP:
            pair = from_ip, to_ip
            break
    if pair is None:
        return checker.skip("LBR on this platform is not supported!")
    from_ip, to_ip = pair
    yield Wrmsr(msrs.MSR_LBR_SELECT, 0)
    yield Wrmsr(msrs.MSR_LBR_TOS, 0)
    depth = 0
    while depth < MAX_NUM_LBR_ENTRY:
        if (yield Wrmsr(from_ip + depth, 0)) is Fault.GP or \
                (yield Wrmsr(to_ip + depth, 0)) is Fault.GP:
            break
        depth += 1
    if not checker.check(DEPTH_GOOD, depth > 0, f"max={depth}"):
        return None
    yield Wrmsr(msrs.IA32_DEBUGCTL, 1 << msrs.DEBUGCTL_LBR)
    yield Execute(lbr_test_loop(KUT_LBR_ITERATIONS))
    yield Wrmsr(msrs.IA32_DEBUGCTL, 0)
    zero = []
    for i in range(depth):
        to = yield Rdmsr(to_ip + i)
        frm = yield Rdmsr(from_ip + i)
        if not (isinstance(to, int) and to and isinstance(frm, int) and frm):
            zero.append(i)
    checker.check(RECORDS_GOOD, not zero, f"entries with a zero (or faulting) FROM/TO: {zero}")
    return None


SUITE = Suite("kvm-unit-tests/x86/pmu_lbr", source="kvm-unit-tests 1da1819e x86/pmu_lbr.c",
              cases=(TestCase("pmu_lbr", pmu_lbr, doc=(pmu_lbr.__doc__ or "").strip()),))
"""The port: one case, as upstream's main()."""
