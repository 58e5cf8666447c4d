"""The mediated PMU context switch: kvm_mediated_pmu_load / _put with their exact MSR traffic
(arch/x86/kvm/pmu.c, vmx/pmu_intel.c and svm/pmu.c@v7.0, Intel and AMD).

Each sequence runs on the hardware of the CPU the vCPU is on, instantly, through a
``MsrTally`` that prices every RDMSR, WRMSR and RDPMC at the preset's cost (the host table)
and counts the traffic by MSR name, so tests and reports can show exactly what a switch did.
The caller (``MediatedVcpu``) adds perf's load/put of the host events and KVM's bookkeeping
(``mediated_switch_cycles``) and spends the time.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import TYPE_CHECKING

from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, RDPMC_FIXED, X86PmuCaps, x86_caps
from vpmu.host.perf.x86.driver import ctr_addr, sel_addr
from vpmu.hw.x86.cpu import x86_cpu
from vpmu.vpmu.x86.pmc import FIXED_EN, fixed_ctrl_field

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.hw.x86.pmu import X86Pmu
    from vpmu.vpmu.designs.mediated.vcpu import MediatedVcpu

LVTPC_GUEST = msrs.LVT_DELIVERY_FIXED << 8 | msrs.PERF_GUEST_MEDIATED_PMI_VECTOR
"""perf_load_guest_lvtpc: fixed delivery of PERF_GUEST_MEDIATED_PMI_VECTOR (the guest's
MASK bit is copied in)."""
LVTPC_HOST = msrs.LVT_DELIVERY_NMI << 8
"""perf_put_guest_lvtpc: back to NMI delivery for host perf (apic_write(APIC_LVTPC, DM_NMI))."""


class MsrTally:
    """PMU register accesses on one CPU's hardware, priced and counted."""

    def __init__(self, cpu: Pcpu, traffic: Counter[str]) -> None:
        self.cpu = cpu
        self.pmu = x86_cpu(cpu.hw).x86_pmu
        self.costs = cpu.host.costs
        self.traffic = traffic
        self.cycles = 0

    def rd(self, addr: int) -> int:
        """RDMSR (at CPL 0; the MSR exists on this host)."""
        value = self.pmu.rdmsr(addr)
        assert isinstance(value, int), f"host RDMSR {addr:#x} faulted: a model bug"
        self._count("rdmsr", addr, self.costs.instruction_cycles["rdmsr"])
        return value

    def wr(self, addr: int, value: int) -> None:
        """WRMSR (the LVTPC is the local APIC's)."""
        hw = x86_cpu(self.cpu.hw)
        fault = hw.lapic.wrmsr(value) if addr == msrs.X2APIC_LVTPC else self.pmu.wrmsr(addr,
                                                                                       value)
        assert fault is None, f"host WRMSR {addr:#x} <- {value:#x} faulted: a model bug"
        self._count("wrmsr", addr, self.costs.instruction_cycles["wrmsr"])

    def rdpmc(self, ecx: int) -> int:
        """RDPMC at CPL 0."""
        value = self.pmu.rdpmc(ecx)
        assert isinstance(value, int), f"host RDPMC {ecx:#x} faulted: a model bug"
        self.traffic["rdpmc"] += 1
        self.cycles += self.costs.instruction_cycles["rdpmc"]
        return value

    def _count(self, op: str, addr: int, cycles: int) -> None:
        self.traffic[_traffic_key(op, addr)] += 1
        self.cycles += cycles


@cache
def _traffic_key(op: str, addr: int) -> str:
    """The traffic key of an access, built once per (access, MSR): a switch makes dozens of
    accesses to the same few MSRs."""
    return f"{op} {msrs.kernel_msr_name(addr)}"


def rdpmc_ecx(idx: int) -> int:
    """RDPMC's ECX for global index ``idx``."""
    return RDPMC_FIXED | idx - FIXED_IDX_BASE if idx >= FIXED_IDX_BASE else idx


def load(vc: MediatedVcpu, t: MsrTally) -> None:
    """kvm_mediated_pmu_load after perf_load_guest_context (pmu.c@v7.0): GLOBAL_CTRL
    0, the LVTPC, kvm_pmu_load_guest_pmcs, then the vendor's mediated_load."""
    caps = x86_caps(t.cpu.host.preset.caps)
    t.wr(vc.vendor.PERF_GLOBAL_CTRL, 0)
    t.wr(msrs.X2APIC_LVTPC, LVTPC_GUEST | (vc.vcpu.lvtpc & 1 << msrs.LVT_MASKED))
    for pmc in vc.gp:
        _load_counter(vc, t, caps, pmc.idx, pmc.counter)
        t.wr(sel_addr(caps, pmc.idx), pmc.eventsel_hw)
    for pmc in vc.fixed:
        _load_counter(vc, t, caps, pmc.idx, pmc.counter)
    vc.vendor.mediated_load(vc, t)
    for pmc in (*vc.gp, *vc.fixed):
        t.pmu.counters[pmc.idx].origin = vc.vcpu.label


