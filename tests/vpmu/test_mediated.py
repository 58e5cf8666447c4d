"""The mediated vPMU (reference/kvm_x86_vpmu.md 2): intercepts, load/put MSR traffic, what put
clears, the guest's counts, the PMI path, fastpath refusal, switch points, the event filter,
admission control and host requirements."""

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from test_emulated import GCTRL, INST, PMC0, SEL0, run

from vpmu.arch.faults import Fault
from vpmu.arch.presets import get_preset
from vpmu.arch.x86 import events, msrs
from vpmu.arch.x86.caps import RDPMC_FIXED
from vpmu.guest import Cpuid, Execute, Rdmsr, Rdpmc, WaitPmi, Wrmsr
from vpmu.guest.os import GuestOs, ProgramOs
from vpmu.host.machine import Host
from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.guest import PerfOpenError
from vpmu.host.tools import nmi_watchdog
from vpmu.machine.baremetal import run_guest
from vpmu.machine.vm import Vm, run_until_done, run_vm_program
from vpmu.trace import PerfOpen, PmuContext, VmExit
from vpmu.uapi.perf_event import PERF_COUNT_HW_CPU_CYCLES, PERF_TYPE_HARDWARE
from vpmu.vpmu.design import make_design
from vpmu.vpmu.designs.mediated import switch
from vpmu.vpmu.designs.mediated.vcpu import MediatedVcpu
from vpmu.vpmu.filter import KVM_PMU_EVENT_DENY, PmuEventFilter, set_pmu_event_filter
from vpmu.workloads import loop
from vpmu.workloads.streams import Stream

STATUS, OVF = msrs.IA32_PERF_GLOBAL_STATUS, msrs.IA32_PERF_GLOBAL_OVF_CTRL
FIXED_CTRL, FIXED0 = msrs.IA32_FIXED_CTR_CTRL, msrs.IA32_FIXED_CTR0
AMD_CTR0, AMD_CTL0 = msrs.MSR_F15H_PERF_CTR0, msrs.MSR_F15H_PERF_CTL0
AMD_CTL, AMD_STATUS = msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL, msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS
AMD_CLR, AMD_SET = (msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR,
                    msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET)
