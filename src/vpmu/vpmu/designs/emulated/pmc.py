"""``struct kvm_pmc`` of the perf-backed vPMU and the helpers of arch/x86/kvm/pmu.c that
move its value between KVM and its perf event (pmu.c and pmu.h@v6.6: ``pmc_read_counter``,
``pmc_write_counter``, ``pmc_pause_counter``, ``pmc_resume_counter``).

The guest-visible value is ``counter + emulated_counter + perf count`` masked to the width.
Each helper here is a kernel op (a simulation generator) because the perf calls it makes cost
host time on the vCPU's CPU. ``is_paused`` and ``reuse`` select the 2021 and 2019 baselines:
with ``is_paused`` off every helper calls perf even on a paused event (what the 2021 patch
removed); with ``reuse`` off every reprogram releases and re-creates the event (what the 2019
patch removed). Both baselines run on today's deferred KVM_REQ_PMU structure (assumption:
the perf-call pattern, not where it runs, is what the two patches changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpmu.vpmu.design import Gen
from vpmu.vpmu.x86.pmc import X86Pmc

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.perf.event import PerfEvent
    from vpmu.host.perf.kapi import KernelCounterApi


@dataclass(eq=False)
class KvmPmc(X86Pmc):
    """One virtual counter of the perf-backed design: the common ``struct kvm_pmc`` part
    (``X86Pmc``) plus the count KVM added by emulation and the perf event behind it."""

    emulated_counter: int = 0
    perf_event: PerfEvent | None = None
    is_paused: bool = False
    current_config: int = 0
    intr: bool = False

    def __repr__(self) -> str:
        return f"KvmPmc(idx={self.idx}, counter={self.counter:#x})"


class PmcOps:
    """The pmu.c helpers bound to one perf API and the design's options."""

    def __init__(self, kapi: KernelCounterApi, *, is_paused: bool, reuse: bool) -> None:
        self.kapi = kapi
        self.is_paused = is_paused
        self.reuse = reuse

    def __repr__(self) -> str:
        return f"PmcOps(is_paused={self.is_paused}, reuse={self.reuse})"

    def _live(self, pmc: KvmPmc) -> bool:
        """KVM calls perf for this event: it exists and (with is_paused) is not paused."""
        return pmc.perf_event is not None and not (self.is_paused and pmc.is_paused)

    def read_counter(self, cpu: Pcpu, pmc: KvmPmc) -> Gen:
        """pmc_read_counter: counter + emulated + perf_event_read_value unless paused."""
        counter = pmc.counter + pmc.emulated_counter
        if pmc.perf_event is not None and self._live(pmc):
            counter += yield from self.kapi.read_value(cpu, pmc.perf_event)
        return counter & pmc.mask

    def write_counter(self, cpu: Pcpu, pmc: KvmPmc, value: int) -> Gen:
        """pmc_write_counter: rebase ``counter`` so the guest reads ``value`` now, then
        pmc_update_sample_period (perf_event_period unless paused)."""
        pmc.emulated_counter = 0  # a WRMSR is a write, not a write + increment
        now = yield from self.read_counter(cpu, pmc)
        pmc.counter = (pmc.counter + value - now) & pmc.mask
        if pmc.perf_event is not None and self._live(pmc):
            yield from self.kapi.period(cpu, pmc.perf_event, sample_period(pmc, pmc.counter))

    def pause(self, cpu: Pcpu, pmc: KvmPmc) -> Gen:
        """pmc_pause_counter: fold perf's count into ``counter``; True on an emulated
        overflow (the emulated part carried the counter past its width)."""
        counter = pmc.counter
        if pmc.perf_event is not None and self._live(pmc):
            counter += yield from self.kapi.pause(cpu, pmc.perf_event, reset=True)
        prev = counter & pmc.mask
        counter += pmc.emulated_counter
        pmc.counter, pmc.emulated_counter, pmc.is_paused = counter & pmc.mask, 0, True
        return pmc.counter < prev

    def resume(self, cpu: Pcpu, pmc: KvmPmc) -> Gen:
        """pmc_resume_counter: new period, enable; False if there is no event to reuse."""
        if pmc.perf_event is None:
            return False
        yield from self.kapi.period(cpu, pmc.perf_event, sample_period(pmc, pmc.counter))
        yield from self.kapi.enable(cpu, pmc.perf_event)
        pmc.is_paused = False
        return True

    def release(self, cpu: Pcpu, pmc: KvmPmc) -> Gen:
        """pmc_release_perf_event; returns 1 if an event was released (event_count)."""
        if pmc.perf_event is None:
            return 0
        yield from self.kapi.release(cpu, pmc.perf_event)
        pmc.perf_event = None
        return 1

    def stop(self, cpu: Pcpu, pmc: KvmPmc) -> Gen:
        """pmc_stop_counter: keep the value, release the event; 1 if one was released."""
        if pmc.perf_event is None:
            return 0
        pmc.counter = yield from self.read_counter(cpu, pmc)
        pmc.emulated_counter = 0
        return (yield from self.release(cpu, pmc))


def sample_period(pmc: KvmPmc, counter: int) -> int:
    """get_sample_period: events until the counter wraps (a full period at 0)."""
    return (-counter) & pmc.mask or pmc.mask + 1
