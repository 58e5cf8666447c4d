"""KVM's guest LBR under the emulated design (``vpmu.vpmu.x86.lbr``): the LBR format KVM
reports, DEBUGCTL in the VMCS, the guest LBR event and the pass-through it enables, the
legacy freeze on a virtual PMI, the lazy release, and no host branch in the guest's stack."""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from typing import Any

import pytest

from vpmu.arch.faults import Fault
from vpmu.arch.presets import get_preset
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import PERF_CAP_LBR_FMT
from vpmu.guest import Execute, Rdmsr, WaitPmi, Wrmsr
from vpmu.guest.os import ProgramOs
from vpmu.guest.port import Op
from vpmu.host.machine import Host
from vpmu.machine.vm import Vm, run_until_done
from vpmu.metrics import RunMetrics
from vpmu.trace import LbrContext, VmExit
from vpmu.vpmu.design import make_design
from vpmu.vpmu.x86.lbr import VcpuLbr
from vpmu.workloads import loop
from vpmu.workloads.branches import KERNEL_CODE_BASE, LOOP_BACK_EDGE
from vpmu.workloads.streams import lbr_test_loop

Prog = Generator[Op, Any, Any]
LBR, BTF, FREEZE_LBRS = 1, 1 << 1, 1 << msrs.DEBUGCTL_FREEZE_LBRS_ON_PMI
FREEZE_PERFMON = 1 << msrs.DEBUGCTL_FREEZE_PERFMON_ON_PMI


def run(program: Any, design: str = "emulated", preset: str = "intel-icx"
        ) -> tuple[Any, Host, Vm]:
    host = Host(preset, cpus=1)
    vm = Vm(host, make_design(design), [ProgramOs(program)])
    assert run_until_done(host, [vm], limit_ps=10**15, step_ps=10**10)
    return vm.vcpus[0].task.result, host, vm


def lbr_of(vm: Vm) -> VcpuLbr:
    lbr = vm.vcpus[0].pmu.lbr  # type: ignore[attr-defined]
    assert isinstance(lbr, VcpuLbr)
    return lbr


def msr_exits(host: Host) -> Counter[tuple[int, bool]]:
    return Counter((r.msr, r.write) for r in host.trace.records
                   if isinstance(r, VmExit) and r.msr >= 0)


def perf_caps() -> Prog:
    return (yield Rdmsr(msrs.IA32_PERF_CAPABILITIES))


@pytest.mark.parametrize(("design", "preset", "fmt"), [
    ("emulated", "intel-icx", 5), ("emulated", "intel-skl", 5),
    ("emulated", "intel-spr", 0),          # architectural LBR host: KVM refuses legacy LBR
    ("emulated:lbr=false", "intel-icx", 0), ("mediated", "intel-icx", 0)])
def test_the_guest_sees_the_hosts_lbr_format_where_kvm_offers_it(
        design: str, preset: str, fmt: int) -> None:
    caps, _, _ = run(perf_caps, design, preset)
    assert caps & PERF_CAP_LBR_FMT == fmt


def test_lbr_msrs_pass_through_once_the_event_exists() -> None:
    """The first LBR MSR access exits and creates the guest LBR event; later ones do not
    exit; DEBUGCTL always exits. The guest's loop is in its stack, read without exits."""
    def program() -> Prog:
        yield Wrmsr(msrs.MSR_LBR_SELECT, 0)            # exits, creates the event
        yield Wrmsr(msrs.MSR_LBR_TOS, 0)               # passed through
        yield Wrmsr(msrs.IA32_DEBUGCTL, LBR)           # exits: the VMCS
        yield Execute(loop(100))
        yield Wrmsr(msrs.IA32_DEBUGCTL, 0)
        tos = yield Rdmsr(msrs.MSR_LBR_TOS)
        return tos, (yield Rdmsr(msrs.MSR_LBR_NHM_FROM + tos))
    (tos, src), host, vm = run(program)
    exits = msr_exits(host)
    assert exits[(msrs.MSR_LBR_SELECT, True)] == 1
    assert exits[(msrs.MSR_LBR_TOS, True)] == exits[(msrs.MSR_LBR_TOS, False)] == 0
    assert exits[(msrs.IA32_DEBUGCTL, True)] == 2
    assert not any(m == msrs.MSR_LBR_NHM_FROM + tos for m, _ in exits)
    assert tos == 100 % 32
    assert src == KERNEL_CODE_BASE + LOOP_BACK_EDGE.code_offset + LOOP_BACK_EDGE.branches[0].src
    assert lbr_of(vm).created == 1


