"""The arm64 trap layer of a vCPU (arch/arm64/kvm/arm.c@v6.16 kvm_arch_vcpu_ioctl_run,
handle_exit.c, sys_regs.c, vgic).

``ArmVcpu`` is the neutral run loop of ``vpmu.machine.vcpu`` plus what an arm64 exit is made
of: every MRS / MSR of a PMU system register exits "SYS64" (MDCR_EL2.TPM / TPMCR), as does
an ID register read (HCR_EL2.TID3); an idle guest exits "WFx", a host interrupt "IRQ". The
PMU's overflow interrupt is a level on the vGIC's PPI ``irq_num`` (23) that the vPMU pushes
at every entry and exit; a rising level makes the PPI pending, a falling one withdraws it
before the guest takes it, and a level still high at the guest's EOI makes it pending again
(the EOI maintenance interrupt KVM asks for on a level-sensitive vIRQ: an "IRQ" exit).
"""

from __future__ import annotations

import functools
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, cast

from vpmu.arch import events as ev
from vpmu.arch.arm64.caps import ArmPmuCaps
from vpmu.arch.arm64.sysregs import SYSREG_NAMES
from vpmu.arch.faults import Fault
from vpmu.guest.os import GuestOs
from vpmu.guest.port import Mrs, Msr, Op
from vpmu.host.task import GuestInsn, Kernel, Run, TaskOp
from vpmu.hw.arm64.cpu import ArmCpu
from vpmu.hw.arm64.gic import PMU_PPI
from vpmu.hw.counting import RING_KERNEL
from vpmu.machine.arm64.run import FailEntryExit, RunRefused
from vpmu.machine.vcpu import Frame, Thread, Vcpu
from vpmu.trace.records import FailEntry, VcpuLoad, VcpuPut
from vpmu.vpmu.arm64.access import KVM_REQ_IRQ_PENDING, ArmVcpuPmu
from vpmu.vpmu.design import instant
from vpmu.vpmu.lifecycle import KVM_REQ_PMU
from vpmu.workloads.streams import Stream

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.machine.vm import Vm

PMU_SYSREGS = frozenset(SYSREG_NAMES.values())
"""Every PMU system register name (of the widest PMU): each access traps."""
ID_REGISTERS = frozenset({"ID_AA64DFR0_EL1"})
"""ID registers a guest reads that KVM emulates (HCR_EL2.TID3)."""
DEBUGVER_V8 = 0x6
TIMER_PPI = 30
"""The host's tick on an nVHE host: the EL1 physical timer, PPI 14 (INTID 30); assumption."""


