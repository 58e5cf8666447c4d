"""A host physical CPU: runs its tasks' work, takes interrupts, switches context.

The CPU is one simulated process. It executes the current task's stream until the stream ends
or an interrupt arrives (tick, PMI, IPI, reschedule); an interrupt stops the stream where it
is (``X86Cpu.stop`` keeps the rest, counted exactly), runs its handler as host-kernel work
and lets the scheduler pick what runs next. Handlers are not interruptible: what arrives
meanwhile is queued and handled after, in arrival order.

Every piece of kernel work is executed on the hardware in host-kernel mode for its cost in
cycles (from the preset's cost table), so it shows up in host counters that do not exclude
the kernel, and in time. Assumption: kernel work retires one instruction per cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol

from vpmu.arch import events as ev
from vpmu.arch.faults import Fault
from vpmu.host.costs import CostTable, cost_table
from vpmu.host.modes import Mode
from vpmu.host.task import GuestExit, GuestInsn, GuestInsnDone, Kernel, Sleep, Task, UserRdpmc
from vpmu.hw.models import make_cpu
from vpmu.sim import Event, Interrupt, cycles_to_ps
from vpmu.trace import ContextSwitch, CounterRead, ModeChange
from vpmu.trace import Interrupt as InterruptRecord
from vpmu.workloads.branches import KERNEL_WORK_INSNS_PER_BRANCH, kernel_work_pattern
from vpmu.workloads.streams import Stream

if TYPE_CHECKING:
    from vpmu.host.machine import Host

IpiFn = Callable[["Pcpu"], int]
"""A function an IPI runs on the target CPU; returns the cycles of kernel work it did."""


class PerfHooks(Protocol):
    """What the CPU asks of the perf subsystem; each returns the kernel cycles it took."""

    def sched_out(self, cpu: Pcpu, task: Task) -> int:
        """perf_event_task_sched_out: the task's events leave the CPU."""
        ...

    def sched_in(self, cpu: Pcpu, task: Task) -> int:
        """perf_event_task_sched_in: the task's events are scheduled on the CPU."""
        ...

    def switch_mm(self, cpu: Pcpu, task: Task) -> int:
        """switch_mm: CR4.PCE for the task and perf_clear_dirty_counters."""
        ...

    def tick(self, cpu: Pcpu) -> int:
        """perf_event_task_tick / the mux timer: rotation, frequency, unthrottling."""
        ...

    def handle_pmi(self, cpu: Pcpu) -> int:
        """The PMI (NMI) handler: overflowed events, samples, re-arming."""
        ...

    def is_host_pmi(self, cpu: Pcpu, vector: int, nmi: bool) -> bool:
        """The PMU interrupt ``vector`` is host perf's (an NMI on x86, the PMU's PPI on
        arm64), not a mediated guest's."""
        ...

    def handle_guest_pmi(self, cpu: Pcpu) -> int:
        """The mediated vPMU's PMI vector: hand the overflow to the running vCPU."""
        ...

    def guest_switch(self, cpu: Pcpu, guest: bool) -> None:
        """VM-entry (True) / VM-exit (False): perf's atomic GLOBAL_CTRL switch."""
        ...


class FastForward(Protocol):
    """A watcher of a task's guest streams that may skip periods which repeat exactly
    (``vpmu.machine.ffwd``); it sees each stream's start and how it ended."""

    def segment_start(self, cpu: Pcpu, task: Task) -> None:
        """``task.pending`` is about to execute on ``cpu`` (it may be replaced by the same
        stream advanced over skipped periods)."""
        ...

    def segment_end(self, cpu: Pcpu, task: Task, stream: Stream, rest: Stream | None) -> None:
        """``stream`` stopped: completed (``rest`` None) or interrupted with ``rest`` left."""
        ...


