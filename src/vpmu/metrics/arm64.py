"""The ``arm64`` block: when an arm64 VM's vCPU counters count, and what migrations do to them.

Folded from ``VcpuLoad`` / ``VcpuPut`` (a vCPU's loads and puts, with whether the VM's host
PMU covers the CPU and the guest's cycle counter), ``TaskMigrate`` (the scheduler's moves) and
the CPUs' timelines (a listener: each segment a vCPU thread spends in guest mode):

- ``coverage``: of the guest's run time (guest user + guest kernel), the fraction spent on a
  CPU the VM's host PMU covers: the time its vPMU counters could count (the VM's perf events
  count only on that PMU's CPUs); per vCPU and in total, None without guest time;
- ``migrations``: the vCPU threads' moves by cluster pair ("0->1": from cluster 0 to 1);
- ``cycle_counter``: the guest's PMCCNTR_EL0 sampled at each load and put while it has a perf
  event (``samples``); a load whose value differs from the same vCPU's previous put is a
  ``discontinuity`` (the guest did not run in between, so the value should not move), and
  ``max_jump`` the largest such difference in cycles. A counter frozen on a CPU its PMU does
  not cover is no jump: it shows in ``coverage``;
- ``fail_entry``: KVM_RUN failures (``FailEntry``: KVM_EXIT_FAIL_ENTRY with
  CPU_UNSUPPORTED, a vCPU of a VM with an explicit PMU loaded outside its CPUs).

The block is None when no ``VcpuLoad`` was seen (every x86 run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from vpmu.metrics.timeline import CpuTimeline
from vpmu.metrics.units import ns
from vpmu.trace.records import FailEntry, TaskMigrate, VcpuLoad, VcpuPut

GUEST_MODES = frozenset({"guest-user", "guest-kernel"})
"""``vpmu.host.modes.Mode`` values that are guest code."""
MASK64 = (1 << 64) - 1


class Arm64Coverage:
    """A timeline listener and the feed of the arm64 records (a ``RunMetrics`` part)."""

    TOTALS: ClassVar[tuple[str, ...]] = ("guest_ps", "counted_ps", "moves", "samples",
                                         "jumps", "fails")
    """Its fields, all sums (``vpmu.metrics.period.Totals``)."""

    def __init__(self) -> None:
        self.counting: dict[tuple[str, int], bool] = {}
        """(vCPU thread, CPU) -> whether its counters count there (its last load there)."""
        self.pmu: dict[str, str] = {}
        """vCPU thread -> the VM's host PMU at its last load."""
        self.guest_ps: dict[str, int] = {}
        self.counted_ps: dict[str, int] = {}
        self.moves: dict[str, dict[str, int]] = {}
        """Task -> cluster pair -> migrations (every task; the block shows the vCPUs')."""
        self.samples: dict[str, int] = {}
        self.jumps: dict[str, int] = {}
        self.max_jump: dict[str, int] = {}
        self.fails: dict[str, int] = {}
        """vCPU thread -> its FailEntry records."""
        self.last_put: dict[str, int] = {}
        """vCPU thread -> its cycle counter at its last put (-1: none)."""

    def __repr__(self) -> str:
        return f"Arm64Coverage(vcpus={len(self.pmu)})"

    def segment(self, tl: CpuTimeline, start_ps: int, end_ps: int, in_context: bool) -> None:
        """A vCPU thread's guest-mode time, counted or not."""
        m = tl.mode
        if not self.pmu or m is None or m.mode not in GUEST_MODES:
            return
        counting = self.counting.get((m.task, tl.cpu))
        if counting is None:
            return
        self.guest_ps[m.task] = self.guest_ps.get(m.task, 0) + end_ps - start_ps
        if counting:
            self.counted_ps[m.task] = self.counted_ps.get(m.task, 0) + end_ps - start_ps

    def load(self, r: VcpuLoad) -> None:
        """A vcpu_load: where it counts from now; the cycle counter's continuity."""
        self.counting[(r.task, r.cpu)] = r.counting
        self.pmu[r.task] = r.pmu
        self._sample(r.task, r.cycles)
        put = self.last_put.get(r.task, -1)
        if r.cycles >= 0 and put >= 0:
            diff = (r.cycles - put) & MASK64
            jump = min(diff, MASK64 + 1 - diff)
            if jump:
                self.jumps[r.task] = self.jumps.get(r.task, 0) + 1
                self.max_jump[r.task] = max(self.max_jump.get(r.task, 0), jump)

    def put(self, r: VcpuPut) -> None:
        """A vcpu_put: the value the next load should find."""
        self._sample(r.task, r.cycles)
        self.last_put[r.task] = r.cycles

    def _sample(self, task: str, cycles: int) -> None:
        if cycles >= 0:
            self.samples[task] = self.samples.get(task, 0) + 1

    def migrate(self, r: TaskMigrate) -> None:
        """A task moved between CPUs (perhaps clusters)."""
        pair = f"{r.src_cluster}->{r.cluster}"
        slot = self.moves.setdefault(r.task, {})
        slot[pair] = slot.get(pair, 0) + 1

    def fail_entry(self, r: FailEntry) -> None:
        """KVM_RUN failed with FAIL_ENTRY (the vCPU thread is ``vm/vcpuN``)."""
        task = f"{r.vm}/vcpu{r.vcpu}"
        self.fails[task] = self.fails.get(task, 0) + 1

    def fixed(self) -> tuple[Any, ...]:
        """What is not a sum (``vpmu.metrics.period``)."""
        return tuple(sorted(self.max_jump.items())), tuple(sorted(self.last_put.items()))

    def section(self, vcpu_tasks: Sequence[str],
                partition: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The results' ``arm64`` block (None when no arm64 vCPU was loaded), with a
        partitioned PMU's ``partition`` block (``vpmu.metrics.partition``) when there is
        one."""
        tasks = [t for t in vcpu_tasks if t in self.pmu]
        if not tasks:
            return None
        per = {t: self._vcpu(t, [t]) for t in tasks}
        out = {**self._vcpu(None, tasks), "vcpus": per}
        if partition is not None:
            out["partition"] = partition
        return out

    def _vcpu(self, task: str | None, tasks: list[str]) -> dict[str, Any]:
        guest = sum(self.guest_ps.get(t, 0) for t in tasks)
        counted = sum(self.counted_ps.get(t, 0) for t in tasks)
        moves: dict[str, int] = {}
        for t in tasks:
            for pair, n in self.moves.get(t, {}).items():
                moves[pair] = moves.get(pair, 0) + n
        out: dict[str, Any] = {"pmu": self.pmu[task]} if task is not None else {}
        out.update({
            "coverage": round(counted / guest, 5) if guest else None,
            "guest_ns": ns(guest), "counted_ns": ns(counted),
            "migrations": dict(sorted(moves.items())),
            "cycle_counter": {
                "samples": sum(self.samples.get(t, 0) for t in tasks),
                "discontinuities": sum(self.jumps.get(t, 0) for t in tasks),
                "max_jump": max((self.max_jump.get(t, 0) for t in tasks), default=0)},
            "fail_entry": sum(self.fails.get(t, 0) for t in tasks),
        })
        return out