class ArmVcpu(Vcpu):
    """An arm64 vCPU: the run loop, SYS64/WFx/IRQ exits, the vGIC's PMU PPI."""

    IDLE_EXIT = "WFx"
    PMI_WINDOW_EXIT = "IRQ"

    def __init__(self, vm: Vm, index: int, guest_os: GuestOs, pin: int | None) -> None:
        self.arm_caps = cast(ArmPmuCaps, vm.caps)
        self.pin = pin
        self.irq_num = PMU_PPI
        self.ppi_level = False
        """The vGIC's line level of ``irq_num`` (what the vPMU last pushed)."""
        self.ppi_injections = 0
        self.initialised = False
        self.unsupported_cpu = False
        """ON_UNSUPPORTED_CPU: loaded outside the VM's supported CPUs (until vcpu_put)."""
        self.reentry = True
        """Loaded since the last entry check: the run loop checks before entering."""
        self.has_run = False
        super().__init__(vm, index, guest_os, pin)

    def __repr__(self) -> str:
        return f"ArmVcpu(vm={self.vm.name!r}, index={self.index})"

    def create_pmu(self) -> ArmVcpuPmu:
        """The design's per-vCPU state, as arm64 accesses it (``arm_pmu`` too)."""
        self.arm_pmu = cast(ArmVcpuPmu, self.vm.design.create_vcpu(self))
        return self.arm_pmu

    # -- the vGIC's PMU PPI --------------------------------------------------------------
    def vgic_inject_irq(self, level: bool) -> None:
        """kvm_vgic_inject_irq on ``irq_num``: level-sensitive, pending while asserted."""
        self.ppi_level = level
        if level and not self._in("pmi"):
            self.nmi_pending = True
            self._kick()
        elif not level:
            self.nmi_pending = False

    def request(self, name: str) -> None:
        """kvm_make_request; KVM_REQ_IRQ_PENDING also kicks (kvm_vcpu_kick)."""
        super().request(name)
        if name == KVM_REQ_IRQ_PENDING:
            self._kick()

    def _enter(self, cpu: Pcpu) -> Generator[Any, Any, None]:
        """kvm_arch_vcpu_ioctl_run's entry: the requests (KVM_REQ_RELOAD_PMU; IRQ_PENDING
        only woke us), kvm_pmu_flush_hwstate, then the vGIC's injection."""
        if KVM_REQ_PMU in self.requests:
            self.requests.discard(KVM_REQ_PMU)
            yield from self.pmu.handle_event(cpu)
        self.requests.discard(KVM_REQ_IRQ_PENDING)
        self.arm_pmu.flush_hwstate()
        injected = self.nmi_pending and not self._in("pmi")
        yield from super()._enter(cpu)
        self.ppi_injections += injected

    def _finish(self, frame: Frame, value: Any) -> Any:
        """A handler's return is its EOI: a level still asserted is pending again."""
        result = super()._finish(frame, value)
        if frame.kind == "pmi" and self.ppi_level:
            self.nmi_pending = True
        return result

    # -- vcpu_load and exits -------------------------------------------------------------
    def sched_in(self, cpu: Pcpu) -> int:
        """kvm_arch_vcpu_load; the first one stands for KVM_ARM_VCPU_INIT, run on the
        vCPU's pinned CPU or where its thread first runs, and the VMM's PMU attributes.
        A CPU outside the VM's supported CPUs sets ON_UNSUPPORTED_CPU."""
        if not self.initialised:
            self.initialised = True
            self.arm_pmu.vcpu_init(self.pin if self.pin is not None else cpu.index)
        self.unsupported_cpu = self.arm_pmu.vcpu_load(cpu.index)
        self.reentry = True
        cycles = super().sched_in(cpu)
        pmu, counting = self.arm_pmu.counting_pmu_name(cpu.index)
        self.host.trace.emit(VcpuLoad(self.host.env.now_ps, cpu.index, self.vm.name,
                                      self.index, self.task.name, pmu, counting,
                                      self.arm_pmu.peek_cycle_counter()))
        return cycles

    def sched_out(self, cpu: Pcpu) -> int:
        """kvm_arch_vcpu_put: ON_UNSUPPORTED_CPU cleared."""
        self.unsupported_cpu = False
        cycles = super().sched_out(cpu)
        self.host.trace.emit(VcpuPut(self.host.env.now_ps, cpu.index, self.vm.name,
                                     self.index, self.task.name,
                                     self.arm_pmu.peek_cycle_counter()))
        return cycles

    def _thread(self) -> Thread:
        """vcpu_run with arm64's entry checks: after each load, before guest code runs again,
        the run loop (``_check_entry``) may end KVM_RUN (FAIL_ENTRY, or a refused setup);
        the thread then returns that outcome instead of the guest's."""
        inner = super()._thread()
        send: Any = None
        while True:
            try:
                op = inner.send(send)
            except StopIteration as stop:
                return stop.value
            while self.reentry and _enters_guest(op):
                self.reentry = False
                outcome = yield Kernel(self._check_entry)
                if outcome is not None:
                    inner.close()
                    return outcome
            send = yield op

    def _check_entry(self, cpu: Pcpu) -> Generator[Any, Any, Any]:
        """The first KVM_RUN's kvm_arm_pmu_v3_enable, then kvm_vcpu_exit_request's
        ON_UNSUPPORTED_CPU, then (re-entering after a load elsewhere) the requests and
        injections of the entry."""
        setup = self.arm_pmu.setup_error
        if setup is not None:
            return setup
        if not self.has_run:
            self.has_run = True
            err = self.arm_pmu.first_run()
            if err is not None:
                return RunRefused("KVM_RUN", getattr(err, "name", str(err)))
        if self.unsupported_cpu:
            now = self.host.env.now_ps
            self.host.trace.emit(FailEntry(now, cpu.index, self.vm.name, self.index))
            return FailEntryExit(cpu.index, now)
        yield from self._enter(cpu)
        return None

    def interrupt_exit(self, kind: str) -> tuple[str, int]:
        """Every host interrupt is an IRQ exit (the PMU's is an IRQ on arm64); the INTID."""
        return "IRQ", {"pmi": PMU_PPI, "tick": TIMER_PPI, "timer": TIMER_PPI}.get(kind, -1)

    @property
    def el(self) -> int:
        """The guest's exception level: EL1 at the kernel ring, else EL0."""
        return 1 if self.cpl == RING_KERNEL else 0

    def arch_op(self, op: Op) -> Generator[TaskOp, Any, Any]:
        """PMU system registers trap (SYS64) unless the design passes them through (a
        loaded partitioned PMU: the hardware, at the guest's EL under MDCR_EL2.HPMN); ID
        registers trap; CurrentEL and the generic timer's registers execute in the guest;
        an x86 instruction is UNDEFINED."""
        match op:
            case Mrs(name) if name in PMU_SYSREGS:
                if not self.arm_pmu.traps(name):
                    return (yield from self._on_hardware(lambda cpu: _arm_cpu(cpu).mrs(name)))
                return (yield from self._trap(name, None))
            case Msr(name, value) if name in PMU_SYSREGS:
                if not 0 <= value < 1 << 64:
                    return Fault.UNDEF
                if not self.arm_pmu.traps(name):
                    return (yield from self._on_hardware(
                        lambda cpu: _arm_cpu(cpu).msr(name, value)))
                return (yield from self._trap(name, value))
            case Mrs(name) if name in ID_REGISTERS:
                if self.el == 0:
                    return Fault.UNDEF  # EL0's ID access traps to the guest's EL1 first
                return (yield Kernel(lambda cpu: self._exit(
                    cpu, "SYS64", lambda c: instant(self._id_register()))))
            case Mrs(name):
                return (yield from self._on_hardware(lambda cpu: self._hw_mrs(cpu, name)))
            case Msr(name, value):
                return (yield from self._on_hardware(
                    lambda cpu: _arm_cpu(cpu).msr(name, value)))
        return Fault.UNDEF

    def _trap(self, name: str, value: int | None) -> Generator[TaskOp, Any, Any]:
        """A PMU system register access: the instruction issues in the guest (its latency,
        counted by the guest's counters, no retirement: it traps), then one SYS64 exit
        whose handler is the vPMU's."""
        el, op = self.el, "mrs" if value is None else "msr"
        yield from self._on_hardware(lambda cpu: _arm_cpu(cpu).execute(_issue_stream(cpu, op)))
        return (yield Kernel(lambda cpu: self._exit(
            cpu, "SYS64", lambda c: self.arm_pmu.access_sys_reg(c, name, value, el),
            write=value is not None, value=value or 0)))

    def _id_register(self) -> int:
        """ID_AA64DFR0_EL1 as the guest sees it: the VM's PMUVer, Armv8 debug."""
        return self.arm_caps.pmuver << 8 | DEBUGVER_V8

    def _hw_mrs(self, cpu: Pcpu, name: str) -> Generator[Any, Any, Any]:
        """An MRS the guest executes itself; CurrentEL reads the guest's EL."""
        value = yield from _arm_cpu(cpu).mrs(name)
        if name == "CurrentEL" and not isinstance(value, Fault):
            return self.el << 2
        return value


@functools.cache
def _issue(op: str, cycles: int) -> Stream:
    return Stream(f"{op} (trapped)", {ev.CYCLES: cycles})


def _issue_stream(cpu: Pcpu, op: str) -> Stream:
    """A trapped instruction up to its exception: its latency, no retirement (assumption:
    the exception is taken after the instruction's issue latency, as a fault is on bare
    metal)."""
    return _issue(op, max(1, cpu.costs.instruction_cycles[op]))


def _enters_guest(op: TaskOp) -> bool:
    """The operation runs guest code (a guest Run, or a guest instruction)."""
    return isinstance(op, GuestInsn) or (isinstance(op, Run) and op.guest)


def _arm_cpu(cpu: Pcpu) -> ArmCpu:
    hw = cpu.hw
    if not isinstance(hw, ArmCpu):
        raise TypeError(f"an arm64 vCPU needs an ArmCpu, not {hw!r}")
    return hw
