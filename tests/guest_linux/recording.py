"""Helpers of the guest Linux tests: a GuestOs wrapper that logs every port operation of the
main program and of each handler run, and names for the MSRs the driver touches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vpmu.arch.presets import CpuPreset
from vpmu.arch.x86 import msrs
from vpmu.guest.linux import LinuxGuest, PerfRecord, PerfStat, RunResult
from vpmu.guest.port import GuestGen, Op, Rdmsr, Rdpmc, Wrmsr
from vpmu.machine import BareMetal
from vpmu.workloads import PHASES

NAMES = {
    msrs.IA32_PERF_GLOBAL_CTRL: "GLOBAL_CTRL", msrs.IA32_PERF_GLOBAL_STATUS: "GLOBAL_STATUS",
    msrs.IA32_PERF_GLOBAL_OVF_CTRL: "OVF_CTRL", msrs.IA32_FIXED_CTR_CTRL: "FIXED_CTR_CTRL",
    msrs.X2APIC_LVTPC: "LVTPC", msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL: "AMD_GLOBAL_CTL",
    msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS: "AMD_GLOBAL_STATUS",
    msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR: "AMD_GLOBAL_STATUS_CLR",
    **{msrs.IA32_PERFEVTSEL0 + i: f"EVNTSEL{i}" for i in range(8)},
    **{msrs.IA32_PMC0 + i: f"PERFCTR{i}" for i in range(8)},
    **{msrs.IA32_A_PMC0 + i: f"PMC{i}" for i in range(8)},
    **{msrs.IA32_FIXED_CTR0 + i: f"FIXED_CTR{i}" for i in range(4)},
    **{msrs.MSR_F15H_PERF_CTL0 + 2 * i: f"PERF_CTL{i}" for i in range(6)},
    **{msrs.MSR_F15H_PERF_CTR0 + 2 * i: f"PERF_CTR{i}" for i in range(6)},
    **{msrs.MSR_K7_EVNTSEL0 + i: f"K7_EVNTSEL{i}" for i in range(4)},
    **{msrs.MSR_K7_PERFCTR0 + i: f"K7_PERFCTR{i}" for i in range(4)},
}


def name(op: Op) -> str | None:
    """``"W GLOBAL_CTRL"``, ``"R GLOBAL_STATUS"``, ``"RDPMC"``; None for non-register ops."""
    if isinstance(op, Wrmsr):
        return f"W {NAMES.get(op.addr, hex(op.addr))}"
    if isinstance(op, Rdmsr):
        return f"R {NAMES.get(op.addr, hex(op.addr))}"
    if isinstance(op, Rdpmc):
        return "RDPMC"
    return None


@dataclass(frozen=True, slots=True)
class Access:
    """One logged operation: which program ran it (``main``, or ``pmi``/``tick`` with the
    handler run's number), the operation and its result."""

    ctx: str
    run: int
    op: Op
    result: Any


class RecordingOs:
    """Wraps a GuestOs; logs every operation the machine executes for it."""

    def __init__(self, guest: LinuxGuest) -> None:
        self.guest = guest
        self.tick_hz = guest.tick_hz
        self.log: list[Access] = []
        self.runs: Counter[str] = Counter()

    def _wrap(self, ctx: str, gen: GuestGen | None) -> GuestGen | None:
        if gen is None:
            return None
        self.runs[ctx] += 1
        run = self.runs[ctx]

        def wrapped() -> GuestGen:
            result: Any = None
            while True:
                try:
                    op = gen.send(result)
                except StopIteration as stop:
                    return stop.value
                result = yield op
                self.log.append(Access(ctx, run, op, result))
        return wrapped()

    def main(self) -> GuestGen:
        wrapped = self._wrap("main", self.guest.main())
        assert wrapped is not None
        return wrapped

    def on_pmi(self) -> GuestGen | None:
        return self._wrap("pmi", self.guest.on_pmi())

    def on_tick(self) -> GuestGen | None:
        return self._wrap("tick", self.guest.on_tick())

    def handler_runs(self, ctx: str) -> Iterator[list[Access]]:
        """The register accesses of each run of handler ``ctx``, in order."""
        by_run: dict[int, list[Access]] = {}
        for a in self.log:
            if a.ctx == ctx and name(a.op):
                by_run.setdefault(a.run, []).append(a)
        yield from by_run.values()

    def histogram(self, ctx: str | None = None) -> Counter[str]:
        """Register accesses by name, of one context or of all."""
        return Counter(n for a in self.log if (ctx is None or a.ctx == ctx)
                       for n in [name(a.op)] if n)


@dataclass
class Run:
    """A finished bare-metal run of a LinuxGuest."""

    machine: BareMetal
    rec: RecordingOs
    results: list[RunResult]

    @property
    def pmi_runs(self) -> int:
        return self.rec.runs["pmi"]


def run_tool(preset: str | CpuPreset, tool: PerfRecord | PerfStat, *, ms: int,
             phase: str = "br_instr", runs: int = 1, **linux: Any) -> Run:
    """``tool`` around ``ms`` ms of a phase, on bare metal, recorded; ``linux``: more
    LinuxGuest settings (``mux_interval_ms``...)."""
    machine = BareMetal(preset)
    p = machine.preset
    stream = PHASES[phase].stream_for_cycles(p.core_mhz * 1000 * ms)
    rec = RecordingOs(LinuxGuest(workload=stream, tool=tool, runs=runs, tsc_mhz=p.tsc_mhz,
                                 **linux))
    return Run(machine, rec, machine.run_os(rec))


RATE_TOLERANCE = 0.05
"""How close a frequency-mode event's settled sample rate must be to the asked one."""


def assert_settled_rate(result: RunResult, freq: int) -> None:
    """Each event starts at period 1 and settles at its rate / freq: over the run's second
    half every event samples at ``freq`` per second, unthrottled."""
    mid = (result.start_tsc + result.end_tsc) // 2
    seconds = (result.end_tsc - mid) / (result.tsc_mhz * 1e6)
    for event in result.events:
        rate = sum(s.tsc >= mid for s in event.samples) / seconds
        assert abs(rate - freq) <= RATE_TOLERANCE * freq, (event.name, rate)
        assert event.throttles == 0, event.name
