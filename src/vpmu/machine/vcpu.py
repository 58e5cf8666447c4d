"""A vCPU: a host task running KVM's run loop around a guest OS, whatever the architecture.

The thread's program is ``vcpu_run``: process the pending requests in KVM's order
(KVM_REQ_PMU -> kvm_pmu_handle_event, KVM_REQ_PMI -> kvm_pmu_deliver_pmi, then the NMI /
interrupt injection), enter, run guest code until it needs the hypervisor, exit with a reason,
handle it, and again. Guest code is the guest OS's port programs: an ``Execute`` runs on the
physical CPU in guest mode until a host interrupt stops it (EXTERNAL_INTERRUPT, or
EXCEPTION_NMI for a host PMI); an intercepted register access is an exit whose handler is the
design's op. Every exit is one ``Kernel`` operation (IN_KVM time on the CPU) charged from the
preset's KVM cost table, plus the design's perf calls, and leaves a ``VmExit`` record.

This module is the neutral loop: requests, entry, exit accounting, injection, the guest
timer. What an exit is made of on one architecture (the exit reasons, the trapped register
accesses, the virtual PMU interrupt line) is its trap layer, a subclass named in
``vpmu.arch.registry`` for the VM's architecture (x86: ``vpmu.machine.x86.vcpu``: VMX/SVM
exits, MSRs, RDPMC, CPUID, the LVTPC).

Injected interrupts run the guest OS's handler to completion before the interrupted code
resumes where it stopped (``vpmu.guest.os``). A PMI handler's latency runs from its injection
to its last operation, exits included (``GuestPmi`` record).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

from mypy_extensions import mypyc_attr

from vpmu.arch.faults import Fault
from vpmu.arch.lazy import resolve
from vpmu.arch.registry import arch_entry
from vpmu.guest.os import GuestOs
from vpmu.guest.port import Execute, GuestGen, Op, SetCpl, WaitPmi
from vpmu.host.task import (
    GuestExit,
    GuestInsn,
    GuestInsnDone,
    Kernel,
    Run,
    Sleep,
    Task,
    TaskOp,
    TaskState,
)
from vpmu.sim import ns
from vpmu.trace import GuestPmi, VmExit
from vpmu.vpmu.lifecycle import KVM_REQ_PMI, KVM_REQ_PMU, VcpuLifecycle
from vpmu.workloads.streams import Stream

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.machine.vm import Vm

Thread = Generator[TaskOp, Any, Any]



@dataclass(eq=False)
class Frame:
    """One running guest program: the main one, or an interrupt handler on top of it."""

    gen: GuestGen
    kind: str
    send: Any = None
    pending: Stream | None = None
    """The rest of an Execute a VM-exit interrupted."""
    t0_ps: int = 0
    saved_cpl: int = 0
    """The CPL the interrupt found (restored by its IRET); handlers run at CPL 0."""


def vcpu_class(arch: str) -> type[Vcpu]:
    """The vCPU model of an architecture; a clear error for one whose VMs are not modelled."""
    target = arch_entry(arch).vcpu
    if not target:
        raise ValueError(f"VMs on {arch} are not modelled yet (no vCPU model)")
    cls: type[Vcpu] = resolve(target)
    return cls


@mypyc_attr(allow_interpreted_subclasses=True)  # a new architecture's vCPU may be pure Python
class Vcpu:
    """One vCPU of ``vm``: the KVM side (requests, injection) and its host thread.

    An architecture's subclass gives the exit reasons below, ``interrupt_exit`` and
    ``arch_op`` (the operations of its port), and the state its traps keep.
    """

    IDLE_EXIT: ClassVar[str] = ""
    """The exit of a guest that idles waiting for an interrupt (x86: HLT)."""
    PMI_WINDOW_EXIT: ClassVar[str] = ""
    """The exit that ends a PMI handler while another PMI is pending (x86: NMI_WINDOW)."""

    def __init__(self, vm: Vm, index: int, guest_os: GuestOs, pin: int | None) -> None:
        self.vm, self.index, self.guest_os = vm, index, guest_os
        self.host = vm.host
        self.caps = vm.caps
        self.perf = vm.perf
        self.kapi = vm.kapi
        self.vm_name = vm.name
        self.label = f"{vm.name}/vcpu{index}"
        self.kvm_costs = vm.kvm_costs
        self.event_filter = vm.event_filter
        self.cpl = 0
        self.requests: set[str] = set()
        self.nmi_pending = False
        self.timer_pending = False
        self.pmis_delivered = 0
        self._pmis_seen = 0
        self.frames: list[Frame] = []
        self.task = Task(f"{vm.name}/vcpu{index}", self._thread,
                         affinity=frozenset({pin}) if pin is not None else None)
        self.task.notifiers.append(self)
        self.pmu: VcpuLifecycle = self.create_pmu()
        self.timer_period_ps = ns(10**9) // guest_os.tick_hz if guest_os.tick_hz else 0
        """The guest LAPIC timer's period (0: no timer)."""
        if self.timer_period_ps:
            self.host.env.schedule(self._timer_fires, delay_ps=self.timer_period_ps)

    def __repr__(self) -> str:
        return f"Vcpu(vm={self.vm.name!r}, index={self.index})"

    # -- what the design sees (VcpuHandle) ---------------------------------------------------
    def request(self, name: str) -> None:
        """kvm_make_request; KVM_REQ_PMI also kicks a halted vCPU."""
        self.requests.add(name)
        if name == KVM_REQ_PMI:
            self._kick()

    # -- the trap layer (an architecture's subclass) ----------------------------------------
    def create_pmu(self) -> VcpuLifecycle:
        """kvm_pmu_init: the design's per-vCPU state, as this architecture accesses it."""
        raise NotImplementedError

    def interrupt_exit(self, kind: str) -> tuple[str, int]:
        """The exit reason and vector of a host interrupt of ``kind`` that stopped the guest."""
        raise NotImplementedError

    def arch_op(self, op: Op) -> Generator[TaskOp, Any, Any]:
        """An operation of this architecture's port: executed in the guest, or trapped."""
        raise NotImplementedError

    def restore_host_state(self, cpu: Pcpu) -> None:
        """What KVM writes back of the host's state after a VM-exit, once an NMI that caused
        the exit has been handled (x86: DEBUGCTL); nothing by default."""

    # -- preempt notifiers (vcpu_load / vcpu_put) --------------------------------------------
    def sched_in(self, cpu: Pcpu) -> int:
        """kvm_sched_in -> kvm_arch_sched_in and vcpu_load."""
        return self.pmu.sched_in(cpu)

    def sched_out(self, cpu: Pcpu) -> int:
        """kvm_sched_out -> vcpu_put (a mediated design may put its context here)."""
        return self.pmu.sched_out(cpu)

    def mediated_pmi(self, cpu: Pcpu) -> int:
        """kvm_handle_guest_mediated_pmi: the 0xF5 vector fired for this vCPU's counters."""
        self.request(KVM_REQ_PMI)
        return 0

    # -- the guest timer ---------------------------------------------------------------------
    def _timer_fires(self) -> None:
        """The hrtimer emulating the guest's LAPIC timer: pending, and a kick."""
        if self.task.state is TaskState.DEAD:
            return
        self.timer_pending = True
        self._kick(timer=True)
        self.host.env.schedule(self._timer_fires, delay_ps=self.timer_period_ps)

    def _kick(self, *, timer: bool = False) -> None:
        """kvm_vcpu_kick: wake a halted vCPU, or make a running one exit."""
        task = self.task
        if task.state is TaskState.SLEEPING:
            self.host.sched.wake(task)
            return
        cpu = self.host.cpus[task.cpu] if task.cpu >= 0 else None
        if timer and cpu is not None and cpu.current is task and cpu.mode.is_guest:
            cpu.interrupt("timer", lambda c: self.kvm_costs.hrtimer_cycles)

    # -- the run loop --------------------------------------------------------------------------
    def _thread(self) -> Thread:
        """vcpu_run: enter, run guest programs, exit, until the guest's main program ends."""
        self.frames = [Frame(self.guest_os.main(), "main")]
        yield Kernel(self._enter)
        result: Any = None
        while self.frames:
            frame = self.frames[-1]
            if frame.pending is not None:
                rest, frame.pending = frame.pending, None
                yield from self._run_guest(frame, rest)
                continue
            try:
                op = frame.gen.send(frame.send)
            except StopIteration as stop:
                result = self._finish(frame, stop.value)
                if self.frames and self.nmi_pending and frame.kind == "pmi":
                    yield from self._load_if_needed()
                    yield Kernel(lambda cpu: self._exit(cpu, self.PMI_WINDOW_EXIT))
                continue
            frame.send = None
            frame.send = yield from self._dispatch(frame, op)
        return result

    def _finish(self, frame: Frame, value: Any) -> Any:
        self.frames.pop()
        if frame.kind != "main":
            self.cpl = frame.saved_cpl
        if frame.kind == "pmi":
            now = self.host.env.now_ps
            cpu = self.task.cpu
            self.host.trace.emit(GuestPmi(frame.t0_ps, cpu, self.vm.name, self.index,
                                          now - frame.t0_ps))
        return value

    def _dispatch(self, frame: Frame, op: Op) -> Generator[TaskOp, Any, Any]:
        match op:
            case Execute(stream):
                yield from self._run_guest(frame, stream)
                return frame.send
            case WaitPmi(timeout_ns):
                return (yield from self._wait_pmi(timeout_ns))
            case SetCpl(cpl):
                self.cpl = cpl
                return None
        return (yield from self.arch_op(op))

    def _on_hardware(self, fn: Callable[[Pcpu], Generator[Any, Any, Any]]
                     ) -> Generator[TaskOp, Any, Any]:
        """A passed-through instruction, executed in guest mode (``arch_op`` has loaded the
        guest context); an interrupt that arrived meanwhile makes the vCPU exit after it."""
        done: GuestInsnDone = yield GuestInsn(fn, self.cpl)
        if done.exit is not None:
            reason, vector = self.interrupt_exit(done.exit.kind)
            yield Kernel(lambda cpu: self._exit(cpu, reason, vector=vector))
        return done.value

    def _load_if_needed(self) -> Generator[TaskOp, Any, None]:
        """The design's guest PMU context goes on the hardware just before VM-entry."""
        if self.pmu.needs_load():
            yield Kernel(self.pmu.load)

    def _run_guest(self, frame: Frame, stream: Stream) -> Generator[TaskOp, Any, None]:
        """Run guest code until it ends or a host interrupt makes the vCPU exit."""
        if stream.user_fraction is None and self.cpl == 0:
            stream = Stream(stream.name, stream.counts, Fraction(0))
        yield from self._load_if_needed()
        out = yield Run(stream, guest=True)
        if isinstance(out, GuestExit):
            frame.pending = out.rest
            reason, vector = self.interrupt_exit(out.kind)
            yield Kernel(lambda cpu: self._exit(cpu, reason, vector=vector))

    def _wait_pmi(self, timeout_ns: int) -> Generator[TaskOp, Any, bool]:
        """Idle until a PMI arrives (HLT exit, then sleep unless one is pending)."""
        if self.pmis_delivered == self._pmis_seen:
            yield from self._load_if_needed()
            yield Kernel(lambda cpu: self._exit(cpu, self.IDLE_EXIT, count=False))
            if self.pmis_delivered == self._pmis_seen and not self.requests:
                yield Sleep(ns(timeout_ns))
                yield Kernel(self._enter)
        if self.pmis_delivered > self._pmis_seen:
            self._pmis_seen += 1
            return True
        return False

    # -- exits ---------------------------------------------------------------------------------
    def _exit(self, cpu: Pcpu, reason: str, handler: Callable[[Pcpu], Any] | None = None, *,
              msr: int = -1, write: bool = False, value: int = 0, fastpath: bool = False,
              count: bool = True, vector: int = -1) -> Generator[Any, Any, Any]:
        """One VM-exit, in vcpu_enter_guest's order: the fastpath handler if the exit has one
        (with IRQs off and the guest PMU context still loaded), else leave the loop (a design
        may put its context), take the interrupts that caused the exit (handle_exit_irqoff),
        run the handler; then the transition and handler costs and, for a full exit, the
        requests and injections of the next entry."""
        t0 = self.host.env.now_ps
        nmi = reason == self.interrupt_exit("pmi")[0]
        if not nmi:
            self.restore_host_state(cpu)
        yield from self.pmu.at_exit(cpu, "vm-exit")
        fast_capable = fastpath and self.pmu.fastpath_allowed()
        result = None
        if fast_capable:
            result = yield from self._handle(cpu, handler, count)
        fast = fast_capable and not self.requests and not self._injectable() \
            and not cpu.irq_pending
        if not fast:
            yield from self.pmu.at_exit(cpu, "loop-exit")
            yield from cpu.handle_exit_irqoff()
            if nmi:
                self.restore_host_state(cpu)
            if not fast_capable:
                result = yield from self._handle(cpu, handler, count)
        yield from cpu.kernel_work(self.kvm_costs.exit_cycles(reason, fastpath=fast),
                                   f"kvm exit {reason}")
        if not fast:
            yield from self._enter(cpu)
        if not write:
            value = result if isinstance(result, int) and not isinstance(result, bool) else 0
        self.host.trace.emit(VmExit(t0, cpu.index, self.vm.name, self.index, reason, msr,
                                    write, fast, self.host.env.now_ps - t0, value,
                                    isinstance(result, Fault), vector))
        return result

    def _handle(self, cpu: Pcpu, handler: Callable[[Pcpu], Any] | None,
                count: bool) -> Generator[Any, Any, Any]:
        """The exit's handler, then the skipped instruction's retirement if it succeeded."""
        if handler is None:
            return None
        result = yield from handler(cpu)
        if count and not isinstance(result, Fault):
            self.pmu.instruction_retired()
        return result

    def _injectable(self) -> bool:
        return (self.nmi_pending and not self._in("pmi")) or (
            self.timer_pending and len(self.frames) == 1)

    def _in(self, kind: str) -> bool:
        return any(f.kind == kind for f in self.frames)

    def _enter(self, cpu: Pcpu) -> Generator[Any, Any, None]:
        """vcpu_enter_guest's request processing, in KVM's order, and event injection."""
        if KVM_REQ_PMU in self.requests:
            self.requests.discard(KVM_REQ_PMU)
            yield from self.pmu.handle_event(cpu)
        if KVM_REQ_PMI in self.requests:
            self.requests.discard(KVM_REQ_PMI)
            yield from self.pmu.deliver_pmi(cpu)
        if self.nmi_pending and not self._in("pmi"):
            self.nmi_pending = False
            yield from cpu.kernel_work(self.kvm_costs.inject_cycles, "kvm inject nmi")
            self._push_handler("pmi", self.guest_os.on_pmi())
            self.pmis_delivered += 1
        elif self.timer_pending and len(self.frames) == 1:
            self.timer_pending = False
            yield from cpu.kernel_work(self.kvm_costs.inject_cycles, "kvm inject irq")
            self._push_handler("tick", self.guest_os.on_tick())

    def _push_handler(self, kind: str, gen: GuestGen | None) -> None:
        if gen is not None:
            self.frames.append(Frame(gen, kind, t0_ps=self.host.env.now_ps,
                                     saved_cpl=self.cpl))
            self.cpl = 0

