"""The host scheduler, interrupts and topology: fairness, affinity, wake-up, IPIs, hooks."""

import itertools

import pytest

from vpmu.host.cpu import Pcpu
from vpmu.host.machine import Host
from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.task import Run, Sleep, Task
from vpmu.sim import ms, ns, us
from vpmu.trace import ContextSwitch, Interrupt
from vpmu.workloads import get_phase

CHUNK = get_phase("compute").stream(instructions=1_000_000)


def _forever():  # type: ignore[no-untyped-def]
    while True:
        yield Run(CHUNK)


def test_round_robin_shares_a_cpu_fairly() -> None:
    """Three busy tasks on one CPU get a third of it each, switching on the tick."""
    host = Host("intel-icx", cpus=1)
    tasks = [host.spawn(Task(f"t{i}", _forever)) for i in range(3)]
    host.run(ms(120))
    shares = [t.runtime_ps / ms(120) for t in tasks]
    assert all(s == pytest.approx(1 / 3, abs=0.02) for s in shares)
    switches = host.trace.of(ContextSwitch)
    assert 25 <= len(switches) <= 35  # one per 4 ms tick


def test_affinity_is_respected_and_placement_balances() -> None:
    """Tasks stay on the CPUs they may use; unpinned tasks spread over idle CPUs."""
    host = Host("intel-icx", cpus=4)
    pinned = host.spawn(Task("pinned", _forever, affinity=frozenset({3})))
    free = [host.spawn(Task(f"f{i}", _forever)) for i in range(3)]
    host.run(ms(20))
    assert pinned.cpu == 3
    assert sorted(t.cpu for t in free) == [0, 1, 2]
    with pytest.raises(ValueError, match="affinity must name a CPU"):
        host.spawn(Task("bad", _forever, affinity=frozenset({9})))


def test_sleep_and_wake_up_on_an_idle_cpu() -> None:
    """A sleeping task is woken by its timer and runs again at once on an idle CPU."""
    host = Host("intel-icx", cpus=1)
    wakes: list[int] = []

    def sleeper():  # type: ignore[no-untyped-def]
        for _ in range(3):
            yield Sleep(ms(2))
            wakes.append(host.env.now_ps)
    host.spawn(Task("s", sleeper))
    host.run(ms(20))
    assert len(wakes) == 3
    gaps = [b - a for a, b in itertools.pairwise(wakes)]
    # 2 ms of sleep plus the wake-up interrupt and the context switches (a few µs).
    assert all(ms(2) < g < ms(2) + us(20) for g in gaps)


def test_higher_priority_wake_up_preempts() -> None:
    """A woken task with a higher priority preempts the running one before the tick."""
    host = Host("intel-icx", cpus=1, tick_hz=100)
    ran: list[int] = []

    def urgent():  # type: ignore[no-untyped-def]
        yield Sleep(us(500))
        ran.append(host.env.now_ps)
    host.spawn(Task("urgent", urgent, priority=1))  # runs first, then sleeps 500 µs
    host.spawn(Task("busy", _forever))
    host.run(ms(5))
    assert ran and ran[0] < us(520)


def test_ipi_arrives_after_its_latency_and_runs_its_function() -> None:
    """A function-call IPI runs on the target CPU after the IPI latency."""
    host = Host("intel-icx", cpus=2)
    host.spawn(Task("busy", _forever, affinity=frozenset({1})))
    seen: list[tuple[int, int]] = []

    def fn(cpu: Pcpu) -> int:
        seen.append((cpu.index, host.env.now_ps))
        return 100
    host.env.schedule(lambda: host.send_ipi(1, fn), delay_ps=us(10))
    host.run(ms(1))
    # The handler's function runs as the IPI is taken (its cost is paid after).
    assert seen == [(1, us(10) + ns(host.costs.ipi_latency_ns))]
    assert any(r.kind == "ipi" for r in host.trace.of(Interrupt))  # type: ignore[attr-defined]


def test_preempt_notifiers_see_every_switch() -> None:
    """A task's preempt notifiers are called on each sched-in and sched-out (KVM's hooks)."""
    host = Host("intel-icx", cpus=1)
    log: list[str] = []

    class Notifier:
        def sched_in(self, cpu: Pcpu) -> int:
            log.append("in")
            return 500

        def sched_out(self, cpu: Pcpu) -> int:
            log.append("out")
            return 500
    vcpu = Task("vcpu", _forever, notifiers=[Notifier()])
    host.spawn(vcpu)
    host.spawn(Task("other", _forever))
    host.run(ms(20))
    assert log[:3] == ["in", "out", "in"]
    assert abs(log.count("in") - log.count("out")) <= 1


def test_scheduling_order_cpu_pinned_task_pinned_cpu_flexible_task_flexible() -> None:
    """With counters for only some, perf fills them in the kernel's order."""
    host = Host("intel-skl", cpus=1)  # 4 GP counters
    perf = PerfSubsystem(host)
    task = host.spawn(Task("t", _forever))

    def gp(**kw: object) -> PerfEventAttr:
        return PerfEventAttr(type=4, config=0xC4, **kw)  # type: ignore[arg-type]
    task_flex = perf.open(gp(), task=task)
    cpu_flex = perf.open(gp(), cpu=0)
    task_pinned = perf.open(gp(pinned=True), task=task)
    cpu_pinned = [perf.open(gp(pinned=True), cpu=0) for _ in range(2)]
    host.run(ms(2))
    on = {e.id for e in perf.drivers[0].events.values()}
    assert {e.id for e in cpu_pinned} | {task_pinned.id, cpu_flex.id} == on
    assert task_flex.id not in on


def test_clusters_must_partition_the_cpus() -> None:
    """A cluster layout is checked: every CPU in exactly one cluster."""
    host = Host("intel-icx", cpus=4, clusters=[[0, 1], [2, 3]])
    assert [c.cluster for c in host.cpus] == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="clusters must partition"):
        Host("intel-icx", cpus=4, clusters=[[0, 1], [1, 2, 3]])


def test_guest_run_exits_on_host_interrupts_and_kernel_ops_run_in_kvm_mode() -> None:
    """A host tick stops a guest Run (EXTERNAL_INTERRUPT, the rest returned); Kernel code
    runs in IN_KVM mode and its return value comes back to the task."""
    from vpmu.host.task import GuestExit, Kernel

    host = Host("intel-icx", cpus=1)
    exits: list[GuestExit] = []
    results: list[int] = []

    def kvm_work(cpu: Pcpu):  # type: ignore[no-untyped-def]
        yield from cpu.kernel_work(2_000, "handle exit")
        return cpu.index + 41

    def vcpu():  # type: ignore[no-untyped-def]
        stream = get_phase("compute").stream(instructions=50_000_000)  # ~8.7 ms
        while stream is not None:
            exit_ = yield Run(stream, guest=True)
            if exit_ is None:
                break
            exits.append(exit_)
            results.append((yield Kernel(kvm_work)))
            stream = exit_.rest
    host.spawn(Task("vcpu", vcpu))
    host.run(ms(20))
    assert [e.kind for e in exits] == ["tick", "tick"]  # the trap layer names the exit
    assert results == [41, 41]
    modes = [r.mode for r in host.trace.records if r.__class__.__name__ == "ModeChange"]
    assert "in-kvm" in modes and "guest-user" in modes
