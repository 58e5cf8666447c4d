"""perf semantics per mode, pinned errors, RDPMC dirty counters, sampling, kernel API."""

from fractions import Fraction

import pytest

from vpmu.arch.x86 import events as ev
from vpmu.host.machine import Host
from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.event import EventState
from vpmu.host.perf.kapi import KernelCounterApi
from vpmu.host.task import Run, Sleep, Task
from vpmu.host.tools import PerfRecord, PerfStat, rdpmc_reader
from vpmu.sim import ms, us
from vpmu.trace import ContextSwitch, CounterRead, PerfCall, PerfSample
from vpmu.workloads import Stream, get_phase

INSTR = 1  # PERF_COUNT_HW_INSTRUCTIONS


def _once(stream: Stream):  # type: ignore[no-untyped-def]
    """A task program that runs one stream."""
    def program():  # type: ignore[no-untyped-def]
        yield Run(stream)
    return program


def _host(preset: str = "intel-icx", cpus: int = 1, **kw: object) -> tuple[Host, PerfSubsystem]:
    host = Host(preset, cpus=cpus)
    return host, PerfSubsystem(host, **kw)  # type: ignore[arg-type]


def _mixed_task() -> Task:
    """Alternates host user/kernel work (a 1/2 split) with guest work (a 1/4 split)."""
    host_chunk = Stream("host", {ev.CYCLES: 100_000, ev.INSTRUCTIONS: 200_000}, Fraction(1, 2))
    guest_chunk = Stream("guest", {ev.CYCLES: 100_000, ev.INSTRUCTIONS: 400_000},
                         Fraction(1, 4))

    def program():  # type: ignore[no-untyped-def]
        for _ in range(50):
            yield Run(host_chunk)
            exit_ = yield Run(guest_chunk, guest=True)
            while exit_ is not None and exit_.rest is not None:  # re-enter after a VM-exit
                exit_ = yield Run(exit_.rest, guest=True)
    return Task("vcpu-like", program, affinity=frozenset({0}))


@pytest.mark.parametrize("preset", ["intel-icx", "amd-zen4"])
def test_exclude_bits_follow_the_mode(preset: str) -> None:
    """exclude_user/kernel/guest/host select exactly the truth of the modes they keep."""
    host, perf = _host(preset)
    task = host.spawn(_mixed_task())
    cases = {
        "all": {}, "user": {"exclude_kernel": True}, "kernel": {"exclude_user": True},
        "host": {"exclude_guest": True}, "guest": {"exclude_host": True},
        "guest-user": {"exclude_host": True, "exclude_kernel": True},
    }
    evs = {n: perf.open(PerfEventAttr(config=INSTR, **kw), task=task)  # type: ignore[arg-type]
           for n, kw in cases.items()}
    host.run(ms(200))
    truth = {mode: task.truth.get((mode, ev.INSTRUCTIONS), 0)
             for mode in ("host-user", "host-kernel", "guest-user", "guest-kernel")}
    assert truth["guest-user"] == 50 * 100_000 and truth["host-kernel"] == 50 * 100_000
    kernel_overhead = {n: perf.read(e)[0] for n, e in evs.items()}
    # Context switches and ticks add host-kernel instructions while the task is current.
    extra = kernel_overhead["kernel"] - truth["host-kernel"] - truth["guest-kernel"]
    assert 0 <= extra < 0.01 * kernel_overhead["kernel"]
    assert kernel_overhead["user"] == truth["host-user"] + truth["guest-user"]
    assert kernel_overhead["guest"] == truth["guest-user"] + truth["guest-kernel"]
    assert kernel_overhead["guest-user"] == truth["guest-user"]
    assert kernel_overhead["host"] == truth["host-user"] + truth["host-kernel"] + extra
    assert kernel_overhead["all"] == sum(truth.values()) + extra


def test_pinned_event_that_cannot_fit_goes_to_error_state() -> None:
    """skl has 4 GP counters: a 5th pinned GP event is in ERROR and never counts."""
    host, perf = _host("intel-skl")
    host.spawn(Task("w", _once(get_phase("compute").stream(instructions=10**8))))
    pinned = [perf.open(PerfEventAttr(type=4, config=0xC4, pinned=True), cpu=0)
              for _ in range(5)]
    flexible = perf.open(PerfEventAttr(type=4, config=0xC5), cpu=0)
    host.run(ms(20))
    assert [e.state for e in pinned[:4]] == [EventState.ACTIVE] * 4
    assert pinned[4].state is EventState.ERROR
    assert perf.read(pinned[4])[0] == 0
    assert perf.read(flexible)[2] == 0  # every GP counter is pinned: it never runs
    perf.set_enabled(pinned[0], False)
    host.run(ms(30))
    assert perf.read(flexible)[2] > 0 and pinned[4].state is EventState.ERROR


def _dirty_scenario(clear: bool, assigned: bool) -> list[int]:
    """Task A counts its instructions on a GP counter, then an RDPMC task reads GP 0..3."""
    host, perf = _host("intel-skl", clear_dirty_counters=clear)
    chunk = get_phase("compute").stream(instructions=5_000_000)

    def a_prog():  # type: ignore[no-untyped-def]
        yield Run(chunk)
    a = host.spawn(Task("A", a_prog, affinity=frozenset({0})))
    perf.open(PerfEventAttr(type=4, config=0xC4, exclude_kernel=True), task=a)  # branches: GP
    if assigned:
        perf.open(PerfEventAttr(type=4, config=0xC5), cpu=0)  # a CPU event stays assigned
    reader = host.spawn(rdpmc_reader("reader", [0, 1, 2, 3], interval_ps=us(100), rounds=1,
                                     affinity=frozenset({0})))
    host.run(ms(50))
    assert reader.result is not None
    return [r.value for r in host.trace.of(CounterRead)]  # type: ignore[attr-defined]


