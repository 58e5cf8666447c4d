"""The x86 trap layer of a vCPU: VMX exits (SVM's are reported under their VMX names), the
MSR bitmap and RDPMC exiting, CPUID, CR4.PCE and the virtual LVTPC.

``X86Vcpu`` is the neutral run loop of ``vpmu.machine.vcpu`` plus what an x86 exit is made
of: which register accesses the design passes through (executed in guest mode on the
hardware) and which exit to the design's ``get_msr``/``set_msr``/``rdpmc``, the local APIC's
MSRs KVM emulates, and the LVTPC through which the design delivers the guest's PMI.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, cast

from vpmu.arch.faults import Fault
from vpmu.arch.regs import apply_write
from vpmu.arch.x86 import caps as x86caps
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import X86PmuCaps
from vpmu.guest.os import GuestOs
from vpmu.guest.port import Cpuid, Mrs, Msr, Op, Rdmsr, Rdpmc, Rdtsc, SetCr4Pce, Wrmsr
from vpmu.host.task import Kernel, TaskOp
from vpmu.hw.x86.cpu import x86_cpu
from vpmu.hw.x86.lbr import Vmcs
from vpmu.machine.vcpu import Vcpu
from vpmu.sim import ps_to_cycles
from vpmu.vpmu.design import instant
from vpmu.vpmu.x86.access import X86VcpuPmu

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.machine.vm import Vm

FASTPATH_MSRS = frozenset({msrs.MSR_IA32_TSC_DEADLINE, msrs.X2APIC_ICR})
"""handle_fastpath_set_msr_irqoff: the WRMSRs the inner loop completes without a full exit."""
APIC_MSRS = frozenset({msrs.MSR_IA32_TSC_DEADLINE, msrs.X2APIC_ICR, msrs.X2APIC_EOI})
"""Local APIC MSRs a Linux guest writes besides the LVTPC; accepted, with no modelled effect."""
LEGACY_PERF_MSRS = frozenset({msrs.IA32_PMC0, msrs.IA32_PMC0 + 1, msrs.IA32_PERFEVTSEL0,
                              msrs.IA32_PERFEVTSEL0 + 1,
                              *range(msrs.MSR_K7_EVNTSEL0, msrs.MSR_K7_EVNTSEL0 + 8)})
"""kvm_{get,set}_msr_common: P6 and K7 counter MSRs the guest's PMU lacks read 0 and drop
writes instead of #GP (old guests probe them)."""
_LVTPC = msrs.lvtpc_msr()


