"""The host machine: pCPUs in clusters, the tick, IPIs, the scheduler and perf, on one clock.

``Host(preset, cpus=4)`` builds the machine; ``spawn(Task(...))`` adds work; ``run(until_ps)``
advances it. The tick fires on every busy CPU at multiples of the tick period (Linux's ticks
are aligned across CPUs); an idle CPU takes no tick (NOHZ idle, assumption documented in
docs/host.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vpmu.arch.presets import CpuPreset, HostPreset, as_preset
from vpmu.host.costs import CostTable, cost_table
from vpmu.host.cpu import FastForward, IpiFn, NoPerf, Pcpu, PerfHooks
from vpmu.host.sched import Scheduler
from vpmu.host.task import Task
from vpmu.sim import Environment, cycles_to_ps, ms, ns
from vpmu.trace import Trace


class Host:
    """A host: ``cpus`` identical CPUs of a CPU ``preset`` (grouped in ``clusters``), or the
    clusters of a HostPreset, each CPU with its cluster's preset (PMU, clock, cost table)."""

    def __init__(self, preset: str | CpuPreset | HostPreset, *, cpus: int = 1,
                 clusters: Sequence[Sequence[int]] | None = None, tick_hz: int = 250,
                 slice_ticks: int = 1, seed: int = 0, vhe: bool = True) -> None:
        if not isinstance(cpus, int) or cpus < 1:
            raise ValueError(f"cpus must be a positive int, not {cpus!r}")
        if not isinstance(slice_ticks, int) or slice_ticks < 1:
            raise ValueError(f"slice_ticks must be a positive int, not {slice_ticks!r}")
        if not isinstance(tick_hz, int) or not 1 <= tick_hz <= 10_000:
            raise ValueError(f"tick_hz must be an int in 1..10000, not {tick_hz!r}")
        self.host_preset = _host_preset(preset, cpus, clusters)
        """The CPUs as clusters, each with its CPU preset."""
        # Work priced on a CPU uses that CPU's preset (Pcpu.costs, Pcpu.cycles_ps); what has
        # no CPU (host-wide figures, KVM's and the guests' tables, clocks read off the host)
        # takes the boot CPU's: CPU 0, in cluster 0 (docs/host.md, "Arm hosts").
        self.preset = self.host_preset.preset_of(0)
        """The boot CPU's preset (every CPU's on a homogeneous host)."""
        self.vhe = vhe
        """arm64: the kernel runs at EL2 (VHE) where every core can, else at EL1 (nVHE, as
        ``kvm-arm.mode=nvhe`` or a pre-Armv8.1 core forces); x86 ignores it."""
        self.env = Environment(seed)
        self.trace = Trace()
        self.costs: CostTable = cost_table(self.preset.costs)
        """The boot CPU's cost table (``Pcpu.costs`` is each CPU's)."""
        self.tick_ps = ms(1000) // tick_hz
        """The tick period (HZ): scheduler ticks and perf's multiplexing rotation."""
        self.sched = Scheduler(self, slice_ticks=slice_ticks)
        self.perf: PerfHooks = NoPerf()
        """The perf subsystem's hooks (``vpmu.host.perf`` installs itself here)."""
        self.ffwd: FastForward | None = None
        """The idle fast-forward watching guest streams (``vpmu.machine.ffwd``), if any."""
        self.clusters = [frozenset(cl.cpus) for cl in self.host_preset.clusters]
        self.cpus = [Pcpu(self, i, self.host_preset.cluster_of(i))
                     for i in range(self.host_preset.ncpus)]
        self.env.schedule(self._tick, delay_ps=self.tick_ps)

    def __repr__(self) -> str:
        return f"Host(preset={self.preset.name!r}, cpus={len(self.cpus)})"

    def spawn(self, task: Task) -> Task:
        """Add a task; it becomes runnable now."""
        return self.sched.spawn(task)

    def run(self, until_ps: int, *, pass_ps: int | None = None) -> None:
        """Advance the machine to ``until_ps`` (a fast-forward may pass it up to ``pass_ps``:
        ``Environment.run``)."""
        self.env.run(until_ps, pass_ps=pass_ps)

    def cycles_ps(self, cycles: int) -> int:
        """Core cycles of the boot CPU as time (``Pcpu.cycles_ps`` for a given CPU's)."""
        return cycles_to_ps(cycles, self.preset.core_mhz)

    def send_ipi(self, dst: int, fn: IpiFn) -> None:
        """Send a function-call IPI to CPU ``dst``; it arrives after the IPI latency."""
        target = self.cpus[dst]
        self.env.schedule(lambda: target.interrupt("ipi", fn),
                          delay_ps=ns(target.costs.ipi_latency_ns))

    def _tick(self) -> None:
        for cpu in self.cpus:
            if cpu.current is not None:
                cpu.interrupt("tick")
        self.env.schedule(self._tick, delay_ps=self.tick_ps)

    def irq_cycles(self, cpu: Pcpu, kind: str, payload: Any) -> int:
        """Handle one interrupt on ``cpu``; return the kernel cycles it took."""
        c = cpu.costs
        if kind == "tick":
            self.sched.tick(cpu)
            return c.irq_entry_exit_cycles + c.tick_cycles + self.perf.tick(cpu)
        if kind == "pmi":  # the host PMU's interrupt: an NMI (x86), an IRQ (arm64's PPI)
            entry = c.nmi_entry_exit_cycles if payload else c.irq_entry_exit_cycles
            return entry + self.perf.handle_pmi(cpu)
        if kind == "guest-pmi":  # the mediated vPMU's vector (an IRQ, not an NMI)
            return c.irq_entry_exit_cycles + self.perf.handle_guest_pmi(cpu)
        if kind == "ipi":
            fn: IpiFn = payload
            return c.irq_entry_exit_cycles + c.ipi_handler_cycles + fn(cpu)
        if kind == "resched":
            return c.irq_entry_exit_cycles
        if kind == "timer":  # an hrtimer (e.g. KVM's emulated guest LAPIC timer)
            timer_fn: IpiFn = payload
            return c.irq_entry_exit_cycles + timer_fn(cpu)
        raise ValueError(f"interrupt kind must be tick, pmi, guest-pmi, ipi, resched or timer, "
                         f"not {kind!r}")


def _host_preset(preset: str | CpuPreset | HostPreset, cpus: int,
                 clusters: Sequence[Sequence[int]] | None) -> HostPreset:
    """The host's clusters: a HostPreset as given, else ``cpus`` CPUs of one CPU preset in one
    cluster or in the ``clusters`` layout (which must partition them)."""
    if isinstance(preset, HostPreset):
        return preset
    cpu_preset = as_preset(preset)
    groups = None if clusters is None else tuple(tuple(sorted(c)) for c in clusters)
    flat = sorted(i for g in groups or () for i in g)
    if groups is not None and flat != list(range(cpus)):
        raise ValueError(f"clusters must partition CPUs 0..{cpus - 1}, "
                         f"not {[list(g) for g in groups]!r}")
    return HostPreset.homogeneous(cpu_preset, cpus, groups)
