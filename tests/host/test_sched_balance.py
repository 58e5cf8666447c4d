"""Idle balancing at the tick (docs/host.md, "The scheduler"): a task waiting on a busy CPU
moves to the lowest-index idle CPU it may run on, across clusters; pinned tasks never move;
on by default only where the clusters' PMUs differ."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from vpmu.arch.presets import HOST_PRESETS
from vpmu.host.machine import Host
from vpmu.host.task import Run, Sleep, Task
from vpmu.sim import ms
from vpmu.trace.records import TaskMigrate
from vpmu.workloads import get_phase

CHUNK = get_phase("compute").stream(instructions=1_000_000)


def _forever() -> Generator[Run, Any, None]:
    while True:
        yield Run(CHUNK)


def _late(start_ps: int) -> Any:
    def program() -> Generator[Run | Sleep, Any, None]:
        yield Sleep(start_ps)
        while True:
            yield Run(CHUNK)
    return program


def _migrations(host: Host) -> list[TaskMigrate]:
    return [r for r in host.trace.records if isinstance(r, TaskMigrate)]


def test_balancing_is_on_only_where_the_clusters_pmus_differ() -> None:
    assert Host(HOST_PRESETS["rk3399"]).sched.balance
    assert not Host("intel-icx", cpus=4).sched.balance
    assert not Host("arm-a72", cpus=4, clusters=[[0, 1], [2, 3]]).sched.balance


def test_a_waiting_task_moves_to_an_idle_cpu_of_the_other_cluster() -> None:
    """Four free tasks fill the A53s; a task pinned to CPU 0 wakes at 5 ms; the free task
    it makes wait moves to CPU 4 (the first idle CPU, an A72) at a tick, once."""
    host = Host(HOST_PRESETS["rk3399"])
    free = [host.spawn(Task(f"f{i}", _forever)) for i in range(4)]
    pinned = host.spawn(Task("pinned", _late(ms(5)), affinity=frozenset({0})))
    host.run(ms(30))
    moves = _migrations(host)
    assert [(m.task, m.src, m.cpu, m.src_cluster, m.cluster) for m in moves] == \
        [("f0", 0, 4, 0, 1)]
    assert moves[0].t_ps % host.tick_ps == 0  # at a tick
    assert free[0].cpu == 4 and pinned.cpu == 0
    assert [t.cpu for t in free[1:]] == [1, 2, 3]


def test_pinned_tasks_never_move() -> None:
    """Two tasks pinned to one CPU share it while four CPUs idle."""
    host = Host(HOST_PRESETS["rk3399"])
    tasks = [host.spawn(Task(f"p{i}", _forever, affinity=frozenset({1}))) for i in range(2)]
    host.run(ms(30))
    assert _migrations(host) == []
    assert all(t.cpu == 1 for t in tasks)
    assert all(t.runtime_ps > ms(10) for t in tasks)


def test_affinity_bounds_the_move() -> None:
    """A task allowed on CPUs 0 and 5 moves to 5, never to the idle 1-4 it may not use."""
    host = Host(HOST_PRESETS["rk3399"])
    t = host.spawn(Task("t", _forever, affinity=frozenset({0, 5})))
    host.spawn(Task("p", _forever, affinity=frozenset({0})))
    host.run(ms(20))
    assert [(m.src, m.cpu) for m in _migrations(host)] == [(0, 5)]
    assert t.cpu == 5


def test_off_keeps_the_old_rule() -> None:
    """With balancing off, the waiting task stays and shares its CPU."""
    host = Host(HOST_PRESETS["rk3399"])
    host.sched.balance = False
    t = host.spawn(Task("t", _forever, affinity=frozenset({0, 5})))
    p = host.spawn(Task("p", _forever, affinity=frozenset({0})))
    host.run(ms(20))
    assert _migrations(host) == [] and t.cpu == 0
    assert t.runtime_ps > ms(5) and p.runtime_ps > ms(5)
