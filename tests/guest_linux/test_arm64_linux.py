"""The guest's Linux on Arm bare metal: the arm_pmuv3 driver (drivers/perf/arm_pmuv3.c and
arm_pmu.c at v6.6) under the shared perf core and the unchanged perf tools: discovery by MRS,
exact counts, the PMU interrupt's sysreg sequence, frequency mode, multiplexing, 32-bit wrap,
PMUv3p5's biased 64-bit counters, and the PMU interrupt as a maskable IRQ."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.faults import Fault
from vpmu.guest.linux import LinuxGuest, PerfRecord, PerfStat
from vpmu.guest.linux.arm_pmuv3 import ArmV8Pmu
from vpmu.guest.linux.arm_probe import ArmPmuInfo
from vpmu.guest.linux.costs import kernel_work
from vpmu.guest.linux.event import HwPerfEvent, PerfEvent, PerfEventAttr
from vpmu.guest.port import Cpuid, Execute, GuestGen, Mrs, Msr, SetCpl
from vpmu.linux import arm_pmuv3
from vpmu.machine import BareMetal
from vpmu.sim import PS_PER_MS, PS_PER_US
from vpmu.workloads import PHASES

from .recording import RATE_TOLERANCE, Access, RecordingOs, assert_settled_rate

U32_MAX = 0xFFFF_FFFF
SCALE_TOLERANCE = 0.05
"""As the x86 multiplexing test."""
MUX_EVENTS = ["instructions:u", "r21:u", "r22:u", "r36:u", "r37:u", "r0021:u", "r08:u",
              "r21:k"]
"""Eight events for six event counters on arm-n1 (INST_RETIRED, BR_RETIRED,
BR_MIS_PRED_RETIRED, LL_CACHE_RD, LL_CACHE_MISS_RD, BR_RETIRED and INST_RETIRED again,
BR_RETIRED at EL1): none is CPU_CYCLES, so none takes the cycle counter."""
MUX_TRUTH_KEYS: list[tuple[str, ...]] = [
    ("instructions",), ("branches",), ("branch_misses",), ("llc_references",), ("llc_misses",),
    ("branches",), ("instructions",)]


def sysreg(op: Any) -> str | None:
    """``"R PMCR_EL0"`` / ``"W PMCR_EL0"``; None for what is not an MRS or MSR."""
    if isinstance(op, Mrs):
        return f"R {op.name}"
    if isinstance(op, Msr):
        return f"W {op.name}"
    return None


def runs_of(rec: RecordingOs, ctx: str) -> list[list[Access]]:
    """The sysreg accesses of each run of handler ``ctx``."""
    by_run: dict[int, list[Access]] = {}
    for a in rec.log:
        if a.ctx == ctx and sysreg(a.op):
            by_run.setdefault(a.run, []).append(a)
    return list(by_run.values())


def run_linux(preset: str, tool: PerfRecord | PerfStat | None, *, ms: int,
              phase: str = "br_instr", tick_hz: int = 1000) -> tuple[BareMetal, RecordingOs, Any]:
    """``tool`` around ``ms`` ms of a phase on Arm bare metal, every operation recorded."""
    machine = BareMetal(preset)
    stream = PHASES[phase].stream_for_cycles(machine.preset.core_mhz * 1000 * ms)
    rec = RecordingOs(LinuxGuest(workload=stream, tool=tool, tick_hz=tick_hz))
    return machine, rec, machine.run_os(rec)


@pytest.fixture(scope="module")
def a72_record() -> tuple[BareMetal, RecordingOs, Any]:
    """perf record -F 4000 of cycles and instructions over 100 ms of br_instr on arm-a72."""
    return run_linux("arm-a72", PerfRecord(["cycles", "instructions"]), ms=100)


@pytest.mark.parametrize(("preset", "pmcr", "num_events"),
                         [("arm-a72", 0x46, 7), ("arm-a720", 0xC6, 21)])
def test_boot_probes_pmuv3_with_mrs_after_an_undefined_cpuid(preset: str, pmcr: int,
                                                             num_events: int) -> None:
    """CPUID is UNDEFINED on Arm, so the kernel boots as arm64: CNTFRQ_EL0, then
    __armv8pmu_probe_pmu (PMUVer, PMCR_EL0.N, PMCEID0/1) and armv8pmu_reset (P | C | LC, and
    LP with PMUv3p5's 64-bit event counters)."""
    machine, rec, _ = run_linux(preset, None, ms=1, tick_hz=0)
    main = [a for a in rec.log if a.ctx == "main"]
    assert isinstance(main[0].op, Cpuid) and main[0].result is Fault.UNDEF
    regs = [a for a in main if sysreg(a.op)]
    assert [sysreg(a.op) for a in regs] == [
        "R CNTFRQ_EL0", "R ID_AA64DFR0_EL1", "R PMCR_EL0", "R PMCEID0_EL0", "R PMCEID1_EL0",
        "R CurrentEL", "W PMCNTENCLR_EL0", "W PMINTENCLR_EL1", "W PMOVSCLR_EL0", "W PMCR_EL0"]
    assert regs[0].result == machine.preset.tsc_mhz * 1_000_000
    assert [a.op.value for a in regs[6:]] == [U32_MAX, U32_MAX, U32_MAX, pmcr]
    pmu = rec.guest.pmu
    assert isinstance(pmu, ArmV8Pmu)
    caps: Any = machine.preset.caps
    assert pmu.info.num_events == num_events and pmu.info.pmceid == caps.events
    assert rec.guest.arch == "arm64" and not pmu.info.hyp_mode


@pytest.mark.parametrize("preset", ["arm-a72", "arm-a720"])
def test_perf_stat_counts_the_workload_exactly(preset: str) -> None:
    """cycles:u on the cycle counter and instructions:u on an event counter count the EL0
    workload exactly through 100 ticks (with PMUv3p7's 64-bit counters too); without :u the
    kernel's own code is counted as well."""
    machine, rec, results = run_linux(
        preset, PerfStat(["cycles:u", "instructions:u", "cycles", "instructions"]), ms=100)
    stream = PHASES["br_instr"].stream_for_cycles(machine.preset.core_mhz * 1000 * 100)
    (result,) = results
    assert result["cycles:u"].count == stream.get("cycles")
    assert result["instructions:u"].count == stream.get("instructions")
    assert result["cycles"].count > stream.get("cycles")
    assert result["instructions"].count > stream.get("instructions")
    writes = {(a.op.name, a.op.value) for a in rec.log if isinstance(a.op, Msr)}
    # :u is exclude_kernel and exclude_hv: P (bit 31) set, NSH clear; cycles:u on PMCCFILTR
    assert ("PMCCFILTR_EL0", 1 << 31 | arm_ev.CPU_CYCLES) in writes
    assert ("PMEVTYPER0_EL0", 1 << 31 | arm_ev.BY_NAME["INST_RETIRED"]) in writes
    # the cycle counter is taken, so plain cycles goes on an event counter; without a
    # modifier exclude_hv is clear and the filter adds INCLUDE_EL2 (NSH, bit 27)
    assert ("PMEVTYPER1_EL0", 1 << 27 | arm_ev.CPU_CYCLES) in writes
    assert ("PMEVTYPER2_EL0", 1 << 27 | arm_ev.BY_NAME["INST_RETIRED"]) in writes


def test_generic_events_follow_the_perf_map_and_pmceid() -> None:
    """__armv8_pmuv3_map_event_id: branches is PC_WRITE_RETIRED (0x0C), else BR_RETIRED
    (0x21); the A72 implements neither (PMCEID0_EL0 bit 12 and PMCEID1_EL0 bit 1 clear), so it
    fails to open; ref-cycles has no mapping; a raw CHAIN is refused; a raw event opens
    whatever PMCEID says."""
    _, _, results = run_linux("arm-a72", PerfStat(
        ["branches", "ref-cycles", "r1e", "r21:u", "cache-references"]), ms=1)
    (result,) = results
    assert [e.supported for e in result.events] == [False, False, False, True, True]


@pytest.mark.parametrize(("preset", "event"), [("arm-n1", "BR_RETIRED"),
                                                ("arm-a53", "PC_WRITE_RETIRED")])
def test_perf_stat_branches_counts_the_workloads_branches(preset: str, event: str) -> None:
    """``perf stat -e branches``: the N1 has no PC_WRITE_RETIRED, so branches is BR_RETIRED
    (as on the host); the A53 has PC_WRITE_RETIRED. branches:u counts the EL0 workload's
    branches exactly, branches the kernel's too."""
    machine, rec, results = run_linux(preset, PerfStat(["branches:u", "branches"]), ms=20)
    stream = PHASES["br_instr"].stream_for_cycles(machine.preset.core_mhz * 1000 * 20)
    (result,) = results
    assert result["branches:u"].count == stream.get("branches") > 0
    assert result["branches"].count > stream.get("branches")
    number = arm_ev.BY_NAME[event]
    writes = {(a.op.name, a.op.value) for a in rec.log if isinstance(a.op, Msr)}
    assert ("PMEVTYPER0_EL0", 1 << 31 | number) in writes  # :u: P set
    assert ("PMEVTYPER1_EL0", 1 << 27 | number) in writes  # no modifier: NSH


@pytest.mark.parametrize("hyp_mode", [False, True])
def test_the_guests_filter_is_the_shared_driver_filter(hyp_mode: bool) -> None:
    """The guest's armv8pmu_set_event_filter is vpmu.linux.arm_pmuv3's (the host's too), for
    every exclude_user / kernel / hv the guest's attr carries, at EL1 and in hyp mode (a VHE
    kernel on bare metal); exclude_host and exclude_guest are clear in a guest's attr."""
    pmu = ArmV8Pmu(ArmPmuInfo(1, 7, frozenset(), hyp_mode))
    for user, kernel, hv in itertools.product((False, True), repeat=3):
        attr = PerfEventAttr("r08", exclude_user=user, exclude_kernel=kernel, exclude_hv=hv)
        assert pmu.event_filter(attr) == arm_pmuv3.event_filter(
            hyp_mode=hyp_mode, exclude_user=user, exclude_kernel=kernel, exclude_hv=hv,
            exclude_host=False, exclude_guest=False)


def test_32_bit_counters_wrap_in_the_update() -> None:
    """2 s of br_instr on arm-a72: instructions:u passes 2^32 on a 32-bit event counter and
    cycles:u passes 2^32 on the 64-bit cycle counter (armed with bits 63:32 set); each
    overflow's PMI folds the wrapped delta in, and the counts stay exact."""
    machine, rec, results = run_linux("arm-a72", PerfStat(["instructions:u", "cycles:u"]),
                                      ms=2000, tick_hz=100)
    stream = PHASES["br_instr"].stream_for_cycles(machine.preset.core_mhz * 1000 * 2000)
    (result,) = results
    assert stream.get("instructions") > 1 << 32 and stream.get("cycles") > 1 << 31
    assert result["instructions:u"].count == stream.get("instructions")
    assert result["cycles:u"].count == stream.get("cycles")
    pmis = runs_of(rec, "pmi")
    assert len(pmis) >= 3  # instructions twice (2^31 - 1 periods), cycles once
    reads = [a.result for run in pmis for a in run
             if a.op in (Mrs("PMEVCNTR0_EL0"), Mrs("PMCCNTR_EL0"))]
    assert all(r < 1 << 20 for r in reads)  # just past the wrap, unbiased


def test_update_takes_the_delta_modulo_2_to_the_32() -> None:
    """armpmu_event_update: prev_count 0xFFFFFF00, the counter reads 0x100: delta 0x200."""
    pmu = ArmV8Pmu(ArmPmuInfo(1, 7, frozenset()))
    e = PerfEvent(PerfEventAttr("r08"), HwPerfEvent(0, 0, 1, 1, 1, idx=1, prev_count=0xFFFF_FF00))
    gen = pmu.update(e)
    assert next(gen) == Mrs("PMEVCNTR0_EL0")
    with pytest.raises(StopIteration) as stop:
        gen.send(0x100)
    assert stop.value.value == 0x100 and e.count == 0x200 and e.hw.period_left == 1 - 0x200


def test_freq_mode_converges_to_4000_samples_per_second(a72_record: Any) -> None:
    """Each event starts at period 1 and settles at its rate / 4000: ~400 samples in 100 ms,
    and over the run's second half every event samples at 4000/s, on the generic timer's
    clock."""
    _, _, (result,) = a72_record
    for event in result.events:  # the ramp from period 1 adds a few samples
        assert len(event.samples) == pytest.approx(4000 * result.duration_ns / 1e9,
                                                   rel=RATE_TOLERANCE)
    assert_settled_rate(result, 4000)


def test_one_overflow_pmu_irq_is_the_kernels_sequence(a72_record: Any) -> None:
    """armpmu_dispatch_irq and armv8pmu_handle_irq for one overflowed counter: sched_clock;
    PMOVSCLR_EL0 read and written back; PMCR_EL0.E off; the counter read and re-armed;
    perf_event_overflow's clock read; PMUSERENR_EL0 = 0 and PMCR_EL0.E on; sched_clock."""
    _, rec, _ = a72_record
    pmis = runs_of(rec, "pmi")
    singles = [r for r in pmis if bin(r[1].result).count("1") == 1]
    assert len(singles) > 0.9 * len(pmis)
    for run in (singles[len(singles) // 2], singles[-1]):
        status = run[1].result
        cycle = status == 1 << 31
        counter = "PMCCNTR_EL0" if cycle else f"PMEVCNTR{status.bit_length() - 1}_EL0"
        assert [sysreg(a.op) for a in run] == [
            "R CNTVCT_EL0", "R PMOVSCLR_EL0", "W PMOVSCLR_EL0", "R PMCR_EL0", "W PMCR_EL0",
            f"R {counter}", f"W {counter}", "R CNTVCT_EL0",
            "W PMUSERENR_EL0", "R PMCR_EL0", "W PMCR_EL0", "R CNTVCT_EL0"]
        assert run[2].op.value == status
        assert run[4].op.value == run[3].result & 0xFE  # E off, only bits 7:0 written
        assert run[9].result & 1 == 0 and run[10].op.value == run[9].result & 0xFF | 1
        armed = run[6].op.value
        if cycle:  # the 64-bit cycle counter is biased to interrupt at a 32-bit overflow
            assert armed >> 32 == U32_MAX and 0 < (1 << 32) - (armed & U32_MAX) < 1 << 31
        else:
            assert 0 < (1 << 32) - armed < 1 << 31


def test_a720_event_counters_are_biased_64_bit() -> None:
    """PMUv3p7: event counters are 64-bit (PMCR_EL0.LP), so set_period writes them with bits
    63:32 set and a sample still comes every period."""
    _, rec, (result,) = run_linux("arm-a720", PerfRecord(["instructions"], period=1_000_000),
                                  ms=20)
    writes = [a.op.value for a in rec.log
              if isinstance(a.op, Msr) and a.op.name.startswith("PMEVCNTR")]
    assert writes and all(v >> 32 == U32_MAX for v in writes)
    # -left in the low half: the period less what counted past the overflow before the read
    assert all(0 < (1 << 32) - (v & U32_MAX) <= 1_000_000 for v in writes)
    event = result["instructions"]
    assert len(event.samples) == event.count // 1_000_000


def test_eight_events_on_six_counters_rotate_and_scale() -> None:
    """perf_rotate_context on arm-n1 (N = 6): each of 8 events runs 6 ticks in 8, and perf
    stat's scaled count is within 5% of the stream's truth. Every rotation tick is one
    perf_pmu_disable section: six counters off, then six on (Arm programs each counter in
    pmu->add, not at perf_pmu_enable), then PMCR_EL0.E on."""
    machine, rec, (result,) = run_linux("arm-n1", PerfStat(MUX_EVENTS), ms=64, phase="compute")
    stream = PHASES["compute"].stream_for_cycles(machine.preset.core_mhz * 1000 * 64)
    for event, keys in zip(result.events, MUX_TRUTH_KEYS, strict=False):
        truth = sum(stream.get(k) for k in keys)
        assert float(event.running_fraction) == pytest.approx(6 / 8, abs=0.03), event.name
        assert event.count < 0.8 * truth
        assert event.scaled_count == pytest.approx(truth, rel=SCALE_TOLERANCE), event.name
    rotations = [[sysreg(a.op) for a in t] for t in runs_of(rec, "tick")]
    assert len(rotations) >= 60
    for names in rotations:
        assert names == ["R PMCR_EL0", "W PMCR_EL0", "R CNTVCT_EL0",  # disable, perf_clock
                         *[r for n in range(6) for r in off(n)],
                         *[r for n in range(6) for r in on(n)],
                         "W PMUSERENR_EL0", "R PMCR_EL0", "W PMCR_EL0"]  # armv8pmu_start


def off(n: int) -> list[str]:
    """armpmu_del of the event on counter n: armv8pmu_disable_event, armpmu_event_update."""
    return ["W PMCNTENCLR_EL0", "W PMINTENCLR_EL1", "W PMOVSCLR_EL0", f"R PMEVCNTR{n}_EL0"]


def on(n: int) -> list[str]:
    """armpmu_add on counter n: armv8pmu_disable_event, then armpmu_start: the counter armed,
    armv8pmu_enable_event."""
    return ["W PMCNTENCLR_EL0", "W PMINTENCLR_EL1", "W PMOVSCLR_EL0", f"W PMEVCNTR{n}_EL0",
            "W PMCNTENCLR_EL0", f"W PMEVTYPER{n}_EL0", "W PMINTENSET_EL1", "W PMCNTENSET_EL0"]


class NestingArmOs:
    """A 100 µs tick handler, and the cycle counter armed to overflow 1.05 ms in (inside the
    first tick's handler), with a 1 ms PMU interrupt handler."""

    tick_hz = 1000

    def __init__(self, mhz: int) -> None:
        self.mhz = mhz

    def main(self) -> GuestGen:
        yield Msr("PMCR_EL0", 1 << 6)  # LC: the cycle counter overflows at 64 bits
        yield Msr("PMCCFILTR_EL0", 0)
        yield Msr("PMCCNTR_EL0", (1 << 64) - self.mhz * 1050)
        yield Msr("PMINTENSET_EL1", 1 << 31)
        yield Msr("PMCNTENSET_EL0", 1 << 31)
        yield Msr("PMCR_EL0", 1 << 6 | 1)
        yield SetCpl(3)
        yield Execute(PHASES["compute"].stream_for_cycles(self.mhz * 3000))

    def on_pmi(self) -> GuestGen | None:
        def handler() -> GuestGen:
            yield Msr("PMOVSCLR_EL0", 1 << 31)
            yield Execute(kernel_work("long irq", self.mhz * 1000))
        return handler()

    def on_tick(self) -> GuestGen | None:
        def handler() -> GuestGen:
            yield Execute(kernel_work("tick", self.mhz * 100))
        return handler()


def test_the_pmu_interrupt_is_an_irq_that_waits_for_the_tick_handler() -> None:
    """On Arm the PMU's PPI is a maskable IRQ (no pseudo-NMI): raised at 1.05 ms inside the
    first tick's handler, its handler starts when that one returns (at 1.1 ms), and the tick
    raised at 2 ms waits for it in turn. (On x86 the NMI preempts: test_baremetal_os.)"""
    machine = BareMetal("arm-a72")
    machine.run_os(NestingArmOs(machine.preset.core_mhz))
    tick1, pmi, tick2 = machine.handler_runs[:3]
    assert (tick1.kind, pmi.kind, tick2.kind) == ("tick", "pmi", "tick")
    assert machine.pmis[0][2] is False  # delivered as a normal interrupt
    assert pmi.raised_ps == pytest.approx(1050 * PS_PER_US, abs=PS_PER_US)
    assert pmi.start_ps == tick1.end_ps and tick1.end_ps < 1101 * PS_PER_US
    assert tick2.raised_ps == 2 * PS_PER_MS and tick2.start_ps == pmi.end_ps