class X86Vcpu(Vcpu):
    """An x86 vCPU: the run loop, VMX exit reasons, MSR/RDPMC/CPUID traps, CR4.PCE and the
    virtual LVTPC (what ``vpmu.vpmu.x86.access.X86VcpuHandle`` promises a design)."""

    IDLE_EXIT = "HLT"
    PMI_WINDOW_EXIT = "NMI_WINDOW"

    def __init__(self, vm: Vm, index: int, guest_os: GuestOs, pin: int | None) -> None:
        self.cr4_pce = False
        self.lvtpc = _LVTPC.reset
        self.vmcs = Vmcs()
        """This vCPU's VMCS, loaded on the CPU it runs on (``sched_in``)."""
        self.x86_caps = cast(X86PmuCaps, vm.caps)
        """``caps`` as the x86 caps they are (the x86 trap layer's view). A second name rather
        than a narrowed ``caps: X86PmuCaps``: a compiled subclass cannot narrow an attribute
        of its compiled base."""
        super().__init__(vm, index, guest_os, pin)

    def create_pmu(self) -> X86VcpuPmu:
        """The design's per-vCPU state; every design that runs on x86 gives x86 guest access
        (its registry entry lists x86 among its architectures). Kept as ``x86_pmu`` too, the
        x86 view of ``pmu`` (as ``x86_caps`` is of ``caps``)."""
        self.x86_pmu = cast(X86VcpuPmu, self.vm.design.create_vcpu(self))
        return self.x86_pmu

    def sched_in(self, cpu: Pcpu) -> int:
        """vmx_vcpu_load: this vCPU's VMCS becomes the CPU's current one, and KVM reads the
        host's DEBUGCTL (after the design's sched-in: kvm_arch_sched_in comes first)."""
        hw = x86_cpu(cpu.hw)
        hw.vmcs = self.vmcs
        cycles = super().sched_in(cpu)
        self.vmcs.host_debugctl = hw.x86_pmu.regs.get("IA32_DEBUGCTL", 0)
        return cycles

    def restore_host_state(self, cpu: Pcpu) -> None:
        """vmx_vcpu_run after vmx_vcpu_enter_exit (which handles an NMI exit's NMI first):
        the host's DEBUGCTL, if non-zero (``update_debugctlmsr(vmx->host_debugctlmsr)``)."""
        x86_cpu(cpu.hw).restore_host_debugctl()

    def interrupt_exit(self, kind: str) -> tuple[str, int]:
        """EXCEPTION_NMI for a host PMI (an NMI), EXTERNAL_INTERRUPT for any other; the vector
        the exit's intr_info reports."""
        reason = "EXCEPTION_NMI" if kind == "pmi" else "EXTERNAL_INTERRUPT"
        return reason, msrs.IRQ_VECTORS.get(kind, -1)

    def deliver_lvtpc(self) -> bool:
        """kvm_apic_local_deliver(APIC_LVTPC), then mask it for an Intel guest (lapic.c)."""
        if self.lvtpc >> msrs.LVT_MASKED & 1:
            return False
        self.nmi_pending = True
        if self.x86_caps.is_intel:
            self.lvtpc |= 1 << msrs.LVT_MASKED
        return True

    def arch_op(self, op: Op) -> Generator[TaskOp, Any, Any]:
        """RDTSC and CR4.PCE run in the guest; RDMSR, WRMSR and RDPMC exit unless the design
        passes them through (after the privilege checks that precede the exit), CPUID always
        does. An instruction executes in the guest, so a design's guest PMU context is loaded
        first (CR4.PCE is a guest-owned bit and needs no PMU context)."""
        match op:
            case SetCr4Pce(enabled):
                if self.cpl != 0:
                    return Fault.GP
                self.cr4_pce = enabled  # a guest-owned CR4 bit: no exit
                return None
            case Mrs() | Msr():
                return Fault.UD  # an arm64 instruction is undefined here
        yield from self._load_if_needed()
        if isinstance(op, Rdtsc):
            return ps_to_cycles(self.host.env.now_ps, self.host.preset.tsc_mhz)
        on_hardware = self._passed_through(op)
        if on_hardware is not None:
            return (yield from self._on_hardware(on_hardware))
        return (yield from self._trap(op))

    def _passed_through(self, op: Op) -> Callable[[Pcpu], Generator[Any, Any, Any]] | None:
        """The instruction as the hardware executes it, if the design does not intercept it
        and the privilege checks pass (else it exits, or faults first)."""
        match op:
            case Rdmsr(addr) if self.cpl == 0 and not self._intercepts(addr):
                return lambda cpu: x86_cpu(cpu.hw).rdmsr(addr)
            case Wrmsr(addr, value) if self.cpl == 0 and not self._intercepts(addr):
                return lambda cpu: x86_cpu(cpu.hw).wrmsr(addr, value)
            case Rdpmc(ecx) if (self.cpl == 0 or self.cr4_pce) and \
                    not self.x86_pmu.intercepts_rdpmc():
                return lambda cpu: self._hw_rdpmc(cpu, ecx)
        return None

    def _trap(self, op: Op) -> Generator[TaskOp, Any, Any]:
        """An intercepted instruction: its privilege check, then the exit and its handler."""
        match op:
            case Rdmsr(addr):
                if self.cpl != 0:
                    return Fault.GP
                return (yield Kernel(lambda cpu: self._exit(
                    cpu, "MSR_READ", lambda c: self._rdmsr(c, addr), msr=addr)))
            case Wrmsr(addr, value):
                if self.cpl != 0:
                    return Fault.GP
                return (yield Kernel(lambda cpu: self._exit(
                    cpu, "MSR_WRITE", lambda c: self._wrmsr(c, addr, value), msr=addr,
                    write=True, value=value, fastpath=addr in FASTPATH_MSRS)))
            case Rdpmc(ecx):
                if self.cpl != 0 and not self.cr4_pce:
                    return Fault.GP  # assumption: the CR4.PCE/CPL #GP precedes RDPMC exiting
                return (yield Kernel(lambda cpu: self._exit(
                    cpu, "RDPMC", lambda c: self.x86_pmu.rdpmc(c, ecx))))
            case Cpuid(leaf, subleaf):
                return (yield Kernel(lambda cpu: self._exit(
                    cpu, "CPUID", lambda c: instant(x86caps.cpuid(self.x86_caps, leaf, subleaf)))))
        raise TypeError(f"a guest program must yield a port operation, not {op!r}")

    def _intercepts(self, addr: int) -> bool:
        """The MSR bitmap: APIC MSRs always exit; PMU MSRs as the design says."""
        return (addr == msrs.X2APIC_LVTPC or addr in APIC_MSRS
                or self.x86_pmu.intercepts_msr(addr))

    def _hw_rdpmc(self, cpu: Pcpu, ecx: int) -> Generator[Any, Any, Any]:
        """RDPMC on the hardware with the guest's CR4.PCE (VMX runs the guest's CR4)."""
        hw = x86_cpu(cpu.hw)
        host_pce, hw.cr4_pce = hw.cr4_pce, self.cr4_pce
        try:
            return (yield from hw.rdpmc(ecx))
        finally:
            hw.cr4_pce = host_pce

    # -- register accesses that exit -------------------------------------------------------
    def _inert(self, addr: int) -> bool:
        """An MSR KVM accepts without effect: the APIC's others, or a P6/K7 counter MSR the
        guest's PMU lacks (reads 0, writes dropped)."""
        return addr in APIC_MSRS or (addr in LEGACY_PERF_MSRS
                                     and not self.x86_pmu.is_valid_msr(addr))

    def _rdmsr(self, cpu: Pcpu, addr: int) -> Generator[Any, Any, Any]:
        if addr == msrs.X2APIC_LVTPC:
            return self.lvtpc
        if self._inert(addr):
            return 0
        return (yield from self.x86_pmu.get_msr(cpu, addr))

    def _wrmsr(self, cpu: Pcpu, addr: int, value: int) -> Generator[Any, Any, Any]:
        if addr == msrs.X2APIC_LVTPC:
            res = apply_write(_LVTPC, self.lvtpc, value)
            if res.fault or res.store is None:
                return Fault.GP
            self.lvtpc = res.store
            yield from cpu.kernel_work(self.x86_pmu.lvtpc_written(cpu), "kvm lvtpc")
            return None
        if self._inert(addr):
            return None
        return (yield from self.x86_pmu.set_msr(cpu, addr, value))