def _load_counter(vc: MediatedVcpu, t: MsrTally, caps: X86PmuCaps, idx: int,
                  value: int) -> None:
    """RDPMC, then WRMSR only if the hardware differs (v6 34/44), unless elision is off."""
    if vc.elide_writes and t.rdpmc(rdpmc_ecx(idx)) == value:
        return
    t.wr(ctr_addr(caps, idx), value)


def put(vc: MediatedVcpu, t: MsrTally) -> None:
    """kvm_mediated_pmu_put before perf_put_guest_context (pmu.c@v7.0): the vendor's
    mediated_put, kvm_pmu_put_guest_pmcs, the LVTPC; what is zeroed follows the
    ``clear_on_put`` policy. With ``passthrough=all`` the guest's selectors are read first
    (``save_controls``), so the zeroing applies to the values the guest left."""
    caps = x86_caps(t.cpu.host.preset.caps)
    if vc.selectors_passthrough:
        _save_controls(vc, t, caps)
    vc.vendor.mediated_put(vc, t)
    policy = vc.clear_on_put
    for pmc in vc.gp:
        pmc.counter = t.rdpmc(rdpmc_ecx(pmc.idx))
        if _clears_counter(policy, vc, pmc.idx, pmc.counter):
            t.wr(ctr_addr(caps, pmc.idx), 0)
        if policy == "all" or (policy != "none" and pmc.eventsel_hw):
            t.wr(sel_addr(caps, pmc.idx), 0)
    for pmc in vc.fixed:
        pmc.counter = t.rdpmc(rdpmc_ecx(pmc.idx))
        if _clears_counter(policy, vc, pmc.idx, pmc.counter):
            t.wr(ctr_addr(caps, pmc.idx), 0)
    if policy == "all":
        vc.vendor.put_clear_all(vc, t)
    t.wr(msrs.X2APIC_LVTPC, LVTPC_HOST)


def _save_controls(vc: MediatedVcpu, t: MsrTally, caps: X86PmuCaps) -> None:
    """RDMSR each passed-through selector (and FIXED_CTR_CTRL, if it passes through), as the
    series' first save did ("[RFC PATCH 23/41] KVM: x86/pmu: Implement the save/restore of
    PMU state for Intel CPU", 26 Jan 2024), before anything is zeroed."""
    sels = [t.rd(sel_addr(caps, pmc.idx)) for pmc in vc.gp]
    vc.save_controls(sels, t.rd(msrs.IA32_FIXED_CTR_CTRL) if vc.fixed_ctrl_passthrough
                     else None)


def _clears_counter(policy: str, vc: MediatedVcpu, idx: int, value: int) -> bool:
    """Whether put zeroes this counter: upstream zeroes the non-zero ones, ``all`` every one,
    ``guest-used`` the non-zero ones whose selector the guest has ever enabled
    (option a of seed 003, Dapeng Mi's reply in "[RFC PATCH 23/41] KVM: x86/pmu: Implement the
    save/restore of PMU state for Intel CPU", 18 Apr 2024: KVM can only see the selectors,
    which exit), ``none`` none."""
    if policy == "all":
        return True
    if policy == "none" or not value:
        return False
    return policy == "upstream" or bool(vc.used >> idx & 1)


def left_enabled(vc: MediatedVcpu, pmu: X86Pmu) -> int:
    """Counters whose guest-programmed selector is still enabled in the hardware (fixed
    counters: Intel's, whose FIXED_CTR_CTRL field the put left)."""
    mask = 0
    for pmc in vc.gp:
        if pmu.sels.get(pmc.idx, 0) & msrs.EVTSEL_EN and pmc.eventsel_hw:
            mask |= 1 << pmc.idx
    ctrl = pmu.regs.get("FIXED_CTR_CTRL", 0)
    for pmc in vc.fixed:
        if fixed_ctrl_field(ctrl, pmc) & FIXED_EN:
            mask |= 1 << pmc.idx
    return mask