LVTPC, TSC_DEADLINE = msrs.X2APIC_LVTPC, msrs.MSR_IA32_TSC_DEADLINE
N = 10_000
STREAM = Stream("n-insns", {events.CYCLES: N // 2, events.INSTRUCTIONS: N})


# --- helpers ----------------------------------------------------------------------------------


def boot(guest: Any, design: str = "mediated", preset: str = "intel-icx",
         event_filter: PmuEventFilter | None = None) -> tuple[Vm, Host]:
    """Run a guest program (or a GuestOs) on a 1-vCPU VM to completion; the VM and host."""
    host = Host(preset, cpus=1)
    os_: GuestOs = guest if isinstance(guest, ProgramOs) else ProgramOs(guest)
    vm = Vm(host, make_design(design), [os_], event_filter=event_filter)
    assert run_until_done(host, [vm], limit_ps=10**15, step_ps=10**10)
    return vm, host


def pmu_of(vm: Vm) -> MediatedVcpu:
    pmu = vm.vcpus[0].pmu
    assert isinstance(pmu, MediatedVcpu)
    return pmu


def exits(host: Host) -> list[VmExit]:
    return [r for r in host.trace.records if isinstance(r, VmExit)]


def contexts(host: Host) -> list[PmuContext]:
    return [r for r in host.trace.records if isinstance(r, PmuContext)]


def switches(host: Host) -> list[tuple[str, int, bool, bool, bool]]:
    """Per exit: (reason, msr, fastpath, put in it, load right after it). A put starts with
    its exit; the lazy load starts when the exit's cost has been paid."""
    ctx = contexts(host)
    return [(e.reason, e.msr, e.fastpath,
             any(c.state == "host" and c.t_ps == e.t_ps for c in ctx),
             any(c.state == "guest" and c.t_ps == e.t_ps + e.cost_ps for c in ctx))
            for e in exits(host)]


def named(op: str, addr: int, n: int = 1) -> Counter[str]:
    """MsrTally's key for an access: "wrmsr MSR_P6_EVNTSEL0" and so on."""
    return Counter({f"{op} {msrs.kernel_msr_name(addr)}": n})


def times(c: Counter[str], n: int) -> Counter[str]:
    return Counter({k: v * n for k, v in c.items()})


Snapshot = tuple[str, dict[str, int], dict[int, int], dict[int, tuple[int, str]]]
"""(load or put, plain registers, GP selectors by index, counters by global index)."""


@pytest.fixture
def hw_after(monkeypatch: pytest.MonkeyPatch) -> list[Snapshot]:
    """A host-side probe: the hardware PMU (registers, selectors; counters' value and
    origin) right after every switch.load and switch.put, in order."""
    snaps: list[Snapshot] = []

    def wrap(kind: str, orig: Callable[..., None]) -> Callable[..., None]:
        def probe(vc: Any, t: switch.MsrTally) -> None:
            orig(vc, t)
            t.pmu.sync()
            snaps.append((kind, dict(t.pmu.regs), dict(t.pmu.sels),
                          {k: (c.value, c.origin) for k, c in t.pmu.counters.items()}))
        return probe
    monkeypatch.setattr(switch, "load", wrap("load", switch.load))
    monkeypatch.setattr(switch, "put", wrap("put", switch.put))
    return snaps


# --- 1. intercepts (2.4) ----------------------------------------------------------------------


def intel_accesses() -> Any:
    """Counter, global and RDPMC accesses, then a selector and FIXED_CTR_CTRL write."""
    out = [(yield Wrmsr(PMC0, 5)), (yield Rdmsr(PMC0)), (yield Wrmsr(FIXED0, 7)),
           (yield Rdmsr(FIXED0)), (yield Rdmsr(GCTRL)), (yield Wrmsr(GCTRL, 0)),
           (yield Rdmsr(STATUS)), (yield Wrmsr(OVF, 0)), (yield Rdpmc(0)),
           (yield Rdpmc(RDPMC_FIXED | 0))]
    yield Wrmsr(SEL0, 0)
    yield Wrmsr(FIXED_CTRL, 0)
    return out


def test_intel_counters_globals_and_rdpmc_pass_through_with_every_counter() -> None:
    """2.4: with the host's counter counts, counters, GLOBAL_CTRL/STATUS/OVF_CTRL and RDPMC
    run on the hardware (no exit); EVNTSEL and FIXED_CTR_CTRL always exit."""
    value, host = run(intel_accesses, "mediated")
    assert value == [None, 5, None, 7, 0xFF, None, 0, None, 5, 7]
    assert [(e.reason, e.msr) for e in exits(host)] == [("MSR_WRITE", SEL0),
                                                        ("MSR_WRITE", FIXED_CTRL)]


def test_fewer_guest_counters_make_globals_and_rdpmc_exit_and_the_rest_gp() -> None:
    """2.4: with guest_counters=2 (< 8) the global registers and RDPMC exit; GP0/GP1 still
    pass through; a counter between the guest's count and the host's is intercepted and #GPs
    (RDMSR, WRMSR and RDPMC)."""
    def program() -> Any:
        out = [(yield Wrmsr(PMC0 + 1, 3)), (yield Rdmsr(PMC0 + 1)), (yield Rdmsr(GCTRL)),
               (yield Rdmsr(STATUS)), (yield Wrmsr(OVF, 0)), (yield Rdpmc(1))]
        return [*out, (yield Rdmsr(PMC0 + 2)), (yield Wrmsr(PMC0 + 2, 1)), (yield Rdpmc(2))]
    value, host = run(program, "mediated:guest_counters=2")
    assert value == [None, 3, 0b11, 0, None, 3, Fault.GP, Fault.GP, Fault.GP]
    assert [(e.reason, e.msr) for e in exits(host)] == [
        ("MSR_READ", GCTRL), ("MSR_READ", STATUS), ("MSR_WRITE", OVF), ("RDPMC", -1),
        ("MSR_READ", PMC0 + 2), ("MSR_WRITE", PMC0 + 2), ("RDPMC", -1)]


def test_amd_counters_and_globals_pass_through_and_perf_ctl_exits() -> None:
    """2.4 (svm_recalc_pmu_msr_intercepts): PERF_CTR, GLOBAL_CTL/STATUS/STATUS_CLR and
    RDPMC pass through on amd-zen4 with every counter; PERF_CTL exits."""
    def program() -> Any:
        out = [(yield Wrmsr(AMD_CTR0, 9)), (yield Rdmsr(AMD_CTR0)), (yield Rdmsr(AMD_CTL)),
               (yield Wrmsr(AMD_CTL, 0x3F)), (yield Rdmsr(AMD_STATUS)),
               (yield Wrmsr(AMD_CLR, 0)), (yield Rdpmc(0))]
        yield Wrmsr(AMD_CTL0, 0)
        return out
    value, host = run(program, "mediated", preset="amd-zen4")
    assert value == [None, 9, 0x3F, None, 0, None, 9]
    assert [(e.reason, e.msr) for e in exits(host)] == [("MSR_WRITE", AMD_CTL0)]


# --- 2. load/put MSR traffic (2.3) ------------------------------------------------------------


def cpuids() -> Any:
    """A guest whose PMU is idle: five CPUID exits."""
    for _ in range(5):
        yield Cpuid(0)


def loads_and_puts(host: Host) -> tuple[int, int]:
    states = Counter(c.state for c in contexts(host))
    return states["guest"], states["host"]


@pytest.mark.parametrize("elide", [True, False])
def test_intel_load_and_put_traffic_of_an_idle_guest(elide: bool) -> None:
    """2.3 (Intel, 8 GP + 4 fixed): load = GLOBAL_CTRL 0, LVTPC, per counter RDPMC (+ WRMSR
    only if it differs; always without elision) and EVNTSEL, GLOBAL_STATUS read (nothing
    to fix), FIXED_CTR_CTRL; put = GLOBAL_STATUS read, 12 RDPMC (all zero: no counter
    write), LVTPC. One put per CPUID exit, one load per entry that runs guest code."""
    vm, host = boot(cpuids, f"mediated:elide_writes={str(elide).lower()}")
    assert loads_and_puts(host) == (5, 5)
    load = named("wrmsr", GCTRL) + named("wrmsr", LVTPC) + named("rdmsr", STATUS) \
        + named("wrmsr", FIXED_CTRL)
    for i in range(8):
        load += named("wrmsr", SEL0 + i)
    if elide:
        load["rdpmc"] = 12
    else:
        for i in range(8):
            load += named("wrmsr", PMC0 + i)
        for i in range(4):
            load += named("wrmsr", FIXED0 + i)
    put = named("rdmsr", STATUS) + named("wrmsr", LVTPC) + Counter(rdpmc=12)
    assert pmu_of(vm).traffic == {"load": times(load, 5), "put": times(put, 5)}


def test_amd_load_and_put_traffic_of_an_idle_guest() -> None:
    """2.3 AMD (amd-zen5, 6 GP), switch.py's order: load = GLOBAL_CTL 0, LVTPC, 6 x (RDPMC,
    PERF_CTL), STATUS read, STATUS_SET = guest value, GLOBAL_CTL = guest value; put =
    GLOBAL_CTL read (after VMRUN), GLOBAL_CTL 0, STATUS read, 6 RDPMC, LVTPC."""
    vm, host = boot(cpuids, "mediated", preset="amd-zen5")
    assert loads_and_puts(host) == (5, 5)
    load = named("wrmsr", AMD_CTL, 2) + named("wrmsr", LVTPC) + named("rdmsr", AMD_STATUS) \
        + named("wrmsr", AMD_SET) + Counter(rdpmc=6)
    for i in range(6):
        load += named("wrmsr", AMD_CTL0 + 2 * i)
    put = named("rdmsr", AMD_CTL) + named("wrmsr", AMD_CTL) + named("rdmsr", AMD_STATUS) \
        + named("wrmsr", LVTPC) + Counter(rdpmc=6)
    assert pmu_of(vm).traffic == {"load": times(load, 5), "put": times(put, 5)}


# --- 3. clear_on_put --------------------------------------------------------------------------


def used_and_written() -> Any:
    """GP1 written but never enabled; GP0 counts a stream; the CPUID exit puts."""
    yield Wrmsr(PMC0 + 1, 12345)
    yield Wrmsr(SEL0, INST)
    yield Wrmsr(GCTRL, 1)
    yield Execute(STREAM)
    yield Cpuid(0)


GUEST = "vm0/vcpu0"


@pytest.mark.parametrize(("policy", "gp0", "sel0", "gp1"), [
    ("upstream", (0, ""), 0, (0, "")),
    ("none", (N + 1, GUEST), INST, (12345, GUEST)),
    ("guest-used", (0, ""), 0, (12345, GUEST)),
    ("all", (0, ""), 0, (0, "")),
])
def test_clear_on_put(hw_after: list[Snapshot], policy: str, gp0: tuple[int, str], sel0: int,
                      gp1: tuple[int, str]) -> None:
    """2.3 put step 3 and the clear_on_put options: right after the CPUID exit's put, GP0
    (N + the GLOBAL_CTRL write the hardware counted) and its selector are zeroed by
    upstream, guest-used and all, left (tagged with the guest) by none; GP1, written but
    never enabled, is zeroed by upstream (non-zero) and all but not by guest-used."""
    vm, host = boot(used_and_written, f"mediated:clear_on_put={policy}")
    kind, regs, sels, ctrs = hw_after[-1]
    assert kind == "put" and contexts(host)[-1].why == "run-loop"
    assert ctrs[0] == gp0 and sels[0] == sel0 and ctrs[1] == gp1
    assert pmu_of(vm).gp[0].counter == N + 2   # KVM counted the skipped CPUID
    if policy == "all":
        assert all(v == 0 for v, _ in ctrs.values())
        assert not any(sels.values()) and regs["FIXED_CTR_CTRL"] == 0


# --- 4. counts --------------------------------------------------------------------------------


def count_with_an_exit() -> Any:
    """GP0 counts instructions without PMI over N instructions split by a CPUID exit."""
    yield Wrmsr(SEL0, INST)
    yield Wrmsr(GCTRL, 1)
    yield Execute(loop(N // 20))
    yield Cpuid(0)
    yield Execute(loop(N // 20))
    return (yield Rdpmc(0)), (yield Rdmsr(PMC0)), (yield Wrmsr(SEL0, 0)), (yield Rdpmc(0))


def test_guest_counts_equal_bare_metal() -> None:
    """2.5.6 + 1.6: N, plus the passed-through GLOBAL_CTRL write the hardware retires with
    the counter enabled, plus the CPUID KVM skips (counter + 1): N + 2 at the RDPMC; the
    passed-through RDPMC and RDMSR retire on the hardware (N + 3, N + 4); the disabling
    EVNTSEL write exits and KVM counts it, as the hardware counts a disabling write
    (N + 5). The enabling EVNTSEL write is not counted: eventsel_hw is only refreshed at
    the next entry, as the hardware does not count the write that enables. Bare metal gives
    the same; the emulated design differs (N + 3 first: it counts the enabling write)."""
    value = run_vm_program(count_with_an_exit, preset="intel-icx", design="mediated")
    assert value == (N + 2, N + 3, None, N + 5)
    assert run_guest(count_with_an_exit, preset="intel-icx", design=None) == value


# --- 5. PMIs (2.5) ----------------------------------------------------------------------------


class StatusReadingOs(ProgramOs):
    """A guest whose PMI handler reads GLOBAL_STATUS and clears it."""

    def __init__(self, program: Any) -> None:
        super().__init__(program)
        self.seen: list[Any] = []

    def on_pmi(self) -> Any:
        def handler() -> Any:
            self.seen.append((yield Rdmsr(STATUS)))
            yield Wrmsr(OVF, 1)
        return handler()


def _arm_gp0_overflow() -> Any:
    """Unmask the LVTPC (NMI), arm GP0 at -1000 instructions with INT, enable it, run 1000."""
    yield Wrmsr(LVTPC, msrs.LVT_DELIVERY_NMI << 8)
    yield Wrmsr(PMC0, (1 << 48) - 1000)
    yield Wrmsr(SEL0, INST | msrs.EVTSEL_INT)
    yield Wrmsr(GCTRL, 1)
    yield Execute(loop(1000))


def test_overflow_exits_as_an_irq_and_delivers_the_guest_pmi() -> None:
    """2.5.1-3: GP0 armed at -1000 with INT overflows in hardware; LVTPC (vector 0xF5,
    fixed) makes an EXTERNAL_INTERRUPT exit, never EXCEPTION_NMI; KVM_REQ_PMI delivers the
    PMI at the next entry; the handler sees bit 0 in the passed-through GLOBAL_STATUS."""
    def program() -> Any:
        yield from _arm_gp0_overflow()
        return (yield WaitPmi(1_000_000)), (yield Rdmsr(STATUS))
    guest = StatusReadingOs(program)
    vm, host = boot(guest)
    assert vm.vcpus[0].task.result == (True, 0)   # the handler cleared it
    assert guest.seen == [1] and vm.vcpus[0].pmis_delivered == 1
    reasons = [e.reason for e in exits(host)]
    assert reasons.count("EXTERNAL_INTERRUPT") == 1 and "EXCEPTION_NMI" not in reasons
    (_, _, _, put, load), = [s for s in switches(host) if s[0] == "EXTERNAL_INTERRUPT"]
    assert put and load


# --- 6. fastpath (2.5.7) and 7. switch points -------------------------------------------------


def deadlines(enable: int = 0, gctrl: int = 1) -> Callable[[], Any]:
    """Two TSC_DEADLINE writes between guest code; GP0 selector = ``enable`` first."""
    def program() -> Any:
        if enable:
            yield Wrmsr(SEL0, enable)
            yield Wrmsr(GCTRL, gctrl)
        for t in (123, 456):
            yield Execute(loop(10))
            yield Wrmsr(TSC_DEADLINE, t)
        yield Execute(loop(10))
    return program


def tsc_switches(design: str, program: Callable[[], Any]) -> tuple[list[Any], list[str]]:
    _, host = run(program, design)
    return ([s for s in switches(host) if s[1] == TSC_DEADLINE],
            [f"{c.state}:{c.why}" for c in contexts(host)])


TSC_FAST = ("MSR_WRITE", TSC_DEADLINE, True, False, False)
TSC_FULL = ("MSR_WRITE", TSC_DEADLINE, False, True, True)


def test_tsc_deadline_is_fastpath_while_no_counter_counts_instructions() -> None:
    """2.1/2.5.7: with no instructions counter (or one not globally enabled, or counting
    cycles) the TSC_DEADLINE writes are fastpath exits and the context stays loaded."""
    cycles = 0x003C | msrs.EVTSEL_USR | msrs.EVTSEL_OS | msrs.EVTSEL_EN
    for program in (deadlines(), deadlines(INST, gctrl=0), deadlines(cycles)):
        tsc, _ = tsc_switches("mediated", program)
        assert tsc == [TSC_FAST, TSC_FAST]


def test_tsc_deadline_is_a_full_exit_while_gp0_counts_instructions() -> None:
    """2.5.7 (kvm_pmu_is_fastpath_emulation_allowed): with GP0 counting 0xC0 and globally
    enabled, fastpath emulation bails: full exits, each with put and load."""
    tsc, ctx = tsc_switches("mediated", deadlines(INST))
    assert tsc == [TSC_FULL, TSC_FULL]
    assert ctx == ["guest:run-loop", "host:run-loop"] * 3 + ["guest:run-loop", "host:sched-out"]


def test_vm_entry_switch_point_puts_and_loads_on_fastpath_exits() -> None:
    """RFC v1's switch at every entry/exit: fastpath exits stay fastpath but pay put+load."""
    tsc, _ = tsc_switches("mediated:switch_point=vm-entry", deadlines())
    assert tsc == [("MSR_WRITE", TSC_DEADLINE, True, True, True)] * 2


def test_vcpu_load_switch_point_only_puts_at_sched_out() -> None:
    """switch_point=vcpu-load: the context stays loaded across full exits (even the
    non-fastpath TSC writes of a counting guest); one load, one put at sched-out."""
    _, host = run(deadlines(INST), "mediated:switch_point=vcpu-load")
    assert [s[2:] for s in switches(host)] == [(False, False, False)] * 3
    assert [f"{c.state}:{c.why}" for c in contexts(host)] == ["guest:vcpu-load",
                                                              "host:sched-out"]


# --- 8. filter (2.4) --------------------------------------------------------------------------


def test_deny_filter_masks_en_in_the_hardware_selector_only(hw_after: list[Snapshot]) -> None:
    """2.4 (kvm_mediated_pmu_refresh_event_filter): a DENY on 0xC0 clears EN in eventsel_hw,
    so the selector loaded into the hardware lacks EN while the guest reads back its own
    value; the counter counts nothing, neither in hardware nor KVM's skipped CPUID."""
    flt = set_pmu_event_filter(KVM_PMU_EVENT_DENY, [0x00C0])
    assert isinstance(flt, PmuEventFilter)

    def program() -> Any:
        yield Wrmsr(SEL0, INST)
        yield Wrmsr(GCTRL, 1)
        yield Execute(STREAM)
        yield Cpuid(0)
        return (yield Rdmsr(SEL0)), (yield Rdpmc(0))
    vm, _ = boot(program, event_filter=flt)
    assert vm.vcpus[0].task.result == (INST, 0)
    loads = [sels[0] for kind, _, sels, _ in hw_after if kind == "load"]
    assert loads == [0] + [INST & ~msrs.EVTSEL_EN] * 3


# --- 9. admission (2.2) and 10. host requirements ---------------------------------------------


def test_nmi_watchdog_makes_mediated_vm_creation_fail_with_ebusy() -> None:
    """2.2: perf_create_mediated_pmu returns -EBUSY while a !exclude_guest event exists."""
    host = Host("intel-icx", cpus=1)
    nmi_watchdog(PerfSubsystem(host))
    with pytest.raises(ValueError, match="EBUSY"):
        Vm(host, make_design("mediated"), [ProgramOs(cpuids)])


def test_guest_counting_host_events_fail_with_eopnotsupp_while_a_vm_exists() -> None:
    """2.2: with nr_mediated_pmu_vms > 0 a !exclude_guest event fails in perf_event_alloc
    with EOPNOTSUPP (and is traced with its errno); an exclude_guest event opens."""
    host = Host("intel-icx", cpus=1)
    vm = Vm(host, make_design("mediated"), [ProgramOs(cpuids)])
    cycles = PerfEventAttr(type=PERF_TYPE_HARDWARE, config=PERF_COUNT_HW_CPU_CYCLES)
    with pytest.raises(PerfOpenError) as err:
        vm.perf.open(dataclasses.replace(cycles, exclude_guest=False), cpu=0)
    assert err.value.errno_name == "EOPNOTSUPP"
    ev = vm.perf.open(dataclasses.replace(cycles, exclude_guest=True), cpu=0)
    opens = [(r.exclude_guest, r.errno, r.event) for r in host.trace.records
             if isinstance(r, PerfOpen)]
    assert opens == [(False, "EOPNOTSUPP", 0), (True, "", ev.id)]


@pytest.mark.parametrize(("preset", "caps", "missing"), [
    ("intel-icx", {"version": 3}, "v4+"),
    ("intel-icx", {"fw_write": False}, "full-width writes"),
    ("amd-zen4", {"perfmon_v2": False}, "PerfMonV2"),
])
def test_hosts_without_the_requirements_are_refused(preset: str, caps: dict[str, Any],
                                                    missing: str) -> None:
    """2.3 requirements: Intel PMU v4+ with full-width writes, AMD PerfMonV2; never a
    silent downgrade."""
    base = get_preset(preset)
    variant = dataclasses.replace(base, caps=base.caps.replace(**caps))
    with pytest.raises(ValueError, match=missing):
        run_vm_program(cpuids, preset=variant, design="mediated")


# --- once bugs, now fixed ---------------------------------------------------------------


def test_hlt_after_a_full_exit_pays_load_and_put() -> None:
    """2.1: every exit that leaves the fastpath loop pays put+load. After the CPUID exit
    KVM re-enters (load) to run the HLT, whose exit leaves the loop to block (put)."""
    def program() -> Any:
        yield Cpuid(0)
        return (yield WaitPmi(1000))
    _, host = run(program, "mediated")
    assert [(s[0], s[3]) for s in switches(host)] == [("CPUID", True), ("HLT", True)]
    assert loads_and_puts(host) == (2, 2)


def test_vcpu_load_guest_lvtpc_unmask_reaches_the_hardware() -> None:
    """2.5.5: the hardware LVTPC copies the guest's MASK bit. Under vcpu-load the context
    stays loaded across the LVTPC exit, so the unmask must reach the hardware LVTPC for
    the overflow to make an EXTERNAL_INTERRUPT exit and a guest PMI (as under run-loop)."""
    def program() -> Any:
        yield from _arm_gp0_overflow()
        return (yield WaitPmi(1_000_000))
    value, host = run(program, "mediated:switch_point=vcpu-load")
    assert host.cpus[0].hw.lapic.dropped == 0
    assert value is True and "EXTERNAL_INTERRUPT" in [e.reason for e in exits(host)]


def test_a_guest_write_to_a_passed_through_counter_is_tagged_as_the_guests() -> None:
    """A value the guest writes straight into its counter is the guest's: with nothing
    cleared on put, the hardware counter keeps it with the guest's origin."""
    def program() -> Any:
        yield Wrmsr(msrs.IA32_A_PMC0 + 1, 12345)
        yield Cpuid(0)
    _, host = run(program, "mediated:clear_on_put=none")
    counter = host.cpus[0].hw.pmu.counters[1]
    assert (counter.value, counter.origin) == (12345, "vm0/vcpu0")


def test_more_guest_counters_than_the_host_has_is_refused() -> None:
    """guest_counters selects a subset of the host's counters: asking for more is an error
    naming the option, not a silent clamp."""
    design = make_design("mediated:guest_counters=12")
    with pytest.raises(ValueError, match=r"guest_counters=12 exceeds the host's 8 GP"):
        design.guest_caps(get_preset("intel-icx").caps)