def test_rdpmc_task_does_not_see_another_tasks_counter_after_dirty_clearing() -> None:
    """With perf_clear_dirty_counters the RDPMC task reads 0 where task A's event was."""
    assert _dirty_scenario(clear=True, assigned=False) == [0, 0, 0, 0]


def test_without_dirty_clearing_the_value_leaks() -> None:
    """Before 5.15 (no clearing) the RDPMC task reads task A's leftover branch count."""
    values = _dirty_scenario(clear=False, assigned=False)
    assert any(v > 0 for v in values)


def test_assigned_counters_are_not_cleared() -> None:
    """A CPU-wide event assigned to a counter stays readable by the RDPMC task."""
    values = _dirty_scenario(clear=True, assigned=True)
    assert sorted(v > 0 for v in values) == [False, False, False, True]


def test_sampling_period_gives_one_sample_per_period() -> None:
    """-c 1,000,000 on instructions:u over 50M user instructions gives 50 samples."""
    host, perf = _host()
    task = host.spawn(Task("w", _once(get_phase("compute").stream(
        instructions=50_000_000)), affinity=frozenset({0})))
    rec = PerfRecord(perf, ["instructions:u"], period=1_000_000, task=task)
    host.run(ms(100))
    assert rec.samples()["instructions:u"] == 50
    samples = host.trace.of(PerfSample)
    assert {s.mode for s in samples} == {"host-user"}  # type: ignore[attr-defined]


def test_frequency_mode_converges_to_the_target_rate() -> None:
    """-F 1000 on a steady task settles near 1000 samples per second."""
    host, perf = _host()
    chunk = get_phase("compute").stream(instructions=1_000_000)

    def worker():  # type: ignore[no-untyped-def]
        while True:
            yield Run(chunk)
    task = host.spawn(Task("w", worker, affinity=frozenset({0})))
    rec = PerfRecord(perf, ["cycles:u"], freq=1000, task=task)
    host.run(ms(1000))
    before = rec.samples()["cycles:u"]
    host.run(ms(2000))
    assert (rec.samples()["cycles:u"] - before) == pytest.approx(1000, rel=0.1)


def test_throttling_caps_samples_per_tick() -> None:
    """A period of 1,000 instructions would overflow ~5,750 times a tick: throttled at 400."""
    host, perf = _host()
    task = host.spawn(Task("w", _once(get_phase("compute").stream(
        instructions=100_000_000)), affinity=frozenset({0})))
    rec = PerfRecord(perf, ["instructions:u"], period=1_000, task=task)
    host.run(ms(40))  # 10 ticks of 4 ms
    n = rec.samples()["instructions:u"]
    assert n <= 11 * (perf.max_samples_per_tick + 1)
    assert n >= 5 * perf.max_samples_per_tick


def test_kernel_counter_api_calls_cost_and_trace() -> None:
    """Every kernel-counter API call emits a PerfCall with its cost; pause resets the count."""
    host, perf = _host()
    api = KernelCounterApi(perf)
    got: dict[str, object] = {}

    def driver():  # type: ignore[no-untyped-def]
        cpu = host.cpus[0]
        attr = PerfEventAttr(config=INSTR, pinned=True, sample_period=10**9)
        evt = yield from api.create_kernel_counter(cpu, attr, cpu=0)
        yield host.env.timeout(ms(1))
        got["count"] = yield from api.pause(cpu, evt)
        got["after"] = yield from api.read_value(cpu, evt)
        yield from api.period(cpu, evt, 1000)
        yield from api.enable(cpu, evt)
        yield from api.release(cpu, evt)
    host.spawn(Task("w", _once(get_phase("compute").stream(
        instructions=10**8)), affinity=frozenset({0})))
    host.env.process(driver())
    host.run(ms(5))
    calls = host.trace.of(PerfCall)
    assert [c.api for c in calls] == ["create", "pause", "read_value", "period",  # type: ignore[attr-defined]
                                      "enable", "release"]
    costs = host.costs
    pause = next(c for c in calls if c.api == "pause")  # type: ignore[attr-defined]
    assert pause.cost_ps >= host.cycles_ps(costs.perf_ctx_lock_cycles)  # type: ignore[attr-defined]
    read = next(c for c in calls if c.api == "read_value")  # type: ignore[attr-defined]
    assert read.cost_ps == host.cycles_ps(costs.perf_ctx_lock_cycles)  # type: ignore[attr-defined]
    assert isinstance(got["count"], int) and got["count"] > 0
    assert got["after"] == 0


def test_same_seed_same_trace() -> None:
    """Two runs of one scenario produce identical trace records."""
    def run() -> list[object]:
        host, perf = _host("intel-skl", cpus=2)
        for i in range(3):
            def prog(i: int = i):  # type: ignore[no-untyped-def]
                for _ in range(5):
                    yield Run(get_phase("syscall-heavy").stream(instructions=2_000_000))
                    yield Sleep(us(300 + 50 * i))
            host.spawn(Task(f"t{i}", prog))
        PerfStat(perf, ["branches", "cache-misses", "r81d0", "r82d0", "branch-misses"],
                 cpus=[0, 1])
        PerfRecord(perf, ["cycles"], cpus=[0, 1])
        host.run(ms(50))
        return host.trace.records
    first, second = run(), run()
    assert first == second
    assert any(isinstance(r, ContextSwitch) for r in first)
