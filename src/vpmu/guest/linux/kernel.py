"""``LinuxGuest``: a Linux kernel with perf, as a ``GuestOs`` (vpmu.guest.os).

``main()`` boots (PMU discovery), then runs the tool around the workload ``runs`` times (seed
001's ``for i in 1..10: perf record ... br_instr``) and returns the tools' results. The PMI is
an NMI: ``on_pmi()`` is the vendor's perf NMI handler between the NMI entry and exit costs.
``on_tick()`` is the timer interrupt: the scheduler tick and perf's tick work (unthrottle,
frequency adjustment, multiplexing rotation).

Interrupts and the main program: the machine takes an interrupt between two operations of
``main()``. Perf's syscalls run with interrupts disabled in the kernel (the context lock is
taken with IRQs off), so a tick that arrives inside one is deferred and taken when they are
re-enabled (local_irq_restore); an NMI cannot be masked and runs at once, and the handler
leaves GLOBAL_CTRL off if the interrupted code had the PMU disabled (cpuc->enabled).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vpmu.guest.linux import costs
from vpmu.guest.linux.boot import PmuInfo, probe
from vpmu.guest.linux.lbr_sampler import LbrSampler, LbrSamplerResult
from vpmu.guest.linux.perf import PerfCore
from vpmu.guest.linux.pmu_amd import AmdPmu, AmdV2Pmu
from vpmu.guest.linux.pmu_intel import IntelPmu
from vpmu.guest.linux.tools import PerfRecord, PerfStat, RunResult, Workload
from vpmu.guest.linux.x86 import Gen, X86Pmu
from vpmu.guest.port import Cpuid, Execute, GuestGen, SetCpl
from vpmu.workloads.streams import Stream

CONFIG_HZ = 1000
"""The guest's default timer frequency (CONFIG_HZ_1000, common in server kernels)."""


def make_pmu(info: PmuInfo) -> X86Pmu:
    """The driver Linux picks: intel_pmu (v2+) or core_pmu (v1), amd_pmu with or without
    PerfMonV2."""
    if info.is_intel:
        return IntelPmu(info) if info.view.version >= 2 else X86Pmu(info)
    return AmdV2Pmu(info) if info.view.perfmon_v2 else AmdPmu(info)


def _as_program(workload: Stream | Workload | None) -> Workload:
    if workload is None or isinstance(workload, Stream):
        stream = workload

        def program() -> GuestGen:
            if stream is not None:
                yield Execute(stream)
        return program
    if callable(workload):
        return workload
    raise ValueError(f"workload must be a Stream, a guest program or None, not {workload!r}")


