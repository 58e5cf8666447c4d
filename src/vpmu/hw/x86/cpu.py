"""One x86 logical CPU as guest-visible instructions see it: privilege, CR4.PCE, CPUID, the
PMU and the LVTPC, and the execution of workload streams in simulated time.

Instruction semantics that are not the PMU's live here: RDMSR/WRMSR are privileged (#GP at
CPL > 0); RDPMC at CPL > 0 needs CR4.PCE (SDM RDPMC: #GP if CR4.PCE = 0 and CPL > 0 in
protected mode). A write retires as one instruction *before* its effect lands, which is why a
WRMSR that enables a counter is not counted and one that disables it is (the exact totals of
kvm-unit-tests x86/pmu.c and of the selftest pmu_counters_test.c count the disabling WRMSR); a read
samples its value as it executes, before it retires; an instruction that faults takes its latency
but does not retire.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from vpmu.arch.faults import Fault
from vpmu.arch.presets import CpuPreset
from vpmu.arch.x86 import caps as x86caps
from vpmu.arch.x86.msrs import IA32_DEBUGCTL, X2APIC_LVTPC
from vpmu.hw.core import CpuCore, DeliverFn
from vpmu.hw.counting import RING_KERNEL
from vpmu.hw.x86.lapic import Lapic
from vpmu.hw.x86.lbr import Vmcs
from vpmu.hw.x86.pmu import X86Pmu
from vpmu.sim import Environment, Event

INSTRUCTIONS = ("rdmsr", "wrmsr", "rdpmc", "cpuid", "mov_cr")
"""The instructions whose latency the CPU needs, by name (the cost table's ``<name>_cycles``)."""


class X86Cpu(CpuCore):
    """A logical x86 CPU: its instructions, CR4.PCE, its PMU and LVTPC.

    ``instruction_cycles`` gives each instruction's latency (the preset's cost table).
    """

    def __init__(self, preset: CpuPreset, env: Environment, deliver: DeliverFn,
                 instruction_cycles: Mapping[str, int]) -> None:
        self.lapic = Lapic(mask_on_pmi=x86caps.x86_caps(preset.caps).is_intel, deliver=deliver)
        """The local APIC's LVTPC."""
        self.x86_pmu = X86Pmu(preset, env, on_pmi=self.lapic.pmi)
        """``pmu`` as the x86 PMU it is. A second name rather than a narrowed ``pmu: X86Pmu``:
        a compiled subclass cannot narrow an attribute of its compiled base."""
        super().__init__(preset, env, self.x86_pmu, INSTRUCTIONS, instruction_cycles)
        self.vmcs: Vmcs | None = None
        """The VMCS loaded on this CPU (vmx_vcpu_load), if a vCPU's is."""

    @property
    def cr4_pce(self) -> bool:
        """CR4.PCE: RDPMC allowed at CPL > 0 (the x86 name of ``user_access``)."""
        return self.user_access

    @cr4_pce.setter
    def cr4_pce(self, enabled: bool) -> None:
        self.user_access = enabled

    def __repr__(self) -> str:
        return f"X86Cpu(preset={self.preset.name!r})"

    def set_guest(self, guest: bool) -> None:
        """VM-entry loads the guest's DEBUGCTL from the loaded VMCS; VM-exit saves it there and
        leaves DEBUGCTL zero (``Vmcs``; KVM writes the host's back a little later:
        ``restore_host_debugctl``). Nothing to switch while both are zero."""
        vmcs, pmu = self.vmcs, self.x86_pmu
        if vmcs is not None and pmu.lbr is not None:
            now = pmu.regs.get("IA32_DEBUGCTL", 0)
            if guest:
                if vmcs.guest_debugctl != now:
                    pmu.wrmsr(IA32_DEBUGCTL, vmcs.guest_debugctl)
            else:
                vmcs.guest_debugctl = now
                if now:
                    pmu.wrmsr(IA32_DEBUGCTL, 0)
        super().set_guest(guest)

    def restore_host_debugctl(self) -> None:
        """KVM after a VM-exit: the host's DEBUGCTL as read at vcpu load, if non-zero."""
        vmcs, pmu = self.vmcs, self.x86_pmu
        if vmcs is not None and vmcs.host_debugctl and not pmu.guest:
            pmu.wrmsr(IA32_DEBUGCTL, vmcs.host_debugctl)

    # -- instructions (each a generator: it takes simulated time) -------------------------
    def rdmsr(self, addr: int) -> Generator[Event, Any, int | Fault]:
        """RDMSR: privileged; the LVTPC is the APIC's, everything else the PMU's. The value is
        read as the instruction executes, so it does not include the RDMSR's own retirement."""
        if self.cpl != RING_KERNEL or (addr != X2APIC_LVTPC and addr not in self.x86_pmu.specs):
            yield from self._retire("rdmsr", faulted=True)
            return Fault.GP
        value = self.lapic.rdmsr() if addr == X2APIC_LVTPC else self.x86_pmu.rdmsr(addr)
        yield from self._retire("rdmsr")
        return value

    def wrmsr(self, addr: int, value: int) -> Generator[Event, Any, Fault | None]:
        """WRMSR: privileged; the write lands after the instruction retires (so the WRMSR that
        disables a counter is counted and the one that enables it is not)."""
        lvtpc = addr == X2APIC_LVTPC
        faults = self.cpl != RING_KERNEL or (
            self.lapic.wrmsr_faults(value) if lvtpc else self.x86_pmu.wrmsr_faults(addr, value))
        yield from self._retire("wrmsr", faulted=faults)
        if faults:
            return Fault.GP
        return self.lapic.wrmsr(value) if lvtpc else self.x86_pmu.wrmsr(addr, value)

    def rdpmc(self, ecx: int) -> Generator[Event, Any, int | Fault]:
        """RDPMC: the CR4.PCE/CPL rule, then the PMU's index decoding; read as it executes."""
        value = self.x86_pmu.rdpmc(ecx) if self.cpl == RING_KERNEL or self.user_access else Fault.GP
        yield from self._retire("rdpmc", faulted=isinstance(value, Fault))
        return value

    def user_read(self, index: int) -> Generator[Event, Any, int | Fault]:
        """A user-mode counter read is RDPMC with ECX = ``index``."""
        return self.rdpmc(index)

    def user_read_origin(self, index: int) -> str:
        """The origin tag of the counter RDPMC ``index`` reads."""
        return self.x86_pmu.rdpmc_origin(index)

    def cpuid(self, leaf: int, subleaf: int) -> Generator[Event, Any, tuple[int, int, int, int]]:
        """CPUID: the PMU-relevant leaves of the preset."""
        yield from self._retire("cpuid")
        return x86caps.cpuid(self.x86_pmu.caps, leaf, subleaf)

    def set_cr4_pce(self, enabled: bool) -> Generator[Event, Any, Fault | None]:
        """MOV to CR4 (PCE only): privileged."""
        faults = self.cpl != RING_KERNEL
        yield from self._retire("mov_cr", faulted=faults)
        if faults:
            return Fault.GP
        self.user_access = enabled
        return None


def x86_cpu(hw: CpuCore) -> X86Cpu:
    """``hw`` as the x86 CPU it is: x86 code (the x86 trap layer, the x86 designs) runs on
    pCPUs an x86 preset built (``vpmu.hw.models``), which the host's one-arch rule ensures."""
    assert isinstance(hw, X86Cpu), f"an x86 path reached {hw!r}"
    return hw
