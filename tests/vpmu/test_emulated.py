"""The emulated (perf-backed) design: KVM's perf-call patterns, PMIs, options and filter."""

from collections import Counter
from typing import Any

import pytest

import vpmu
from vpmu.arch.x86 import msrs
from vpmu.guest import Execute, Rdmsr, Rdpmc, SetCpl, WaitPmi, Wrmsr
from vpmu.guest.os import ProgramOs
from vpmu.host.machine import Host
from vpmu.machine.vm import Vm, run_until_done
from vpmu.trace import PerfCall, VmExit
from vpmu.vpmu.design import make_design
from vpmu.vpmu.filter import KVM_PMU_EVENT_DENY, PmuEventFilter, set_pmu_event_filter
from vpmu.workloads import loop

INST = 0x00C0 | msrs.EVTSEL_USR | msrs.EVTSEL_OS | msrs.EVTSEL_EN
SEL0, PMC0, GCTRL = msrs.IA32_PERFEVTSEL0, msrs.IA32_A_PMC0, msrs.IA32_PERF_GLOBAL_CTRL


def run(program: Any, design: str = "emulated", preset: str = "intel-icx",
        event_filter: PmuEventFilter | None = None) -> tuple[Any, Host]:
    """Run one guest program on a 1-vCPU VM; the program's value and the host (its trace)."""
    host = Host(preset, cpus=1)
    vm = Vm(host, make_design(design), [ProgramOs(program)], event_filter=event_filter)
    assert run_until_done(host, [vm], limit_ps=10**15, step_ps=10**10)
    return vm.vcpus[0].task.result, host


def calls(host: Host) -> Counter[str]:
    """Perf calls by API."""
    return Counter(r.api for r in host.trace.records if isinstance(r, PerfCall))


def handler_like() -> Any:
    """A PMI handler's shape on one counter: disable all, read and rewrite the counter, enable."""
    yield Wrmsr(SEL0, INST)
    yield Wrmsr(GCTRL, 1)
    yield Execute(loop(1000))
    yield Wrmsr(GCTRL, 0)
    v = yield Rdpmc(0)
    yield Wrmsr(PMC0, 0)
    yield Wrmsr(GCTRL, 1)
    yield Execute(loop(10))
    return v


def test_is_paused_skips_calls_on_paused_events() -> None:
    """With is_paused, the RDPMC and counter write while GLOBAL_CTRL is 0 make no perf call,
    and the re-enable makes no repeat pause: 1.3's net cost per counter."""
    v1, paused = run(handler_like, "emulated")
    v2, baseline = run(handler_like, "emulated:is_paused=false")
    assert v1 == v2
    fast, slow = calls(paused), calls(baseline)
    assert fast["read_value"] == 0 and slow["read_value"] == 2   # RDPMC + counter write
    assert slow["period"] - fast["period"] == 1                     # the counter write
    assert slow["pause"] - fast["pause"] == 1                       # the repeat pause
    assert fast["create"] == slow["create"] == 1


def test_reuse_off_recreates_the_event_on_every_reprogram() -> None:
    """The 2019 baseline: each reprogram that leaves the counter enabled releases and
    creates, where reuse pauses and resumes."""
    _, reuse = run(handler_like, "emulated:emulated_instructions=false")
    _, recreate = run(handler_like,
                      "emulated:reuse_perf_events=false,emulated_instructions=false")
    assert calls(reuse)["create"] == 1 and calls(reuse)["release"] == 0
    assert calls(recreate)["create"] == 2 and calls(recreate)["release"] == 1


def test_guest_sees_bare_metal_counts_through_perf_events() -> None:
    """counter + perf count equals bare metal. The WRMSRs differ in which one counts: on
    hardware the GLOBAL_CTRL write that disables is counted (it retires before the effect)
    and the EVTSEL write that enables is not; KVM counts the exiting WRMSRs that leave the
    counter enabled (1.6): the EVTSEL and the first GLOBAL_CTRL write. Both give 10,002."""
    value, _ = run(handler_like)
    assert value == vpmu.run_guest(handler_like, preset="intel-icx") == 10_000 + 2


def test_emulated_instructions_off_leaves_the_skipped_wrmsrs_uncounted() -> None:
    """The pre-5.18 kernel: exiting instructions are never counted."""
    value, _ = run(handler_like, "emulated:emulated_instructions=false")
    assert value == 10_000