def test_debugctl_keeps_what_kvm_supports() -> None:
    """BTF is dropped silently, FREEZE_PERFMON_ON_PMI is #GP; a read comes from the VMCS."""
    def program() -> Prog:
        first = yield Wrmsr(msrs.IA32_DEBUGCTL, LBR | BTF | FREEZE_LBRS)
        back = yield Rdmsr(msrs.IA32_DEBUGCTL)
        refused = yield Wrmsr(msrs.IA32_DEBUGCTL, FREEZE_PERFMON)
        yield Wrmsr(msrs.IA32_DEBUGCTL, 0)
        return first, back, refused
    assert run(program)[0] == (None, LBR | FREEZE_LBRS, Fault.GP)


def test_host_code_never_records_into_the_guests_stack() -> None:
    """VM-exit leaves DEBUGCTL zero: between a guest loop and the read, every exit's host
    work (and the hardware's DEBUGCTL) leaves the stack as the guest left it."""
    def program() -> Prog:
        yield Wrmsr(msrs.IA32_DEBUGCTL, LBR)
        yield Execute(lbr_test_loop(1000))
        before = yield Rdmsr(msrs.MSR_LBR_TOS)
        for _ in range(5):
            yield Rdmsr(msrs.IA32_PERF_GLOBAL_STATUS)   # exits: host code runs
        return before, (yield Rdmsr(msrs.MSR_LBR_TOS))
    (before, after), host, _ = run(program)
    assert before == after == 4000 % 32
    assert host.cpus[0].hw.x86_pmu.regs["IA32_DEBUGCTL"] == 0  # type: ignore[attr-defined]


def freezing_overflow() -> Prog:
    """Recording with FREEZE_LBRS_ON_PMI while PMC0 (instructions, INT) overflows 1,000
    instructions into a 10,000-instruction loop."""
    yield Wrmsr(msrs.X2APIC_LVTPC, 32)
    yield Wrmsr(msrs.IA32_DEBUGCTL, LBR | FREEZE_LBRS)
    yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)
    yield Wrmsr(msrs.IA32_PMC0, (1 << 48) - 1000)
    yield Wrmsr(msrs.IA32_PERFEVTSEL0, 0xC0 | 1 << 22 | 1 << 17 | 1 << 20)
    yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 1)
    yield Execute(loop(10_000))


def test_a_virtual_pmi_freezes_a_v2_guests_lbr() -> None:
    """intel_pmu_legacy_freezing_lbrs_on_pmi: with FREEZE_LBRS_ON_PMI the PMI clears LBR."""
    def program() -> Prog:
        yield from freezing_overflow()
        got = yield WaitPmi(1_000_000)
        return got, (yield Rdmsr(msrs.IA32_DEBUGCTL))
    (got, debugctl), _, _ = run(program)
    assert got and debugctl == FREEZE_LBRS


def test_lazy_release_after_a_slice_with_lbr_off() -> None:
    """With DEBUGCTL.LBR clear when the vCPU thread is next scheduled in, the first
    KVM_REQ_PMU releases the event; the next access creates a new one, on a wiped stack."""
    def program() -> Prog:
        yield Wrmsr(msrs.IA32_DEBUGCTL, LBR)
        yield Execute(loop(100))
        yield Wrmsr(msrs.IA32_DEBUGCTL, 0)
        yield WaitPmi(5_000_000)    # halts: the thread sleeps and is scheduled in again
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)  # a KVM_REQ_PMU follows the sched-in
        tos = yield Rdmsr(msrs.MSR_LBR_TOS)
        return tos
    tos, _, vm = run(program)
    lbr = lbr_of(vm)
    assert lbr.released == 1 and lbr.created == 2 and tos == 0


def test_the_skylake_preset_is_v4_and_still_gets_legacy_freeze_only_as_v2() -> None:
    """The emulated vPMU caps the guest at v2, so KVM's freeze emulation always applies."""
    assert get_preset("intel-skl").caps.version == 4
    caps, _, vm = run(perf_caps, "emulated", "intel-skl")
    assert vm.caps.version == 2 and caps & PERF_CAP_LBR_FMT == 5  # type: ignore[attr-defined]


def busy_lbr_guest() -> Prog:
    """A guest recording its branches across 20 exits and one halt."""
    yield Wrmsr(msrs.IA32_DEBUGCTL, LBR)
    for _ in range(20):
        yield Execute(lbr_test_loop(100_000))
        yield Rdmsr(msrs.IA32_PERF_GLOBAL_STATUS)
    yield WaitPmi(3_000_000)
    return (yield Rdmsr(msrs.MSR_LBR_TOS))


