"""Host perf's arm_pmuv3 driver: one PMU per cluster, events that count only on their PMU's
CPUs, perf stat's per-PMU lines, counter allocation, the PMU interrupt, and exclude_guest /
exclude_host on VHE and nVHE hosts."""

from __future__ import annotations

from collections.abc import Callable, Generator
from fractions import Fraction
from typing import Any

import pytest

from vpmu.arch import events as ev
from vpmu.arch.arm64.caps import CYCLE_IDX
from vpmu.arch.presets import HOST_PRESETS
from vpmu.host.machine import Host
from vpmu.host.perf.arm64.driver import ArmPerfDriver
from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.event import PmuIdentity
from vpmu.host.perf.guest import PerfOpenError
from vpmu.host.task import Run, Task
from vpmu.host.tools import PerfRecord, PerfStat
from vpmu.sim import ms
from vpmu.trace import Interrupt
from vpmu.uapi.perf_event import PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS
from vpmu.workloads import Stream, get_phase

CYCLES, INSTRUCTIONS = PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS
CHUNK = get_phase("compute").stream(instructions=1_000_000)


def _forever(stream: Stream) -> Callable[[], Generator[Run, Any, None]]:
    def program() -> Generator[Run, Any, None]:
        while True:
            yield Run(stream)
    return program


def _rk3399(**kw: Any) -> tuple[Host, PerfSubsystem]:
    host = Host(HOST_PRESETS["rk3399"], **kw)
    return host, PerfSubsystem(host)


def _drv(perf: PerfSubsystem, cpu: int) -> ArmPerfDriver:
    drv = perf.drivers[cpu]
    assert isinstance(drv, ArmPerfDriver)
    return drv


def test_one_pmu_per_cluster_in_registration_order() -> None:
    """RK3399: armv8_cortex_a53 (CPUs 0-3) then armv8_cortex_a72 (4-5), dynamic types."""
    _, perf = _rk3399()
    assert perf.pmus == (PmuIdentity("armv8_cortex_a53", 8, frozenset({0, 1, 2, 3})),
                         PmuIdentity("armv8_cortex_a72", 9, frozenset({4, 5})))
    dyn = Host(HOST_PRESETS["dynamiq-a720-a520"])
    assert [p.name for p in PerfSubsystem(dyn).pmus] == ["armv9_cortex_a720",
                                                          "armv9_cortex_a520"]


def test_an_event_belongs_to_one_pmu_and_counts_only_on_its_cpus() -> None:
    """A task event goes to the first PMU (perf_init_event tries PMUs in order): pinned to a
    big core, its task runs but the event is never scheduled; a CPU event goes to its CPU's
    PMU; naming a PMU for a CPU it does not cover is ENOENT (armpmu_event_init)."""
    host, perf = _rk3399()
    task = host.spawn(Task("big", _forever(CHUNK), affinity=frozenset({4})))
    generic = perf.open(PerfEventAttr(config=CYCLES), task=task)
    on_big = perf.open(PerfEventAttr(config=CYCLES | 9 << 32), task=task)
    cpu4 = perf.open(PerfEventAttr(config=CYCLES), cpu=4)
    host.run(ms(20))
    assert generic.pmu is not None and generic.pmu.name == "armv8_cortex_a53"
    assert perf.read(generic)[0] == 0 and generic.time_running_ps == 0
    assert on_big.pmu is not None and on_big.pmu.name == "armv8_cortex_a72"
    assert cpu4.pmu is not None and cpu4.pmu.name == "armv8_cortex_a72"
    assert perf.read(on_big)[0] > 0 and perf.read(cpu4)[0] == 1800 * 20_000
    with pytest.raises(PerfOpenError, match="ENOENT"):
        perf.open(PerfEventAttr(config=CYCLES | 8 << 32), cpu=4)


