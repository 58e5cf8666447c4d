"""The scheduler: per-CPU run queues, time slices on the tick, wake-up placement and preemption.

A simplified CFS with the properties the vPMU questions depend on, each a documented
assumption: round-robin among runnable tasks of a CPU, a task runs until it blocks, exits, or
its slice is used up at a tick with others waiting; a woken task goes to its last CPU if allowed,
else to the least loaded allowed CPU (lowest index on ties), and preempts the running task
only if its priority is higher. On a host whose clusters' PMUs differ (big.LITTLE), the
tick also balances: see ``Scheduler.balance``; elsewhere a task moves only when it wakes.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from vpmu.host.task import Task, TaskState
from vpmu.trace.records import TaskMigrate

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.machine import Host


class Scheduler:
    """Run queues and the decisions of __schedule(), scheduler_tick() and try_to_wake_up()."""

    def __init__(self, host: Host, *, slice_ticks: int) -> None:
        self.host = host
        self.slice_ticks = slice_ticks
        """Ticks a task runs before one may preempt it in favour of a waiting task."""
        self.rq: dict[int, deque[Task]] = {}
        """Runnable tasks waiting for each CPU (the running one is not in its queue)."""
        self.tasks: list[Task] = []
        """Every task ever spawned, in pid order."""
        presets = {cl.preset.name for cl in host.host_preset.clusters}
        self.balance: bool = len(presets) > 1
        """Idle balancing at the tick (``_balance``): on by default only on a host whose
        clusters' PMUs differ, so homogeneous hosts (every x86 preset) keep the old rule."""

    def __repr__(self) -> str:
        return f"Scheduler(slice_ticks={self.slice_ticks})"

    def spawn(self, task: Task) -> Task:
        """Give the task a pid and make it runnable on a CPU it is allowed on."""
        task.pid = len(self.tasks) + 1
        self.tasks.append(task)
        self._enqueue(task, self._place(task))
        return task

    def pick(self, cpu: Pcpu) -> Task | None:
        """The task ``cpu`` runs next: the current one unless it stopped or must yield."""
        cur, queue = cpu.current, self.rq.setdefault(cpu.index, deque())
        running = cur is not None and cur.state is TaskState.RUNNABLE
        if running and not cpu.need_resched:
            return cur
        if running and cur is not None:
            if not queue:
                cpu.need_resched = False
                return cur
            queue.append(cur)
        return queue.popleft() if queue else None

    def tick(self, cpu: Pcpu) -> None:
        """scheduler_tick(): a task's slice is counted in ticks (as the round-robin class's
        time_slice is); when it is used up and others wait, ask for a reschedule."""
        cur = cpu.current
        if cur is None:
            return
        cur.slice_ticks += 1
        if cur.slice_ticks >= self.slice_ticks and self.rq.get(cpu.index):
            cpu.need_resched = True
        if self.balance and self.rq.get(cpu.index):
            self._balance(cpu)

    def _balance(self, cpu: Pcpu) -> None:
        """The balancing rule (Linux's nohz idle balance kicked from a busy CPU's tick, made
        deterministic): at the tick of a CPU whose run queue holds waiting tasks, each
        waiting task, in queue order, that may run on an idle CPU (nothing current, nothing
        queued) moves to the lowest-index such CPU, whatever its cluster; the running task
        never moves, and a pinned task only within its affinity (one CPU: never)."""
        queue = self.rq[cpu.index]
        for task in list(queue):
            idle = [c.index for c in self.host.cpus if c.current is None
                    and not self.rq.get(c.index) and task.allowed_on(c.index)]
            if idle:
                queue.remove(task)
                self._enqueue(task, idle[0])

    def sleep(self, cpu: Pcpu, task: Task, duration_ps: int) -> None:
        """The task blocks; a timer on its CPU wakes it after ``duration_ps``."""
        task.state = TaskState.SLEEPING
        task.sleeps += 1
        nth = task.sleeps
        self.host.env.schedule(lambda: self._timeout(task, nth), delay_ps=duration_ps)

    def _timeout(self, task: Task, nth: int) -> None:
        """A sleep's timer: wakes the task unless something woke it from that sleep first."""
        if task.sleeps == nth:
            self.wake(task)

    def exit(self, cpu: Pcpu, task: Task) -> None:
        """The task's program finished."""
        task.state = TaskState.DEAD
        task.exit_ps = self.host.env.now_ps

    def wake(self, task: Task) -> None:
        """try_to_wake_up(): queue the task and kick its CPU if it should run now."""
        if task.state is not TaskState.SLEEPING:
            return
        task.state = TaskState.RUNNABLE
        cpu = self._place(task)
        self._enqueue(task, cpu)

    def _enqueue(self, task: Task, index: int) -> None:
        if 0 <= task.cpu != index:
            cpus = self.host.cpus
            self.host.trace.emit(TaskMigrate(self.host.env.now_ps, index, task.name, task.cpu,
                                             cpus[task.cpu].cluster, cpus[index].cluster))
        task.cpu = index
        self.rq.setdefault(index, deque()).append(task)
        cpu = self.host.cpus[index]
        if cpu.current is None:
            cpu.interrupt("resched")
        elif task.priority > cpu.current.priority:
            cpu.need_resched = True
            cpu.interrupt("resched")

    def _place(self, task: Task) -> int:
        allowed = [c.index for c in self.host.cpus if task.allowed_on(c.index)]
        if not allowed:
            raise ValueError(f"task {task.name!r} affinity must name a CPU of the host "
                             f"(0..{len(self.host.cpus) - 1}), not {sorted(task.affinity or ())}")
        if task.cpu in allowed:
            return task.cpu
        return min(allowed, key=lambda i: (self._load(i), i))

    def _load(self, index: int) -> int:
        busy = self.host.cpus[index].current is not None
        return len(self.rq.get(index, ())) + int(busy)