def test_thread_switch_saves_at_the_threads_switches_only() -> None:
    """Upstream: perf saves the guest's stack when the vCPU thread is switched out (98 MSRs:
    TOS, 32 x FROM/TO/INFO, LBR_SELECT) and finds it still in place when it comes back (no
    other LBR user ran there), so the restore is skipped; no VM-exit saves anything."""
    _, host, vm = run(busy_lbr_guest)
    switches = [r for r in host.trace.records if isinstance(r, LbrContext)]
    assert {(r.op, r.why, r.msrs) for r in switches} == {("save", "thread-switch", 98)}
    assert lbr_of(vm).restores_skipped >= 1
    cost = host.costs.instruction_cycles["lbr_rdmsr"] * 98
    assert all(r.cycles == cost for r in switches)


def test_vm_transition_saves_and_restores_at_every_exit() -> None:
    """Seed 002's alternative: a save at every VM-exit and a restore at every VM-entry while
    the guest LBR event exists; the guest sees the same stack."""
    tos_thread, _, _ = run(busy_lbr_guest)
    tos, host, _ = run(busy_lbr_guest, "emulated:lbr_save_point=vm-transition")
    switches = Counter((r.op, r.why) for r in host.trace.records if isinstance(r, LbrContext))
    exits = sum(1 for r in host.trace.records if isinstance(r, VmExit))
    assert tos == tos_thread
    assert switches[("save", "vm-transition")] == switches[("restore", "vm-transition")] >= 20
    assert switches[("save", "vm-transition")] <= exits


def test_the_lbr_section_counts_the_saves_per_guest_second() -> None:
    _, host, vm = run(busy_lbr_guest, "emulated:lbr_save_point=vm-transition")
    metrics = RunMetrics.of(host.trace.records)
    end = host.env.now_ps
    section = metrics.sections(end, [v.task.name for v in vm.vcpus])["lbr"]
    row = section["by_why"]["vm-transition"]
    assert section["saves"] == row["saves"] == row["restores"]
    assert row["cycles"] == row["msrs"] * 36 == section["cycles"]
    assert row["cycles_per_guest_s"] > 0


def test_a_guest_without_lbr_has_no_lbr_section() -> None:
    _, host, vm = run(perf_caps)
    metrics = RunMetrics.of(host.trace.records)
    assert metrics.sections(host.env.now_ps, [v.task.name for v in vm.vcpus])["lbr"] is None


@pytest.mark.parametrize("switch_point", ["run-loop", "vm-entry", "vcpu-load"])
def test_mediated_lbr_saves_at_every_put_and_restores_at_every_load(switch_point: str) -> None:
    """mediated:lbr=true (not upstream): the guest's LBR MSRs pass through, each put saves
    the stack and resets the LBR (a save of the live entries plus 97 zeroing WRMSRs), each
    load restores it; the guest reads its own records; host code finds an empty LBR."""
    design = f"mediated:lbr=true,switch_point={switch_point}"
    tos, host, vm = run(busy_lbr_guest, design)
    records = [r for r in host.trace.records if isinstance(r, LbrContext)]
    saves = [r for r in records if r.op == "save"]
    restores = [r for r in records if r.op == "restore"]
    assert tos == 4000 % 32 and saves and restores
    assert all(r.msrs >= 2 + 97 for r in saves) and {r.msrs for r in restores} == {98}
    assert not any(m in lbr_of(vm).msrs for m, _ in msr_exits(host))
    assert host.cpus[0].hw.x86_pmu.lbr.recorder.src == [0] * 32  # type: ignore[attr-defined]


def test_mediated_offers_no_lbr_by_default() -> None:
    caps, _, vm = run(perf_caps, "mediated")
    assert caps & PERF_CAP_LBR_FMT == 0 and vm.vcpus[0].pmu.lbr is None  # type: ignore[attr-defined]


def test_the_guests_lbr_resumes_after_a_host_pmi_froze_it() -> None:
    """The guest's DEBUGCTL (FREEZE_LBRS_ON_PMI) is in the hardware while it runs, so the host
    PMI of its counter's perf event sets the v4 host's LBR_FRZ; host perf's handler acks the
    status as read, which unfreezes the LBR (intel_pmu_ack_status). Once the guest sets
    DEBUGCTL.LBR again (KVM's legacy freeze cleared it), its loop is recorded."""
    def program() -> Prog:
        yield from freezing_overflow()
        yield WaitPmi(1_000_000)
        frozen_at = yield Rdmsr(msrs.MSR_LBR_TOS)
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)
        yield Wrmsr(msrs.IA32_DEBUGCTL, LBR)
        yield Execute(loop(5))
        return frozen_at, (yield Rdmsr(msrs.MSR_LBR_TOS))
    (frozen_at, after), host, _ = run(program)
    assert after == (frozen_at + 5) % 32
    status = host.cpus[0].hw.x86_pmu.regs["GLOBAL_STATUS"]  # type: ignore[attr-defined]
    assert not status >> msrs.STATUS_LBR_FRZ & 1
