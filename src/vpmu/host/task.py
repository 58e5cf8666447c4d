"""Host tasks: what a thread does, as a generator of operations, and its scheduling state.

A task program yields ``Run`` (execute a stream: host code, or guest code for a vCPU thread),
``Sleep`` (block for a while), ``UserRdpmc`` (an RDPMC from user space, as a self-monitoring
task does) and ``Kernel`` (kernel code on its CPU, e.g. KVM's exit handling); it receives each
operation's result. vCPU threads are ordinary tasks.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from vpmu.workloads.streams import Stream

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu


class PreemptNotifier(Protocol):
    """Linux's preempt notifiers (what KVM registers on a vCPU thread: kvm_sched_in/out, which
    call vcpu_load/vcpu_put): each returns the kernel cycles it took."""

    def sched_in(self, cpu: Pcpu) -> int:
        """The task is scheduled in on ``cpu``."""
        ...

    def sched_out(self, cpu: Pcpu) -> int:
        """The task is scheduled out of ``cpu``."""
        ...


@dataclass(frozen=True, slots=True)
class Run:
    """Execute ``stream``; its user/kernel split (or the whole, if none) runs in guest mode
    when ``guest`` is set (a vCPU's guest code), else in host mode."""

    stream: Stream
    guest: bool = False


@dataclass(frozen=True, slots=True)
class Sleep:
    """Block for ``duration_ps``; the task is woken by a timer on its CPU."""

    duration_ps: int


@dataclass(frozen=True, slots=True)
class Kernel:
    """Run kernel code on the CPU the task is on: ``fn(cpu)`` is a simulation generator (it
    may do ``cpu.kernel_work`` and call perf's kernel API); its return value is the result.
    Not interruptible: interrupts arriving meanwhile are taken after it. ``in_kvm`` marks the
    hypervisor's work for a vCPU (mode IN_KVM), else it is plain host-kernel work."""

    fn: Callable[[Pcpu], Generator[Any, Any, Any]]
    in_kvm: bool = True


@dataclass(frozen=True, slots=True)
class GuestExit:
    """What a guest ``Run`` returns when a host interrupt stopped it (a VM-exit with reason
    EXTERNAL_INTERRUPT, or EXCEPTION_NMI for a host PMI): the interrupt's kind and the guest
    work left. A guest Run that completes returns None."""

    kind: str
    """The host interrupt's kind ("pmi", "tick", ...): the trap layer names the exit."""
    rest: Stream | None


@dataclass(frozen=True, slots=True)
class GuestInsn:
    """One guest instruction the hypervisor does not intercept (a passed-through PMU MSR or
    RDPMC): ``fn(cpu)`` executes it on the hardware in guest mode at ``cpl``. Not
    interruptible; if an interrupt arrived meanwhile the result is a ``GuestInsnDone`` whose
    ``exit`` says so, and the vCPU must exit before running more guest code."""

    fn: Callable[[Pcpu], Generator[Any, Any, Any]]
    cpl: int = 0


@dataclass(frozen=True, slots=True)
class GuestInsnDone:
    """What a ``GuestInsn`` returns: the instruction's value, and the VM-exit an interrupt
    that arrived meanwhile forces (None if none did)."""

    value: Any
    exit: GuestExit | None = None


@dataclass(frozen=True, slots=True)
class UserRdpmc:
    """RDPMC from user space (CPL 3): allowed only while CR4.PCE is set for this task."""

    ecx: int


TaskOp: TypeAlias = Run | Sleep | UserRdpmc | Kernel | GuestInsn
"""Every operation a task program may yield."""

TaskProgram: TypeAlias = Callable[[], Generator[TaskOp, Any, Any]]
"""A task program: a generator function taking no arguments."""


class TaskState(enum.Enum):
    """Where a task is in its life."""

    RUNNABLE = "runnable"
    SLEEPING = "sleeping"
    DEAD = "dead"


@dataclass(eq=False)
class Task:
    """One host thread: its program, affinity, scheduling state and accounting."""

    name: str
    program: TaskProgram
    affinity: frozenset[int] | None = None
    """CPUs it may run on; None: any."""
    priority: int = 0
    """Higher runs first on wake-up (a simplified nice: a woken task with a higher priority
    preempts the running one)."""
    rdpmc: bool = False
    """Its mm allows user RDPMC (it mmap'd a perf event with cap_user_rdpmc): CR4.PCE is set
    while it runs and perf clears dirty counters on the switch to it."""
    clear_dirty: bool | None = None
    """Override of perf's clear_dirty_counters for switches to this task (None: the host's);
    lets one scenario compare an RDPMC reader with and without perf_clear_dirty_counters."""
    pid: int = 0
    state: TaskState = TaskState.RUNNABLE
    cpu: int = -1
    """The CPU it runs on or was queued on last."""
    pending: Stream | None = None
    """What is left of the stream of its current Run."""
    guest: bool = False
    """The current Run is guest code."""
    runtime_ps: int = 0
    """Time it has been current on a CPU (including interrupts handled meanwhile)."""
    sleeps: int = 0
    """Sleeps begun so far (a sleep's timer wakes only the sleep it was set for)."""
    slice_ticks: int = 0
    """Ticks taken since it was last switched in."""
    notifiers: list[PreemptNotifier] = field(default_factory=list)
    """Called on every switch to and from this task (preempt_notifier_register)."""
    truth: dict[tuple[str, str], int] = field(default_factory=dict)
    """Ground truth of its own work: event totals executed, by (mode value, event key)."""
    result: Any = None
    """The value the program's generator finished with."""
    exit_ps: int | None = None
    """When its program finished (None while it runs): a guest's completion time."""
    _gen: Generator[TaskOp, Any, Any] | None = field(default=None, repr=False)
    _send: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, pid={self.pid})"

    def next_op(self) -> TaskOp | None:
        """Advance the program with the last result; None when it has finished."""
        if self._gen is None:
            self._gen = self.program()
        try:
            op = self._gen.send(self._send)
        except StopIteration as stop:
            self.result = stop.value
            return None
        self._send = None
        if not isinstance(op, Run | Sleep | UserRdpmc | Kernel | GuestInsn):
            raise TypeError(f"task {self.name!r} must yield Run, Sleep, UserRdpmc, Kernel or "
                            f"GuestInsn, not {op!r}")
        return op

    def give(self, value: Any) -> None:
        """The result of the operation just done, sent to the program next."""
        self._send = value

    def allowed_on(self, cpu: int) -> bool:
        """Its affinity includes ``cpu``."""
        return self.affinity is None or cpu in self.affinity