def test_perf_stat_prints_one_line_per_core_pmu() -> None:
    """``perf stat -a -e cycles,instructions:u`` on RK3399: one event per core PMU, each
    counting its own cluster's CPUs exactly; a PMU-named event opens on that PMU only; a raw
    event is one line counting every CPU."""
    host, perf = _rk3399()
    tasks = [host.spawn(Task(f"w{c}", _forever(CHUNK), affinity=frozenset({c})))
             for c in (0, 4)]
    stat = PerfStat(perf, ["cycles", "instructions:u", "r11"], cpus=list(range(6)))
    big = PerfStat(perf, ["armv8_cortex_a72/inst_retired/u"], cpus=list(range(6)))
    host.run(ms(50))
    rows = {r.event: r for r in stat.rows()}
    assert list(rows) == ["armv8_cortex_a53/cycles/", "armv8_cortex_a72/cycles/",
                          "armv8_cortex_a53/instructions:u/",
                          "armv8_cortex_a72/instructions:u/", "r11"]
    assert rows["armv8_cortex_a53/cycles/"].count == 1416 * 50_000  # CPU 0 busy throughout
    assert rows["armv8_cortex_a72/cycles/"].count == 1800 * 50_000
    assert rows["r11"].count == (1416 + 1800) * 50_000
    for pmu, task in zip(("armv8_cortex_a53", "armv8_cortex_a72"), tasks, strict=True):
        assert rows[f"{pmu}/instructions:u/"].count == \
            pytest.approx(task.truth[("host-user", ev.INSTRUCTIONS)], rel=0.01)
    assert [len(evs) for evs in stat.events.values()] == [4, 2, 4, 2, 6]
    (row,) = big.rows()
    assert row.event == "armv8_cortex_a72/inst_retired/u"
    assert row.count == rows["armv8_cortex_a72/instructions:u/"].count
    text = stat.format()
    assert "armv8_cortex_a53/cycles/" in text and "armv8_cortex_a72/cycles/" in text


def test_counter_allocation_follows_get_event_idx() -> None:
    """CPU_CYCLES takes the cycle counter, a second one the lowest event counter; a 64-bit
    event on the A53's 32-bit counters takes an odd/even pair (CHAIN on the odd one) and
    counts past 2^32; CHAIN alone cannot be opened."""
    host, perf = _rk3399()
    host.spawn(Task("w", _forever(CHUNK), affinity=frozenset({0})))
    first = perf.open(PerfEventAttr(config=CYCLES), cpu=0)
    second = perf.open(PerfEventAttr(config=CYCLES), cpu=0)
    insns = perf.open(PerfEventAttr(config=INSTRUCTIONS), cpu=0)
    long = perf.open(PerfEventAttr(config=INSTRUCTIONS, config1=1), cpu=0)
    assert (first.hw_idx, second.hw_idx, insns.hw_idx, long.hw_idx) == (CYCLE_IDX, 0, 1, 3)
    pmu = _drv(perf, 0).pmu
    assert pmu.types[3] & 0xFFFF == 0x1E and pmu.types[2] & 0xFFFF == 0x08
    assert pmu.regs["PMCNTENSET_EL0"] == 1 << CYCLE_IDX | 0b1111
    assert pmu.regs["PMINTENSET_EL1"] == 1 << CYCLE_IDX | 0b1011  # not the chain's low half
    host.run(ms(2000))  # about 7e9 instructions: past 2^32 on the pair
    assert perf.read(long)[0] == perf.read(insns)[0] > 1 << 32
    with pytest.raises(ValueError, match="cannot be counted"):
        perf.open(PerfEventAttr(type=4, config=0x1E), cpu=0)


def test_pmcr_e_follows_the_events_and_the_pmi_is_an_irq() -> None:
    """PMCR_EL0.E is set while events are on the PMU; a sampling event's overflow comes as
    the PPI (an IRQ: its entry cost, not an NMI's), the handler clears PMOVSCLR and re-arms."""
    host, perf = _rk3399()
    host.spawn(Task("w", _forever(CHUNK), affinity=frozenset({4})))
    pmu = _drv(perf, 4).pmu
    assert pmu.regs["PMCR_EL0"] & 1 == 0
    record = PerfRecord(perf, ["cycles"], period=1_000_000, cpus=[4])
    assert pmu.regs["PMCR_EL0"] & 1 == 1
    host.run(ms(10))
    assert record.samples() == {"armv8_cortex_a72/cycles/": pytest.approx(18, abs=1)}
    pmis = [r for r in host.trace.records if isinstance(r, Interrupt) and r.kind == "pmi"]
    assert pmis and all(r.cpu == 4 for r in pmis)
    assert pmu.regs["PMOVSSET_EL0"] == 0 and not pmu.irq.level
    for evs in record.events.values():
        for e in evs:
            perf.close(e)
    assert pmu.regs["PMCR_EL0"] & 1 == 0