def overflow_program() -> Any:
    """Arm PMC0 to overflow after 100 instructions with INT, wait for the PMI."""
    yield Wrmsr(msrs.X2APIC_LVTPC, msrs.LVT_DELIVERY_NMI << 8)
    yield Wrmsr(PMC0, (1 << 48) - 100)
    yield Wrmsr(SEL0, INST | msrs.EVTSEL_INT)
    yield Wrmsr(GCTRL, 1)
    yield Execute(loop(1000))
    got = yield WaitPmi(1_000_000)
    status = yield Rdmsr(msrs.IA32_PERF_GLOBAL_STATUS)
    lvtpc = yield Rdmsr(msrs.X2APIC_LVTPC)
    return got, status, lvtpc


def test_overflow_reaches_the_guest_as_a_pmi_and_masks_the_intel_lvtpc() -> None:
    """Host overflow -> kvm_perf_overflow -> KVM_REQ_PMI -> LVTPC delivery (1.4): the guest
    sees the PMI and its status bit, and its LVTPC comes back masked on Intel."""
    (got, status, lvtpc), host = run(overflow_program)
    assert got is True and status & 1
    assert lvtpc >> msrs.LVT_MASKED & 1
    reasons = Counter(r.reason for r in host.trace.records if isinstance(r, VmExit))
    assert reasons["EXCEPTION_NMI"] >= 1


def test_amd_guest_lvtpc_is_not_masked_on_delivery() -> None:
    """49ff3b4aec51: AMD guests keep LVTPC unmasked."""
    def program() -> Any:
        yield Wrmsr(msrs.X2APIC_LVTPC, msrs.LVT_DELIVERY_NMI << 8)
        yield Wrmsr(msrs.MSR_F15H_PERF_CTR0, (1 << 48) - 100)
        yield Wrmsr(msrs.MSR_F15H_PERF_CTL0, INST | msrs.EVTSEL_INT)
        yield Wrmsr(msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL, 1)
        yield Execute(loop(1000))
        got = yield WaitPmi(1_000_000)
        return got, (yield Rdmsr(msrs.X2APIC_LVTPC))
    (got, lvtpc), _ = run(program, preset="amd-zen4")
    assert got is True and not lvtpc >> msrs.LVT_MASKED & 1


def test_deny_filter_keeps_the_counter_at_zero() -> None:
    """A denied event is never created: the counter stays where the guest left it."""
    flt = set_pmu_event_filter(KVM_PMU_EVENT_DENY, [0x00C0])
    assert isinstance(flt, PmuEventFilter)
    value, host = run(handler_like, event_filter=flt)
    assert value == 0 and calls(host)["create"] == 0


def test_exits_carry_reason_msr_and_direction() -> None:
    """Every intercepted access is one exit with its VMX reason; the MSR name and direction
    are kept for the kvm_msr histogram."""
    _, host = run(handler_like)
    exits = [r for r in host.trace.records if isinstance(r, VmExit)]
    assert Counter(e.reason for e in exits)["RDPMC"] == 1
    writes = Counter(e.msr for e in exits if e.reason == "MSR_WRITE")
    assert writes[GCTRL] == 3 and writes[SEL0] == 1 and writes[PMC0] == 1
    assert all(e.write for e in exits if e.reason == "MSR_WRITE")


def test_tsc_deadline_write_is_a_fastpath_exit() -> None:
    """handle_fastpath_set_msr_irqoff: no full exit unless a request is pending."""
    def program() -> Any:
        yield Wrmsr(msrs.MSR_IA32_TSC_DEADLINE, 123)
    _, host = run(program)
    (e,) = [r for r in host.trace.records if isinstance(r, VmExit)]
    assert e.fastpath and e.reason == "MSR_WRITE"


def test_user_rdpmc_without_pce_faults_before_exiting() -> None:
    """The CR4.PCE/CPL #GP takes priority over RDPMC exiting: no exit is recorded."""
    def program() -> Any:
        yield SetCpl(3)
        return (yield Rdpmc(0))
    value, host = run(program)
    assert value is not None and str(value) == "Fault.GP"
    assert not [r for r in host.trace.records if isinstance(r, VmExit)]


@pytest.mark.parametrize("design", ["emulated", "none"])
def test_runs_are_deterministic(design: str) -> None:
    """Same program and seed: the same records."""
    _, a = run(handler_like, design)
    _, b = run(handler_like, design)
    assert a.trace.records == b.trace.records
