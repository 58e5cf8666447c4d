"""perf stat against the workload's ground truth: exact without multiplexing, scaled with it."""

import pytest

from vpmu.arch.x86 import events as ev
from vpmu.host.machine import Host
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.task import Run, Task
from vpmu.host.tools import PerfStat, nmi_watchdog
from vpmu.sim import ms
from vpmu.workloads import get_phase

SIX_GP_EVENTS = {  # perf spec -> the ground-truth key it counts (all GP-only on Intel)
    "branches:u": ev.BRANCHES, "branch-misses:u": ev.BRANCH_MISSES,
    "cache-references:u": ev.LLC_REFERENCES, "cache-misses:u": ev.LLC_MISSES,
    "r81d0:u": ev.LOADS, "r82d0:u": ev.STORES,
}


def _steady(preset: str, cpus: int = 1) -> tuple[Host, PerfSubsystem, Task]:
    """A host running one task in a steady compute phase, forever."""
    host = Host(preset, cpus=cpus)
    perf = PerfSubsystem(host)
    chunk = get_phase("compute").stream(instructions=1_000_000)

    def worker():  # type: ignore[no-untyped-def]
        while True:
            yield Run(chunk)
    task = host.spawn(Task("worker", worker, affinity=frozenset({0})))
    return host, perf, task


def _truth(task: Task, key: str) -> int:
    return task.truth.get(("host-user", key), 0)


@pytest.mark.parametrize("preset", ["intel-skl", "intel-icx", "amd-zen4"])
def test_perf_stat_without_multiplexing_is_within_1_percent(preset: str) -> None:
    """Three events that fit the counters count their task's user work within 1%."""
    host, perf, task = _steady(preset)
    stat = PerfStat(perf, ["instructions:u", "cycles:u", "branches:u"], task=task)
    host.run(ms(300))
    keys = {"instructions:u": ev.INSTRUCTIONS, "cycles:u": ev.CYCLES, "branches:u": ev.BRANCHES}
    for row in stat.rows():
        assert row.running_fraction == 1.0
        truth = _truth(task, keys[row.event])
        assert truth > 0
        assert row.count == pytest.approx(truth, rel=0.01), row


def test_six_events_on_four_gp_counters_multiplex_and_scale() -> None:
    """skl has 4 GP counters: 6 GP events each run ~4/6 of the time; scaled within 2%."""
    host, perf, task = _steady("intel-skl")
    stat = PerfStat(perf, list(SIX_GP_EVENTS), cpus=[0])
    host.run(ms(600))
    for row in stat.rows():
        assert row.running_fraction == pytest.approx(4 / 6, abs=0.02), row
        assert row.time_enabled_ps == ms(600)
        truth = _truth(task, SIX_GP_EVENTS[row.event])
        assert row.scaled == pytest.approx(truth, rel=0.02), row
        assert row.count < 0.7 * truth  # the raw count alone misses a third


def test_perf_stat_output_shows_the_running_percentage() -> None:
    """The printed table scales counts and shows (NN.NN%) for multiplexed events only."""
    host, perf, _ = _steady("intel-skl")
    stat = PerfStat(perf, list(SIX_GP_EVENTS), cpus=[0])
    host.run(ms(100))
    text = stat.format()
    assert "branches:u  (6" in text
    assert text.count("%)") == 6


def test_watchdog_does_not_disturb_gp_multiplexing_on_intel() -> None:
    """The NMI watchdog's cycles event sits on fixed counter 1, not on a GP counter."""
    host, perf, _ = _steady("intel-skl")
    wd = nmi_watchdog(perf)
    stat = PerfStat(perf, list(SIX_GP_EVENTS)[:4], cpus=[0])
    host.run(ms(50))
    assert wd[0].hw_idx == 33
    assert all(r.running_fraction == 1.0 for r in stat.rows())
