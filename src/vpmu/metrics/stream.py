"""A run's metrics, accumulated as its records are emitted: ``RunMetrics`` is the sink a
scenario run subscribes to its trace, so no record has to be kept for the results.

Each record goes to the accumulators of its kind (``vpmu.metrics.counts``, the CPUs'
timelines of ``vpmu.metrics.timeline`` with their listeners, ``vpmu.metrics.blind`` and
``vpmu.metrics.exposure``); ``sections`` reads the results' sections once the run has ended.
The pure functions of ``vpmu.metrics`` are the same accumulators fed a list of records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from operator import attrgetter
from typing import Any

from vpmu.metrics.arm64 import Arm64Coverage
from vpmu.metrics.blind import HostProfiling
from vpmu.metrics.counts import CallCounts, ExitCounts, PmiLatencies, Switches
from vpmu.metrics.exposure import Leaks, Pollution
from vpmu.metrics.lbr import LbrSwitches, LbrUse, lbr_section
from vpmu.metrics.partition import PartitionUse
from vpmu.metrics.period import Sums, Totals
from vpmu.metrics.timeline import ModeTime, Timelines
from vpmu.metrics.units import ns
from vpmu.metrics.vms import PerVm
from vpmu.trace import (
    CounterRead,
    GuestPmi,
    GuestSelectors,
    LbrContext,
    LbrOwner,
    LbrRead,
    ModeChange,
    PerfCall,
    PerfOpen,
    PmuContext,
    Record,
    VmExit,
)
from vpmu.trace.records import (
    FailEntry,
    PmuPartition,
    TaskMigrate,
    VcpuLoad,
    VcpuPut,
    shifted,
)

_by_time = attrgetter("t_ps")


class RunMetrics:
    """Every metric section of one run, folded record by record (call it with each record).

    ``records`` counts every record, of any kind. The timelines need each CPU's instant
    records in time order, as a run emits them; ``of`` sorts a list first.
    """

    def __init__(self) -> None:
        self.records = 0
        self.exits, self.calls = ExitCounts(), CallCounts()
        self.pmis, self.switches = PmiLatencies(), Switches()
        self.mode_time, self.pollution = ModeTime(), Pollution()
        self.host_profiling, self.leaks = HostProfiling(), Leaks()
        self.lbr, self.lbr_use = LbrSwitches(), LbrUse()
        self.arm64 = Arm64Coverage()
        self.partition = PartitionUse()
        self.per_vm = PerVm()
        self.timelines = Timelines((self.mode_time, self.pollution, self.host_profiling,
                                    self.arm64))
        self._feeds: dict[type[Record], tuple[Callable[[Any], None], ...]] = {
            VmExit: (self.exits.feed, self.host_profiling.exit, self.per_vm.exit),
            PerfCall: (self.calls.feed,),
            GuestPmi: (self.pmis.feed, self.per_vm.pmi),
            PmuContext: (self.switches.feed, self.timelines.context),
            ModeChange: (self.timelines.mode,),
            GuestSelectors: (self.timelines.selectors,),
            PerfOpen: (self.host_profiling.open,),
            CounterRead: (self.leaks.feed,),
            LbrContext: (self.lbr.feed,),
            LbrOwner: (self.lbr_use.owner,),
            LbrRead: (self.lbr_use.read, self.leaks.lbr),
            VcpuLoad: (self.arm64.load,),
            VcpuPut: (self.arm64.put,),
            TaskMigrate: (self.arm64.migrate,),
            FailEntry: (self.arm64.fail_entry,),
            PmuPartition: (self.switches.feed, self.partition.feed),
        }
        self.end_ps: int | None = None
        """When the run ended (set by ``finish``)."""
        self.periods_added = 0
        """Repeated periods added at once rather than folded record by record (``repeat``)."""
        self._totals = Totals([(self, ("records",)),
                               *((acc, acc.TOTALS) for acc in (self.exits, self.calls, self.pmis,
                                                               self.switches, self.mode_time,
                                                               self.lbr, self.lbr_use,
                                                               self.arm64, self.partition,
                                                               self.per_vm))])

    def __repr__(self) -> str:
        return f"RunMetrics(records={self.records}, end_ps={self.end_ps})"

    def __call__(self, record: Record) -> None:
        """Fold one record in."""
        self.records += 1
        for feed in self._feeds.get(type(record), ()):
            feed(record)

    def repeat(self, block: Sequence[Record], times: int, shift_ps: int) -> None:
        """``block`` ``times`` more times, the k-th copy ``k * shift_ps`` later, as if each
        copy were folded in (``Trace.repeat``, from an idle fast-forward): two copies are
        folded, the second measured, and the rest added at once (``vpmu.metrics.period``)."""
        copies = shifted(block, times, shift_ps)
        if times >= 3:
            for r in islice(copies, len(block)):
                self(r)
            before = self._mark()
            for r in islice(copies, len(block)):
                self(r)
            if self._fixed() == before[0]:
                self._skip(before, times - 2, shift_ps)
                return
        for r in copies:
            self(r)

    def _fixed(self) -> tuple[Any, ...]:
        return (self.host_profiling.fixed(), self.pollution.fixed(), self.leaks.fixed(),
                self.arm64.fixed(), self.partition.fixed())

    def _mark(self) -> tuple[tuple[Any, ...], Sums, dict[int, Any], dict[int, Any]]:
        return (self._fixed(), self._totals.read(),
                {cpu: tl.mark() for cpu, tl in self.timelines.cpus.items()},
                {cpu: fp.mark() for cpu, fp in self.host_profiling.fastpath.items()})

    def _skip(self, before: tuple[tuple[Any, ...], Sums, dict[int, Any], dict[int, Any]],
              periods: int, period_ps: int) -> None:
        """Add ``periods`` more periods like the one folded since ``before`` was marked."""
        _, sums, timelines, fastpath = before
        self.periods_added += periods
        self._totals.add(sums, self._totals.read(), periods)
        for cpu, tl in self.timelines.cpus.items():
            if cpu in timelines:
                tl.shift(timelines[cpu], periods, period_ps)
        for cpu, fp in self.host_profiling.fastpath.items():
            if cpu in fastpath:
                fp.shift(fastpath[cpu], periods, period_ps)

    @classmethod
    def of(cls, records: Iterable[Record]) -> RunMetrics:
        """The metrics of a list of records, fed in time order (a stable sort by ``t_ps``:
        each CPU's records of a kind keep their order)."""
        metrics = cls()
        for r in sorted(records, key=_by_time):
            metrics(r)
        return metrics

    def finish(self, end_ps: int) -> None:
        """The run ended at ``end_ps``: each CPU's last state lasts until then. Once only
        (again with the same end is nothing; with another, ValueError)."""
        if self.end_ps is None:
            self.timelines.finish(end_ps)
            self.end_ps = end_ps
        elif end_ps != self.end_ps:
            raise ValueError(f"these metrics ended at {self.end_ps} ps, not {end_ps}")

    def sections(self, end_ps: int, vcpu_tasks: Sequence[str]) -> dict[str, Any]:
        """The results' metric sections of a run that ended at ``end_ps`` (``vcpu_tasks``:
        the vCPU threads' names), in the results' key order."""
        self.finish(end_ps)
        return {
            "vm_exits": self.exits.vm_exits(),
            "msr_exits": self.exits.msr_exits(),
            "perf_calls": self.calls.perf_calls(),
            "guest_pmi": self.pmis.guest_pmi(self.exits),
            "overhead": self.overhead(vcpu_tasks),
            "host_profiling": self.host_profiling.section(),
            "leaks": self.leaks.leaks(),
            "pollution": self.pollution.pollution(),
            "lbr": lbr_section(self.lbr, self.lbr_use, self.guest_ps(vcpu_tasks)),
            "arm64": self.arm64.section(vcpu_tasks,
                                        self.partition.section(vcpu_tasks, self.end_ps)),
        }

    def guest_ps(self, vcpu_tasks: Sequence[str]) -> int:
        """The vCPUs' guest execution time (guest-user and guest-kernel), after ``finish``."""
        modes = self.mode_time.ps
        return sum(modes.get(t, {}).get(m, 0) for t in vcpu_tasks
                   for m in ("guest-user", "guest-kernel"))

    def overhead(self, vcpu_tasks: Sequence[str]) -> dict[str, Any]:
        """What virtualizing the PMU cost the vCPUs: time in KVM against time in the guest
        (after ``finish``).

        ``kvm_per_guest_s_ns``: host time in KVM per second of guest execution; ``slowdown``:
        how much longer the vCPUs were busy than their guest code ran (a proxy for the
        slowdown against the same run with no exits, measured within one run). The exit time
        is split by cause: the perf calls KVM made, a mediated PMU's context switches
        (``pmu_switch``: puts inside exits are taken out of the exit handling, so nothing
        counts twice), and the rest of the exit handling.
        """
        modes = self.mode_time.ps
        guest = self.guest_ps(vcpu_tasks)
        kvm = sum(modes.get(t, {}).get("in-kvm", 0) for t in vcpu_tasks)
        perf_ps, sw = self.calls.cost_ps, self.switches
        return {
            "guest_ns": ns(guest), "kvm_ns": ns(kvm),
            "kvm_per_guest_s_ns": ns(kvm * 10**12 / guest) if guest else None,
            "slowdown": round((guest + kvm) / guest - 1, 5) if guest else None,
            "by_cause_ns": {"perf_calls": ns(perf_ps),
                            "exit_handling": ns(self.exits.cost_ps - perf_ps - sw.in_exits_ps),
                            "pmu_switch": ns(sw.cost_ps)},
            "pmu_switch": sw.pmu_switch(),
        }
