"""The guest OS each vCPU of a scenario runs: Linux with the tool and workload it names.

A ``[[vm.guest]]`` entry applies to one vCPU (or ``"all"``); a vCPU no entry names runs an
empty guest (its thread ends at once). The workload of one run is ``duration_ms`` (less the
start delay) of the named workload at bare-metal speed, split evenly over ``runs``: a
built-in one or one of the scenario's ``[[workload]]`` tables (``workloads``), its phases in
sequence (``vpmu.workloads.table``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from vpmu.arch.presets import boot_preset
from vpmu.guest.linux import LinuxGuest, PerfRecord, PerfStat
from vpmu.guest.linux.lbr_sampler import LbrSampler
from vpmu.guest.os import GuestOs
from vpmu.guest.port import Execute, GuestGen, Rdtsc, WaitPmi
from vpmu.linux.perf import DEFAULT_FREQ
from vpmu.scenario.schema import GuestSpec, VmSpec
from vpmu.workloads.streams import Stream
from vpmu.workloads.table import Workload, resolve, truth


def _spec_for(vm: VmSpec, vcpu: int) -> GuestSpec | None:
    for g in vm.guest:
        if g.vcpu in ("all", vcpu):
            return g
    return None


def has_guest(vm: VmSpec, vcpu: int) -> bool:
    """A ``[[vm.guest]]`` entry names vCPU ``vcpu`` (else its guest ends at once)."""
    return _spec_for(vm, vcpu) is not None


def _one_run(g: GuestSpec, duration_ms: float, core_mhz: int,
             workloads: Mapping[str, Workload] | None) -> list[Stream]:
    """The workload of one run: its share of (duration - start) of the workload's cycles,
    as the streams of its phases in order."""
    cycles = int(core_mhz * 1000 * (duration_ms - g.start_ms)) // g.runs
    return resolve(g.workload, workloads).streams(max(cycles, 1))


def _program(streams: list[Stream]) -> Stream | Callable[[], GuestGen]:
    """What the guest runs: the one stream itself, or a program executing each in turn."""
    if len(streams) == 1:
        return streams[0]

    def program() -> GuestGen:
        for s in streams:
            yield Execute(s)
    return program


def _tool(g: GuestSpec) -> PerfRecord | PerfStat | LbrSampler | None:
    if g.tool == "perf-record":
        # no result reads the samples: a run keeps none, so its memory does not grow with
        # its duration
        return PerfRecord(g.events, freq=g.sample_freq or DEFAULT_FREQ, period=g.period,
                          max_sample_rate=g.max_sample_rate, keep_samples=False,
                          branch_stack=g.branch_stack)
    if g.tool == "perf-stat":
        return PerfStat(g.events)
    if g.tool == "lbr-sampler":
        return LbrSampler()
    return None


def guest_os_for(vm: VmSpec, vcpu: int, duration_ms: float, preset: str, *,
                 workloads: Mapping[str, Workload] | None = None) -> GuestOs:
    """Linux for vCPU ``vcpu`` of ``vm`` as its ``[[vm.guest]]`` entry says; ``workloads``:
    the scenario's own (``Scenario.workloads()``)."""
    p = boot_preset(preset)
    g = _spec_for(vm, vcpu)
    # The vendor is x86's fallback for a CPUID leaf 0 without a vendor string; an Arm guest
    # probes its PMU with MRS and needs none.
    vendor = p.caps.vendor if p.caps.arch == "x86" else None
    if g is None:
        return LinuxGuest(vendor=vendor, tsc_mhz=p.tsc_mhz, tick_hz=0)
    work = _program(_one_run(g, duration_ms, p.core_mhz, workloads))
    linux = LinuxGuest(workload=work, tool=_tool(g), runs=g.runs, vendor=vendor,
                       tsc_mhz=p.tsc_mhz, tick_hz=g.tick_hz,
                       perf_cpu_time_max_percent=g.perf_cpu_time_max_percent,
                       mux_interval_ms=g.mux_interval_ms)
    return DelayedStart(linux, round(g.start_ms * 1e6)) if g.start_ms > 0 else linux


class DelayedStart:
    """A guest that idles (HLT) for ``delay_ns`` before its kernel starts: ``start_ms``."""

    def __init__(self, inner: LinuxGuest, delay_ns: int) -> None:
        self.inner, self.delay_ns = inner, delay_ns
        self.tick_hz = inner.tick_hz

    def __repr__(self) -> str:
        return f"DelayedStart({self.inner!r}, delay_ns={self.delay_ns})"

    def main(self) -> GuestGen:
        """Idle until the start time (nothing can raise a PMI yet), then the kernel."""
        start = yield Rdtsc()
        end = start + self.delay_ns * self.inner_tsc_mhz // 1000
        now = start
        while now < end:
            yield WaitPmi((end - now) * 1000 // self.inner_tsc_mhz + 1)
            now = yield Rdtsc()
        return (yield from self.inner.main())

    @property
    def inner_tsc_mhz(self) -> int:
        """The TSC rate the guest was given."""
        assert self.inner.tsc_mhz is not None
        return self.inner.tsc_mhz

    def on_pmi(self) -> GuestGen | None:
        """The kernel's handler."""
        return self.inner.on_pmi()

    def on_tick(self) -> GuestGen | None:
        """The kernel's timer (it has not booted yet while idling, so it does nothing)."""
        return self.inner.on_tick()


def workload_truth(vm: VmSpec, vcpu: int, duration_ms: float, preset: str, *,
                   workloads: Mapping[str, Workload] | None = None) -> dict[str, int]:
    """The exact event totals of the workload a vCPU runs over all its runs: the sum of its
    phases' streams."""
    g = _spec_for(vm, vcpu)
    if g is None:
        return {}
    one = truth(_one_run(g, duration_ms, boot_preset(preset).core_mhz, workloads))
    return {k: v * g.runs for k, v in one.items()}
