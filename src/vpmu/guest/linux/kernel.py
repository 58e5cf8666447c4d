"""``LinuxGuest``: a Linux kernel with perf, as a ``GuestOs`` (vpmu.guest.os).

``main()`` boots (architecture and PMU discovery), then runs the tool around the workload
``runs`` times (seed 001's ``for i in 1..10: perf record ... br_instr``; docs/sources.md) and
returns the tools' results. ``on_tick()`` is the timer interrupt: the scheduler tick and perf's tick
work (unthrottle, frequency adjustment), and the mux hrtimer's rotation when due (the model's
hrtimers run at the tick). ``on_pmi()`` is the PMU interrupt, the driver's handler timed by two
clock reads for perf_sample_event_took (perf_cpu_time_max_percent):

- **x86**: an NMI (LVTPC in NMI mode): the vendor's perf NMI handler between the guest table's
  NMI entry and exit costs.
- **arm64**: a normal IRQ, the PMU's PPI through the GIC (pseudo-NMI needs
  CONFIG_ARM64_PSEUDO_NMI and irqchip.gicv3_pseudo_nmi=1, off by default): armpmu_dispatch_irq
  (sched_clock, armv8pmu_handle_irq, sched_clock) between the table's IRQ entry and exit
  costs, which include the GIC acknowledge and end-of-interrupt (not register accesses here).

The architecture is found by probing, since one kernel model boots on either CPU: CPUID leaf 0
first (x86 then reads its leaves, ``boot``); an UNDEFINED CPUID means an Arm CPU, which reads
CNTFRQ_EL0 (the generic timer, as time_init does before perf's initcall) and probes the PMU
with MRS (``arm_probe``).

Interrupts and the main program: the machine takes an interrupt between two operations of
``main()``. Perf's syscalls run with interrupts disabled in the kernel (the context lock is
taken with IRQs off), so a tick that arrives inside one is deferred and taken when they are
re-enabled (local_irq_restore), and so is the Arm PMU interrupt (deferred first, then the tick:
the GIC takes the lower INTID first at equal priority, assumption); an NMI cannot be masked and
runs at once, and the x86 handler leaves GLOBAL_CTRL off if the interrupted code had the PMU
disabled (cpuc->enabled). A deferred Arm PMU interrupt whose line dropped meanwhile still runs
the handler, which finds PMOVSCLR_EL0 empty and returns IRQ_NONE (assumption: the GIC would
have returned the spurious INTID 1023 instead; the difference is one handler's MRS and MSR).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vpmu.arch.faults import Fault
from vpmu.guest.linux import arm_probe
from vpmu.guest.linux.arm_pmuv3 import ArmV8Pmu
from vpmu.guest.linux.boot import PmuInfo, probe
from vpmu.guest.linux.clock import ArchTimerClock
from vpmu.guest.linux.costs import KernelCosts
from vpmu.guest.linux.lbr_sampler import LbrSampler, LbrSamplerResult
from vpmu.guest.linux.perf import PerfCore
from vpmu.guest.linux.pmu import Gen, PerfPmu
from vpmu.guest.linux.pmu_amd import AmdPmu, AmdV2Pmu
from vpmu.guest.linux.pmu_intel import IntelPmu
from vpmu.guest.linux.tools import PerfRecord, PerfStat, RunResult, Workload
from vpmu.guest.linux.x86 import X86Pmu
from vpmu.guest.port import Cpuid, Execute, GuestGen, SetCpl
from vpmu.linux.perf import DEFAULT_CPU_TIME_MAX_PERCENT
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

    ``vendor`` is used when CPUID leaf 0 gives no vendor string (x86); ``tsc_mhz`` is the
    clock the kernel calibrated: the TSC on x86 (default: CPUID leaf 0x15; refused if that is
    empty), the generic timer on arm64 (default: CNTFRQ_EL0).
    """

    def __init__(self, *, workload: Stream | Workload | None = None,
                 tool: PerfRecord | PerfStat | LbrSampler | None = None, runs: int = 1,
                 vendor: str | None = None, tsc_mhz: int | None = None,
                 tick_hz: int = CONFIG_HZ,
                 perf_cpu_time_max_percent: int = DEFAULT_CPU_TIME_MAX_PERCENT,
                 mux_interval_ms: int | None = None) -> None:
        if type(runs) is not int or runs <= 0:
            raise ValueError(f"runs must be a positive int, not {runs!r}")
        if type(tick_hz) is not int or tick_hz < 0:
            raise ValueError(f"tick_hz must be a non-negative int, not {tick_hz!r}")
        pct = perf_cpu_time_max_percent
        if type(pct) is not int or not 0 <= pct <= 100:
            raise ValueError(f"perf_cpu_time_max_percent must be an int 0-100, not {pct!r}")
        if mux_interval_ms is not None and (type(mux_interval_ms) is not int
                                            or mux_interval_ms < 1):
            raise ValueError(f"mux_interval_ms must be a positive int or None, "
                             f"not {mux_interval_ms!r}")
        if tsc_mhz is not None and (type(tsc_mhz) is not int or tsc_mhz <= 0):
            raise ValueError(f"tsc_mhz must be a positive int, not {tsc_mhz!r}")
        if vendor not in (None, "intel", "amd"):
            raise ValueError(f"vendor must be 'intel', 'amd' or None, not {vendor!r}")
        self.workload, self.tool, self.runs = workload, tool, runs
        self.vendor, self.tsc_mhz, self.tick_hz = vendor, tsc_mhz, tick_hz
        self.perf_cpu_time_max_percent = perf_cpu_time_max_percent
        """kernel.perf_cpu_time_max_percent, set after the tool's sysctls (the seed's order)."""
        self.mux_interval_ms = mux_interval_ms
        """The PMU's perf_event_mux_interval_ms; None: the kernel's default (one tick)."""
        self._program = _as_program(workload)
        self.pmu: PerfPmu | None = None
        """The perf driver after boot (None: no usable PMU)."""
        self.arch = ""
        """The architecture boot found ("x86", "arm64"; "" before boot)."""
        self.perf = PerfCore(None, tick_hz=tick_hz, tsc_mhz=tsc_mhz or 1)
        """The perf core (replaced at boot)."""
        self.booted = False
        self.tick_hooks: list[Callable[[], GuestGen]] = []
        """Kernel code a module runs at each timer tick (a timer callback)."""
        self._irqs_off = 0
        self._tick_deferred = False
        self._pmi_deferred = False

    def __repr__(self) -> str:
        return (f"LinuxGuest(workload={self.workload!r}, tool={self.tool!r}, runs={self.runs}, "
                f"vendor={self.vendor!r}, tsc_mhz={self.tsc_mhz!r}, tick_hz={self.tick_hz}, "
                f"perf_cpu_time_max_percent={self.perf_cpu_time_max_percent}, "
                f"mux_interval_ms={self.mux_interval_ms!r})")

    # -- GuestOs ------------------------------------------------------------------------------
    def main(self) -> GuestGen:
        """Boot, set the sysctls, then the tool around the workload ``runs`` times; returns
        the results."""
        yield from self.boot()
        self.sysctls()
        results: list[RunResult | LbrSamplerResult] = []
        for _ in range(self.runs):
            if self.tool is not None:
                results.append((yield from self.tool.run(self, self._program)))
            else:
                yield SetCpl(3)
                yield from self._program()
                yield SetCpl(0)
        return results

    def sysctls(self) -> None:
        """What the shell does before the runs, in seed 001's order: the tool's sysctls
        (perf_event_max_sample_rate, refused while the CPU-time limit is off, so it comes
        first), then kernel.perf_cpu_time_max_percent and the PMU's
        perf_event_mux_interval_ms."""
        if isinstance(self.tool, (PerfRecord, PerfStat)):
            self.tool.setup(self)
        self.perf.set_cpu_time_max_percent(self.perf_cpu_time_max_percent)
        if self.mux_interval_ms is not None:
            self.perf.set_mux_interval_ms(self.mux_interval_ms)

    def on_pmi(self) -> GuestGen | None:
        """x86: the NMI, perf_event_nmi_handler -> x86_pmu.handle_irq (if any event exists).
        arm64: the PMU IRQ, or nothing now if interrupts are disabled (deferred)."""
        if self.arch != "arm64":
            return self._nmi()
        if self._irqs_off:
            self._pmi_deferred = True
            return None
        return self._pmu_irq()

    def on_tick(self) -> GuestGen | None:
        """The timer interrupt, or nothing now if interrupts are disabled (deferred)."""
        if self._irqs_off:
            self._tick_deferred = True
            return None
        return self._timer_interrupt()

    # -- kernel paths -------------------------------------------------------------------------
    def boot(self) -> Gen[None]:
        """Find the architecture (CPUID leaf 0 answers on x86 only), discover its PMU and pick
        the driver."""
        leaf0 = yield Cpuid(0)
        if isinstance(leaf0, Fault):
            yield from self._boot_arm64()
        else:
            yield from self._boot_x86(leaf0)
        self.booted = True

    def _boot_x86(self, leaf0: tuple[int, int, int, int]) -> Gen[None]:
        """init_hw_perf_events: discover the PMU and pick the driver."""
        info = yield from probe(self.vendor, leaf0)
        tsc_mhz = self.tsc_mhz or (yield from self._tsc_mhz_from_cpuid())
        self.arch = "x86"
        self.pmu = make_pmu(info) if info is not None else None
        self.perf = PerfCore(self.pmu, tick_hz=self.tick_hz, tsc_mhz=tsc_mhz)

    def _boot_arm64(self) -> Gen[None]:
        """time_init (CNTFRQ_EL0), then armv8_pmu_driver_init: probe, reset (the CPU's
        hotplug starting callback) and the armv8pmu driver."""
        hz = self.tsc_mhz * 1_000_000 if self.tsc_mhz else (yield from arm_probe.timer_hz())
        if hz is None:
            raise ValueError("tsc_mhz must be given: CNTFRQ_EL0 does not give the generic "
                             "timer's frequency on this machine")
        info = yield from arm_probe.probe()
        if info is not None:
            yield from arm_probe.reset(info)
        self.arch = "arm64"
        self.pmu = ArmV8Pmu(info) if info is not None else None
        self.perf = PerfCore(self.pmu, tick_hz=self.tick_hz, clock=ArchTimerClock(hz),
                             costs=KernelCosts.for_arch("arm64"))

    def _tsc_mhz_from_cpuid(self) -> Gen[int]:
        """CPUID.0x15: TSC = crystal (ECX Hz) x EBX / EAX."""
        eax, ebx, ecx, _ = yield Cpuid(0x15)
        if not (eax and ebx and ecx):
            raise ValueError("tsc_mhz must be given: CPUID leaf 0x15 does not enumerate the "
                             "TSC frequency on this machine")
        return int(ecx * ebx // eax // 1_000_000)

    def _work(self, name: str, cycles: int) -> Execute:
        return Execute(self.perf.costs.work(name, cycles))

    def _nmi(self) -> GuestGen:
        """perf_event_nmi_handler: if any event exists, sched_clock (RDTSC) around
        x86_pmu.handle_irq, then perf_sample_event_took."""
        t = self.perf.costs.table
        yield self._work("nmi_entry", t.nmi_entry_cycles)
        if self.pmu is not None and self.pmu.active_events:
            yield from self._timed_handler(self.pmu)
        yield self._work("nmi_exit", t.nmi_exit_cycles)

    def _pmu_irq(self) -> GuestGen:
        """The Arm PMU's IRQ: armpmu_dispatch_irq reads sched_clock around the driver's
        handler, then perf_sample_event_took."""
        t = self.perf.costs.table
        yield self._work("irq_entry", t.irq_entry_cycles)
        if self.pmu is not None:
            yield from self._timed_handler(self.pmu)
        yield self._work("irq_exit", t.irq_exit_cycles)

    def _timed_handler(self, pmu: PerfPmu) -> Gen[None]:
        """The driver's handler between two clock reads, and its length to
        perf_sample_event_took: on a VM the length includes the handler's exits."""
        start = yield from self.perf.clock_ns()
        yield from pmu.handle_irq()
        finish = yield from self.perf.clock_ns()
        self.perf.sample_event_took(finish - start, finish)

    def _timer_interrupt(self) -> GuestGen:
        t = self.perf.costs.table
        yield self._work("tick", t.irq_entry_cycles + t.tick_cycles)
        if self.booted:
            yield from self.perf.task_tick()
        for hook in list(self.tick_hooks):
            yield from hook()
        yield self._work("irq_exit", t.irq_exit_cycles)

    def syscall(self, body: Gen[Any]) -> Gen[Any]:
        """Run kernel code with interrupts disabled; a tick that came meanwhile is taken
        when they are re-enabled (local_irq_save / local_irq_restore)."""
        self._irqs_off += 1
        try:
            result = yield from body
        finally:
            self._irqs_off -= 1
        while not self._irqs_off and (self._pmi_deferred or self._tick_deferred):
            handler = self._pmu_irq() if self._pmi_deferred else self._timer_interrupt()
            if self._pmi_deferred:
                self._pmi_deferred = False
            else:
                self._tick_deferred = False
            self._irqs_off += 1
            try:
                yield from handler
            finally:
                self._irqs_off -= 1
        return result