class LinuxGuest:
    """A Linux guest running ``tool`` around ``workload``, ``runs`` times.

    ``vendor`` is used when CPUID leaf 0 gives no vendor string; ``tsc_mhz`` is the TSC
    frequency the kernel calibrated (default: CPUID leaf 0x15; refused if that is empty).
    """

    def __init__(self, *, workload: Stream | Workload | None = None,
                 tool: PerfRecord | PerfStat | LbrSampler | None = None, runs: int = 1,
                 vendor: str | None = None, tsc_mhz: int | None = None,
                 tick_hz: int = CONFIG_HZ) -> None:
        if type(runs) is not int or runs <= 0:
            raise ValueError(f"runs must be a positive int, not {runs!r}")
        if type(tick_hz) is not int or tick_hz < 0:
            raise ValueError(f"tick_hz must be a non-negative int, not {tick_hz!r}")
        if tsc_mhz is not None and (type(tsc_mhz) is not int or tsc_mhz <= 0):
            raise ValueError(f"tsc_mhz must be a positive int, not {tsc_mhz!r}")
        if vendor not in (None, "intel", "amd"):
            raise ValueError(f"vendor must be 'intel', 'amd' or None, not {vendor!r}")
        self.workload, self.tool, self.runs = workload, tool, runs
        self.vendor, self.tsc_mhz, self.tick_hz = vendor, tsc_mhz, tick_hz
        self._program = _as_program(workload)
        self.pmu: X86Pmu | None = None
        """The perf driver after boot (None: no usable PMU)."""
        self.perf = PerfCore(None, tick_hz=tick_hz, tsc_mhz=tsc_mhz or 1)
        """The perf core (replaced at boot)."""
        self.booted = False
        self.tick_hooks: list[Callable[[], GuestGen]] = []
        """Kernel code a module runs at each timer tick (a timer callback)."""
        self._irqs_off = 0
        self._tick_deferred = False

    def __repr__(self) -> str:
        return (f"LinuxGuest(workload={self.workload!r}, tool={self.tool!r}, runs={self.runs}, "
                f"vendor={self.vendor!r}, tsc_mhz={self.tsc_mhz!r}, tick_hz={self.tick_hz})")

    # -- GuestOs ------------------------------------------------------------------------------
    def main(self) -> GuestGen:
        """Boot, then the tool around the workload ``runs`` times; returns the results."""
        yield from self.boot()
        results: list[RunResult | LbrSamplerResult] = []
        for _ in range(self.runs):
            if self.tool is not None:
                results.append((yield from self.tool.run(self, self._program)))
            else:
                yield SetCpl(3)
                yield from self._program()
                yield SetCpl(0)
        return results

    def on_pmi(self) -> GuestGen | None:
        """The NMI: perf_event_nmi_handler -> x86_pmu.handle_irq (if any event exists)."""
        return self._nmi()

    def on_tick(self) -> GuestGen | None:
        """The timer interrupt, or nothing now if interrupts are disabled (deferred)."""
        if self._irqs_off:
            self._tick_deferred = True
            return None
        return self._timer_interrupt()

    # -- kernel paths -------------------------------------------------------------------------
    def boot(self) -> Gen[None]:
        """init_hw_perf_events: discover the PMU and pick the driver."""
        info = yield from probe(self.vendor)
        tsc_mhz = self.tsc_mhz or (yield from self._tsc_mhz_from_cpuid())
        self.pmu = make_pmu(info) if info is not None else None
        self.perf = PerfCore(self.pmu, tick_hz=self.tick_hz, tsc_mhz=tsc_mhz)
        self.booted = True

    def _tsc_mhz_from_cpuid(self) -> Gen[int]:
        """CPUID.0x15: TSC = crystal (ECX Hz) x EBX / EAX."""
        eax, ebx, ecx, _ = yield Cpuid(0x15)
        if not (eax and ebx and ecx):
            raise ValueError("tsc_mhz must be given: CPUID leaf 0x15 does not enumerate the "
                             "TSC frequency on this machine")
        return int(ecx * ebx // eax // 1_000_000)

    def _nmi(self) -> GuestGen:
        yield Execute(costs.kernel_work("nmi_entry", costs.NMI_ENTRY_CYCLES))
        if self.pmu is not None and self.pmu.active_events:
            yield from self.pmu.handle_irq()
        yield Execute(costs.kernel_work("nmi_exit", costs.NMI_EXIT_CYCLES))

    def _timer_interrupt(self) -> GuestGen:
        yield Execute(costs.kernel_work("tick", costs.IRQ_ENTRY_CYCLES + costs.TICK_CYCLES))
        if self.booted:
            yield from self.perf.task_tick()
        for hook in list(self.tick_hooks):
            yield from hook()
        yield Execute(costs.kernel_work("irq_exit", costs.IRQ_EXIT_CYCLES))

    def syscall(self, body: Gen[Any]) -> Gen[Any]:
        """Run kernel code with interrupts disabled; a tick that came meanwhile is taken
        when they are re-enabled (local_irq_save / local_irq_restore)."""
        self._irqs_off += 1
        try:
            result = yield from body
        finally:
            self._irqs_off -= 1
        while not self._irqs_off and self._tick_deferred:
            self._tick_deferred = False
            self._irqs_off += 1
            try:
                yield from self._timer_interrupt()
            finally:
                self._irqs_off -= 1
        return result