def _mixed_task(cpu: int) -> Task:
    """Alternates host user/kernel work (a 1/2 split) with guest work (a 1/4 split)."""
    host_chunk = Stream("host", {ev.CYCLES: 100_000, ev.INSTRUCTIONS: 200_000}, Fraction(1, 2))
    guest_chunk = Stream("guest", {ev.CYCLES: 100_000, ev.INSTRUCTIONS: 400_000},
                         Fraction(1, 4))

    def program() -> Generator[Run, Any, None]:
        for _ in range(50):
            yield Run(host_chunk)
            exit_ = yield Run(guest_chunk, guest=True)
            while exit_ is not None and exit_.rest is not None:
                exit_ = yield Run(exit_.rest, guest=True)
    return Task("vcpu-like", program, affinity=frozenset({cpu}))


@pytest.mark.parametrize("vhe", [True, False])
def test_exclude_guest_and_host_on_vhe_and_nvhe(vhe: bool) -> None:
    """exclude_host / exclude_guest select exactly the guest's / the host's work on both
    host kinds, by different means: VHE flips the EL0 filter of the switched events at
    entry and exit (the kernels differ by EL), nVHE flips their counters' enables."""
    host = Host(HOST_PRESETS["dynamiq-a720-a520"], vhe=vhe)
    perf = PerfSubsystem(host)
    drv = _drv(perf, 0)
    assert drv.vhe is vhe and drv.pmu.kernel_el == (2 if vhe else 1)
    task = host.spawn(_mixed_task(0))
    cases = {"guest": {"exclude_host": True}, "host": {"exclude_guest": True},
             "guest-user": {"exclude_host": True, "exclude_kernel": True},
             "host-user": {"exclude_guest": True, "exclude_kernel": True}}
    evs = {n: perf.open(PerfEventAttr(config=INSTRUCTIONS, **kw), task=task)  # type: ignore[arg-type]
           for n, kw in cases.items()}
    while task.cpu is None or host.cpus[0].mode.value != "guest-user":
        host.run(host.env.now_ps + 1_000_000)
        assert host.env.now_ps < ms(50)
    idx = {n: e.hw_idx for n, e in evs.items()}
    assert None not in idx.values()
    guest_only = 1 << idx["guest"]  # type: ignore[operator]
    if vhe:  # the guest-only event counts EL0 now; the host-only one does not
        assert not drv.pmu.types[idx["guest"] or 0] >> 30 & 1
        assert drv.pmu.types[idx["host"] or 0] >> 30 & 1
    else:  # deferred: enabled by the world switch only while the guest runs
        assert drv.pmu.regs["PMCNTENSET_EL0"] & guest_only
        assert not drv.pmu.regs["PMCNTENSET_EL0"] & 1 << (idx["host"] or 0)
    host.run(ms(200))
    truth = {m: task.truth.get((m, ev.INSTRUCTIONS), 0)
             for m in ("host-user", "host-kernel", "guest-user", "guest-kernel")}
    counts = {n: perf.read(e)[0] for n, e in evs.items()}
    assert counts["guest"] == truth["guest-user"] + truth["guest-kernel"]
    assert counts["guest-user"] == truth["guest-user"]
    assert counts["host-user"] == truth["host-user"]
    extra = counts["host"] - truth["host-user"] - truth["host-kernel"]
    assert 0 <= extra < 0.01 * counts["host"]  # the switches' and ticks' kernel work
    if not vhe:
        assert not drv.pmu.regs["PMCNTENSET_EL0"] & guest_only  # the task ended in the host
