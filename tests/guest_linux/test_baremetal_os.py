"""BareMetal.run_os: interrupts of a guest OS on bare metal (preemption, latching, CPL,
exact resumption of an interrupted stream) and the Rdtsc operation."""

from __future__ import annotations

from typing import Any

import pytest

from vpmu.arch.x86 import msrs
from vpmu.guest.linux import LinuxGuest, PerfRecord
from vpmu.guest.linux.costs import kernel_work
from vpmu.guest.port import Execute, GuestGen, Rdmsr, Rdpmc, Rdtsc, SetCpl, Wrmsr
from vpmu.machine import BareMetal
from vpmu.sim import PS_PER_MS, PS_PER_US, cycles_to_ps, ps_to_cycles
from vpmu.workloads import PHASES, loop

ICX_MHZ = 2300
SEL_INSTRUCTIONS_USR = msrs.EVTSEL_EN | msrs.EVTSEL_USR | 0xC0
SEL_CYCLES_ALL_INT = msrs.EVTSEL_EN | msrs.EVTSEL_USR | msrs.EVTSEL_OS | msrs.EVTSEL_INT | 0x3C


class TickingOs:
    """Counts user instructions over a loop at CPL 3 while 1 kHz ticks run kernel code that
    reads an MSR (privileged: it must run at CPL 0)."""

    tick_hz = 1000

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations
        self.tick_reads: list[Any] = []

    def main(self) -> GuestGen:
        yield Wrmsr(msrs.IA32_PERFEVTSEL0, SEL_INSTRUCTIONS_USR)
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 1)
        yield SetCpl(3)
        yield Execute(loop(self.iterations))
        yield SetCpl(0)
        return (yield Rdpmc(0))

    def on_pmi(self) -> GuestGen | None:
        return None

    def on_tick(self) -> GuestGen | None:
        def handler() -> GuestGen:
            self.tick_reads.append((yield Rdmsr(msrs.IA32_PERF_GLOBAL_CTRL)))
            yield Execute(kernel_work("tick", 2000))
        return handler()


def test_interrupted_stream_counts_exactly_and_handlers_run_at_cpl0() -> None:
    """A 13 ms loop cut by 13 ticks still retires exactly 10 instructions per iteration at
    CPL 3; the tick handlers' RDMSR works (CPL 0) and their kernel code is not counted."""
    os = TickingOs(10_000_000)  # 30M cycles: ~13 ms at 2.3 GHz
    machine = BareMetal("intel-icx")
    assert machine.run_os(os) == 10 * 10_000_000
    ticks = [h for h in machine.handler_runs if h.kind == "tick"]
    assert len(ticks) == machine.env.now_ps // PS_PER_MS == 13
    assert os.tick_reads == [1] * 13
    assert all(h.raised_ps == (i + 1) * PS_PER_MS for i, h in enumerate(ticks))
    assert machine.cpu.cpl == 0


class NestingOs:
    """A tick handler of 100 µs; a cycles counter armed to overflow 1.05 ms in; a PMI handler
    of 1 ms."""

    tick_hz = 1000

    def main(self) -> GuestGen:
        yield Wrmsr(msrs.X2APIC_LVTPC, msrs.LVT_DELIVERY_NMI << 8)
        yield Wrmsr(msrs.IA32_PERFEVTSEL0, SEL_CYCLES_ALL_INT)
        yield Wrmsr(msrs.IA32_A_PMC0, (1 << 48) - ICX_MHZ * 1050)
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 1)
        yield SetCpl(3)
        yield Execute(PHASES["compute"].stream_for_cycles(ICX_MHZ * 3000))

    def on_pmi(self) -> GuestGen | None:
        def handler() -> GuestGen:
            yield Execute(kernel_work("long nmi", ICX_MHZ * 1000))
        return handler()

    def on_tick(self) -> GuestGen | None:
        def handler() -> GuestGen:
            yield Execute(kernel_work("tick", ICX_MHZ * 100))
        return handler()


def test_pmi_preempts_a_tick_handler_and_a_tick_waits_for_both() -> None:
    """The NMI preempts the first tick's handler at once; the tick raised at 2 ms during the
    NMI handler is latched until the first tick's handler has finished."""
    machine = BareMetal("intel-icx")
    machine.run_os(NestingOs())
    runs = sorted(machine.handler_runs[:3], key=lambda h: h.start_ps)
    tick1, pmi, tick2 = runs
    assert (tick1.kind, pmi.kind, tick2.kind) == ("tick", "pmi", "tick")
    assert pmi.start_ps == pmi.raised_ps == pytest.approx(1050 * PS_PER_US, abs=PS_PER_US)
    assert tick1.start_ps < pmi.start_ps < pmi.end_ps < tick1.end_ps
    assert tick1.end_ps - tick1.start_ps == pytest.approx(1100 * PS_PER_US, abs=PS_PER_US)
    assert tick2.raised_ps == 2 * PS_PER_MS and tick2.start_ps == tick1.end_ps


def test_rdtsc_reads_the_tsc_at_the_preset_clock() -> None:
    """RDTSC after 2,300 cycles at 2.3 GHz reads 2,300 (TSC = time x tsc_mhz)."""
    def program() -> GuestGen:
        yield Execute(kernel_work("spin", 2300))
        return (yield Rdtsc())
    machine = BareMetal("intel-icx")
    assert machine.run(program) == 2300 == ps_to_cycles(cycles_to_ps(2300, 2300), 2300)


def test_repeated_runs_release_their_events_and_are_deterministic() -> None:
    """runs=3 gives three results and leaves no event on the PMU; the same run twice gives
    the same samples and handler timings."""
    stream = PHASES["br_instr"].stream_for_cycles(ICX_MHZ * 1000 * 10)
    outcomes = []
    for _ in range(2):
        guest = LinuxGuest(workload=stream, tool=PerfRecord(["cycles", "branches"]), runs=3,
                           tsc_mhz=ICX_MHZ)
        machine = BareMetal("intel-icx", seed=3)
        results = machine.run_os(guest)
        assert len(results) == 3 and all(len(r["cycles"].samples) > 20 for r in results)
        assert guest.pmu is not None and not guest.pmu.event_list and not guest.perf.events
        assert guest.pmu.active_events == 0
        outcomes.append((results, machine.handler_runs))
    assert outcomes[0] == outcomes[1]