class NoPerf:
    """A host without perf activity: every hook is free."""

    def sched_out(self, cpu: Pcpu, task: Task) -> int:
        """No events to move."""
        return 0

    def sched_in(self, cpu: Pcpu, task: Task) -> int:
        """No events to move."""
        return 0

    def switch_mm(self, cpu: Pcpu, task: Task) -> int:
        """CR4.PCE follows the task; nothing to clear."""
        return cpu.set_user_access(task.rdpmc)

    def tick(self, cpu: Pcpu) -> int:
        """Nothing to rotate."""
        return 0

    def handle_pmi(self, cpu: Pcpu) -> int:
        """Nobody asked for PMIs."""
        return 0

    def is_host_pmi(self, cpu: Pcpu, vector: int, nmi: bool) -> bool:
        """An NMI is the host's; an IRQ vector a mediated guest's."""
        return nmi

    def handle_guest_pmi(self, cpu: Pcpu) -> int:
        """No mediated guest."""
        return 0

    def guest_switch(self, cpu: Pcpu, guest: bool) -> None:
        """No host events to switch."""


class Pcpu:
    """One physical CPU of the host."""

    def __init__(self, host: Host, index: int, cluster: int) -> None:
        self.host = host
        self.index = index
        self.cluster = cluster
        self.preset = host.host_preset.clusters[cluster].preset
        """The CPU preset of this CPU's cluster: its PMU, clocks and width."""
        self.costs: CostTable = host.costs if self.preset is host.preset else \
            cost_table(self.preset.costs)
        """The cost table of this CPU's preset: what work on this CPU costs, in its cycles."""
        self.hw = make_cpu(self.preset, host.env, deliver=self._on_pmi_interrupt,
                           instruction_cycles=self.costs.instruction_cycles)
        """The hardware, built from the cluster's preset by its architecture's CPU model:
        the PMU, its interrupt controller, the privilege level."""
        self.current: Task | None = None
        self.mode = Mode.IDLE
        self.irq_mode = Mode.IDLE
        """The mode the CPU was in when the last PMI arrived (what a sample records)."""
        self.need_resched = False
        self._irqs: list[tuple[str, Any]] = []
        self._kernel_streams: dict[tuple[str, int], Stream] = {}
        self._kernel_mode = Mode.HOST_KERNEL
        self._interruptible = False
        self._irqs_owner: Task | None = None
        """A vCPU task whose VM-exit was caused by the pending interrupts: KVM takes them
        (handle_exit_irqoff) inside its exit handling, after the PMU context is put."""
        self._proc = host.env.process(self._loop())

    def __repr__(self) -> str:
        return f"Pcpu(index={self.index}, cluster={self.cluster})"

    # -- interrupts ----------------------------------------------------------------------
    def interrupt(self, kind: str, payload: Any = None) -> None:
        """Raise an interrupt: it stops what the CPU executes now, or waits for the handler
        in progress to finish."""
        if self._interruptible:
            self._interruptible = False
            self._proc.interrupt((kind, payload))
        else:
            self._irqs.append((kind, payload))

    def cycles_ps(self, cycles: int) -> int:
        """This CPU's core cycles as time."""
        return cycles_to_ps(cycles, self.preset.core_mhz)

    def _on_pmi_interrupt(self, vector: int, nmi: bool) -> None:
        self.irq_mode = self.mode
        if self.host.perf.is_host_pmi(self, vector, nmi):
            self.interrupt("pmi", nmi)
        else:
            self.interrupt("guest-pmi", vector)

    @property
    def irq_pending(self) -> bool:
        """Interrupts are queued for this CPU (they end a vCPU's fastpath loop)."""
        return bool(self._irqs)

    def handle_exit_irqoff(self) -> Generator[Event, Any, None]:
        """KVM's handle_exit_irqoff: run the host handlers of the interrupts that made the
        current vCPU exit (a no-op if none are owed)."""
        if self._irqs_owner is None:
            return
        self._irqs_owner = None
        yield from self._handle_irqs()

    def _handle_irqs(self) -> Generator[Event, Any, None]:
        outer, self._kernel_mode = self._kernel_mode, Mode.HOST_KERNEL
        while self._irqs:
            kind, payload = self._irqs.pop(0)
            self.host.trace.emit(InterruptRecord(self.host.env.now_ps, self.index, kind))
            cycles = self.host.irq_cycles(self, kind, payload)
            yield from self.kernel_work(cycles, kind)
            if kind == "pmi":
                self.hw.end_of_interrupt()
        self._kernel_mode = outer

    def set_user_access(self, enabled: bool) -> int:
        """User-mode counter access as the next mm needs (x86: cr4_update_pce, CR4.PCE);
        the cycles of the control-register write."""
        if self.hw.user_access == enabled:
            return 0
        self.hw.user_access = enabled
        return self.costs.instruction_cycles["mov_cr"]

    # -- work ----------------------------------------------------------------------------
    def kernel_work(self, cycles: int, what: str) -> Generator[Event, Any, None]:
        """Execute ``cycles`` of kernel work (not interruptible): host kernel, or IN_KVM inside
        a vCPU's ``Kernel`` operation."""
        if cycles <= 0:
            return
        self._set_mode(self._kernel_mode)
        stream = self._kernel_streams.get((what, cycles))
        if stream is None:
            stream = Stream(what, {ev.CYCLES: cycles, ev.INSTRUCTIONS: cycles,
                                   ev.BRANCHES: cycles // KERNEL_WORK_INSNS_PER_BRANCH},
                            branches=kernel_work_pattern())
            if len(self._kernel_streams) < 1024:
                self._kernel_streams[(what, cycles)] = stream
        yield from self.hw.execute(stream)

    def _set_mode(self, mode: Mode) -> None:
        if mode is self.mode:
            return
        if mode.is_guest != self.mode.is_guest:
            self.host.perf.guest_switch(self, mode.is_guest)
            self.hw.set_guest(mode.is_guest)
        self.mode = mode
        if mode is not Mode.IDLE:
            self.hw.set_cpl(mode.cpl)
        task = self.current.name if self.current else "idle"
        self.host.trace.emit(ModeChange(self.host.env.now_ps, self.index, mode.value, task))

    def _loop(self) -> Generator[Event, Any, None]:
        while True:
            if self._irqs and self._irqs_owner is not self.current:
                self._irqs_owner = None
                yield from self._handle_irqs()
                continue
            nxt = self.host.sched.pick(self)
            if nxt is not self.current:
                yield from self._switch_to(nxt)
                continue
            if nxt is None:
                yield from self._wait(self.host.env.event())
            else:
                yield from self._run_current(nxt)

    def _wait(self, event: Event) -> Generator[Event, Any, bool]:
        """Wait for ``event`` unless interrupted first; True if it completed."""
        self._interruptible = True
        try:
            yield event
        except Interrupt as irq:
            self._irqs.append(irq.cause)
            return False
        self._interruptible = False
        return True

    def _switch_to(self, nxt: Task | None) -> Generator[Event, Any, None]:
        """__schedule(): perf sched-out of prev and its preempt notifiers, switch_mm,
        switch_to, perf sched-in and the next task's preempt notifiers."""
        prev, host = self.current, self.host
        cycles = self.costs.context_switch_cycles
        if prev is not None:
            cycles += host.perf.sched_out(self, prev)
            cycles += sum(n.sched_out(self) for n in prev.notifiers)
        host.trace.emit(ContextSwitch(host.env.now_ps, self.index,
                                      prev.name if prev else "idle", nxt.name if nxt else "idle"))
        self.current = nxt
        self.need_resched = False
        if nxt is not None:
            nxt.cpu = self.index
            nxt.slice_ticks = 0
            cycles += host.perf.switch_mm(self, nxt) + host.perf.sched_in(self, nxt)
            cycles += sum(n.sched_in(self) for n in nxt.notifiers)
        else:
            self._set_mode(Mode.IDLE)
        yield from self.kernel_work(cycles, "context switch")
        if nxt is None:
            self._set_mode(Mode.IDLE)

    def _run_current(self, task: Task) -> Generator[Event, Any, None]:
        if task.pending is None:
            op = task.next_op()
            if op is None:
                self.host.sched.exit(self, task)
                return
            if isinstance(op, Sleep):
                self.host.sched.sleep(self, task, op.duration_ps)
                return
            if isinstance(op, UserRdpmc):
                yield from self._user_rdpmc(task, op.ecx)
                return
            if isinstance(op, Kernel):
                yield from self._kernel_op(task, op)
                return
            if isinstance(op, GuestInsn):
                yield from self._guest_insn(task, op)
                return
            task.pending, task.guest = op.stream, op.guest
        yield from self._execute(task)

    def _execute(self, task: Task) -> Generator[Event, Any, None]:
        """Run the task's pending stream until it ends or an interrupt stops it."""
        assert task.pending is not None
        # A stream without a user/kernel split is the task's own (user) code; its split, if
        # any, puts that share at CPL 0. The recorded mode is the user side.
        self._set_mode(Mode.GUEST_USER if task.guest else Mode.HOST_USER)
        env = self.host.env
        ffwd = self.host.ffwd if task.guest else None
        if ffwd is not None:
            ffwd.segment_start(self, task)
        t0, stream = env.now_ps, task.pending
        assert stream is not None
        duration = self.hw.start(stream)
        done = env.skip_to(t0 + duration) or (yield from self._wait(env.timeout(duration)))
        rest = self.hw.stop()
        if ffwd is not None:
            ffwd.segment_end(self, task, stream, None if done else rest)
        task.pending = None if done else rest
        if task.guest and not done:  # a VM-exit: the vCPU's KVM code sees it
            task.give(GuestExit(self._irqs[-1][0], rest))
            task.pending = None
            self._irqs_owner = task
        task.runtime_ps += self.host.env.now_ps - t0
        account_truth(task.truth, task.guest, stream, None if done else rest)

    def _kernel_op(self, task: Task, op: Kernel) -> Generator[Event, Any, None]:
        outer = self._kernel_mode
        self._kernel_mode = Mode.IN_KVM if op.in_kvm else Mode.HOST_KERNEL
        self._set_mode(self._kernel_mode)
        try:
            task.give((yield from op.fn(self)))
        finally:
            self._kernel_mode = outer

    def _guest_insn(self, task: Task, op: GuestInsn) -> Generator[Event, Any, None]:
        """A guest instruction on the hardware, in guest mode; an interrupt that arrived
        meanwhile becomes the vCPU's next exit."""
        self._set_mode(Mode.GUEST_KERNEL if op.cpl == 0 else Mode.GUEST_USER)
        self.hw.pmu.writer = task.name
        try:
            value = yield from op.fn(self)
        finally:
            self.hw.pmu.writer = ""
        forced = None
        if self._irqs:
            forced = GuestExit(self._irqs[-1][0], None)
            self._irqs_owner = task
        task.give(GuestInsnDone(value, forced))

    def _user_rdpmc(self, task: Task, ecx: int) -> Generator[Event, Any, None]:
        self._set_mode(Mode.HOST_USER)
        value = yield from self.hw.user_read(ecx)
        if not isinstance(value, Fault):
            self.host.trace.emit(CounterRead(self.host.env.now_ps, self.index, task.name, ecx,
                                             value, self.hw.user_read_origin(ecx)))
        task.give(value)


def account_truth(truth: dict[tuple[str, str], int], guest: bool, stream: Stream,
                  rest: Stream | None) -> None:
    """Add what a task just executed of ``stream`` (all of it but ``rest``) to its ground
    truth ``truth``, by mode. Public for the idle fast-forward, which credits skipped
    periods of a stream with the same arithmetic."""
    user = (Mode.GUEST_USER if guest else Mode.HOST_USER).value
    kernel = (Mode.GUEST_KERNEL if guest else Mode.HOST_KERNEL).value
    frac = stream.user_fraction
    for key, total in stream.counts.items():
        done = total - (rest.get(key) if rest else 0)
        in_user = done if frac is None else done * frac.numerator // frac.denominator
        for mode, n in ((user, in_user), (kernel, done - in_user)):
            if n:
                truth[(mode, key)] = truth.get((mode, key), 0) + n
