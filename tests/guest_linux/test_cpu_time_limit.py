"""perf_cpu_time_max_percent in the guest (perf_sample_event_took after each PMU interrupt),
the sysctls' order, PERF_RECORD_THROTTLE / UNTHROTTLE, and the mux hrtimer's interval."""

from __future__ import annotations

import tomllib

import pytest

from vpmu.arch.presets import get_preset
from vpmu.guest.linux import PerfRecord, PerfStat, RunResult
from vpmu.machine.vm import run_until_done
from vpmu.scenario.run import build
from vpmu.scenario.schema import Scenario
from vpmu.sim import PS_PER_S

from .recording import name, run_tool

PS_PER_MS = PS_PER_S // 1000
STORM = """\
duration_ms = 4
[host]
preset = "intel-icx"
[[vm]]
pin = [0]
design = "emulated:is_paused=false"
[[vm.guest]]
tool = "perf-record"
events = ["branches", "branch-misses", "cache-references", "cache-misses", "r00c4", "r00c5",
          "r412e", "r4f2e", "cycles", "instructions"]
freq = 20000
perf_cpu_time_max_percent = {percent}
"""
"""Ten events at -F 20000 in a VM whose PMIs take tens of µs (each MSR access an exit): at
the kernel's 100,000 samples/s they would need several times the whole CPU."""
STORM_LIMIT_MS = 40
"""Ten times the work asked: the guest with the CPU-time limit finishes well within it."""


def _storm(percent: int) -> tuple[bool, RunResult | None]:
    """Run STORM until its guest finishes or STORM_LIMIT_MS: (finished, its perf record)."""
    scenario = Scenario.model_validate(tomllib.loads(STORM.format(percent=percent)))
    outcome = build(scenario)
    outcome.host.run(4 * PS_PER_MS)
    done = run_until_done(outcome.host, outcome.vms, limit_ps=STORM_LIMIT_MS * PS_PER_MS)
    result = outcome.vms[0].vcpus[0].task.result
    return done, result[0] if isinstance(result, list) else None


def test_many_events_at_high_frequency_throttle_instead_of_livelocking() -> None:
    """With the default 25% the guest kernel lowers perf_event_max_sample_rate step by step
    ("perf: interrupt took too long ...") to a few samples per tick and the run finishes;
    with the limit off (0) the PMI handlers take the vCPU and the work is not done in ten
    times its length."""
    done, record = _storm(25)
    assert done and record is not None
    assert len(record.rate_lowerings) >= 5
    rates = [low.max_sample_rate for low in record.rate_lowerings]
    assert rates == sorted(rates, reverse=True)
    assert record.max_sample_rate == rates[-1] <= 10_000
    assert all(low.avg_ns > low.allowed_ns for low in record.rate_lowerings)
    assert record.rate_lowerings[0].message.startswith("perf: interrupt took too long (")
    assert sum(e.throttles for e in record.events) > 0
    assert _storm(0) == (False, None)


def test_sample_rate_is_written_before_the_limit_is_turned_off() -> None:
    """Seed 001's order: the rate (10000) is accepted while the limit is on, then
    perf_cpu_time_max_percent = 0 turns the limit off; nothing lowers the rate after."""
    tool = PerfRecord(["instructions"], period=2000, max_sample_rate=10_000)
    run = run_tool("intel-icx", tool, ms=5, perf_cpu_time_max_percent=0)
    (result,) = run.results
    assert (result.max_sample_rate, result.rate_lowerings) == (10_000, ())


def test_each_throttle_is_undone_at_the_next_tick() -> None:
    """-c 2000: throttled in every tick (PERF_RECORD_THROTTLE), restarted by the next one
    (PERF_RECORD_UNTHROTTLE); the last throttle may outlive the run."""
    tool = PerfRecord(["instructions"], period=2000, max_sample_rate=10_000)
    (event,) = run_tool("intel-icx", tool, ms=10, perf_cpu_time_max_percent=0).results[0].events
    assert event.throttles >= 9
    assert event.unthrottles in (event.throttles - 1, event.throttles)


MUX_EVENTS = ["branches:u", "branch-misses:u", "cache-references:u", "cache-misses:u",
              "r81d0:u", "r82d0:u"]
"""Six GP-only events on 4 GP counters: rotation is necessary throughout."""


def _rotations(mux_interval_ms: int | None, ms: int) -> tuple[int, list[float]]:
    """Ticks that rotated (19 register accesses: tests/guest_linux/test_multiplex_throttle),
    and each event's running fraction."""
    preset = get_preset("intel-icx").with_caps(n_gp=4)
    run = run_tool(preset, PerfStat(MUX_EVENTS), ms=ms, phase="compute",
                   mux_interval_ms=mux_interval_ms)
    rotations = sum(1 for t in run.rec.handler_runs("tick")
                    if len([name(a.op) for a in t]) == 19)
    return rotations, [float(e.running_fraction) for e in run.results[0].events]


def test_mux_interval_sets_how_often_the_context_rotates() -> None:
    """The default interval is one tick (PERF_CPU_HRTIMER = 1000 / HZ ms): a rotation at
    each of 24 ticks; 4 ms rotates at every fourth, and each event still runs 2/3."""
    assert _rotations(None, 24)[0] == 24
    rotations, fractions = _rotations(4, 24)
    assert rotations == 6
    assert fractions == pytest.approx([2 / 3] * 6, abs=0.01)
