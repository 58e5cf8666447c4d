"""A ``perf kvm stat report`` table of a run's VM-exits.

``perf kvm stat`` pairs each ``kvm_exit`` with the vCPU's next ``kvm_entry`` and reports, per
exit reason, the count and the time between the two (the exit's handling time): the table
people paste into vPMU threads. This prints the same table, column for column, from the
``VmExit`` records (whose ``cost_ps`` is exactly that exit-to-entry time), following
tools/perf/builtin-kvm.c print_result; the ``( +- x% )`` figure is perf's relative standard
deviation of the mean (util/stat.c stddev_stats / rel_stddev_stats). ``KvmStat`` folds the
exits in as a run emits them, so the table needs no kept trace.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from vpmu.trace import Record, VmExit

DECODE_STR_LEN = 20
"""perf's width of the event-name column (``decode_str_len``)."""


@dataclass
class _Stats:
    """Welford's running mean and M2, as perf's ``struct stats`` keeps them."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    total_ns: float = 0.0
    min_ns: float = math.inf
    max_ns: float = 0.0

    def update(self, ns: float) -> None:
        self.n += 1
        delta = ns - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (ns - self.mean)
        self.total_ns += ns
        self.min_ns = min(self.min_ns, ns)
        self.max_ns = max(self.max_ns, ns)

    def rel_stddev(self) -> float:
        """100 * stddev of the mean / mean (0 for fewer than two samples)."""
        if self.n < 2 or self.mean == 0:
            return 0.0
        return 100.0 * math.sqrt(self.m2 / (self.n - 1) / self.n) / self.mean


class KvmStat:
    """``perf kvm stat``'s per-reason statistics of the VM-exits of all vCPUs (or of
    ``vcpu``), folded in as the exits are emitted (a trace sink: ``vpmu run --kvm-stat``)."""

    def __init__(self, *, vcpu: int | None = None) -> None:
        self.vcpu = vcpu
        self.stats: dict[str, _Stats] = {}

    def __call__(self, record: Record) -> None:
        """Take one record: a VM-exit of the vCPU(s) counts."""
        if isinstance(record, VmExit) and (self.vcpu is None or record.vcpu == self.vcpu):
            self.stats.setdefault(record.reason, _Stats()).update(record.cost_ps / 1000)

    def rows(self) -> dict[str, _Stats]:
        """Per exit reason, the statistics of its handling time in ns, by count (descending;
        perf's default sort key ``sample``), then by name."""
        return dict(sorted(self.stats.items(), key=lambda kv: (-kv[1].n, kv[0])))

    def report(self) -> str:
        """The text of ``perf kvm stat report --event=vmexit``."""
        rows = self.rows()
        total_n = sum(s.n for s in rows.values())
        total_ns = sum(s.total_ns for s in rows.values())
        who = "all VCPUs" if self.vcpu is None else f"VCPU {self.vcpu}"
        out = [f"Analyze events for all VMs, {who}:", "",
               f"{'VM-EXIT':>{DECODE_STR_LEN}} {'Samples':>10} {'Samples%':>9} {'Time%':>9} "
               f"{'Min Time':>11} {'Max Time':>11} {'Avg time':>16} ", ""]
        for name, s in rows.items():
            out.append(f"{name:>{DECODE_STR_LEN}} {s.n:10d} {100 * s.n / total_n:8.2f}% "
                       f"{100 * s.total_ns / total_ns if total_ns else 0.0:8.2f}% "
                       f"{s.min_ns / 1000:9.2f}us {s.max_ns / 1000:9.2f}us "
                       f"{s.total_ns / s.n / 1000:9.2f}us ( +-{s.rel_stddev():7.2f}% )")
        out += ["", f"Total Samples:{total_n}, Total events handled time:"
                    f"{total_ns / 1000:.2f}us.", ""]
        return "\n".join(out) + "\n"


def _fed(records: Iterable[Record], vcpu: int | None = None) -> KvmStat:
    stat = KvmStat(vcpu=vcpu)
    for r in records:
        stat(r)
    return stat


def kvm_stat_rows(records: Iterable[Record]) -> dict[str, _Stats]:
    """``KvmStat.rows`` of a list of records."""
    return _fed(records).rows()


def kvm_stat_report(records: Iterable[Record], *, vcpu: int | None = None) -> str:
    """The text of ``perf kvm stat report --event=vmexit`` for all VMs (or one vCPU), from a
    list of records."""
    return _fed(records, vcpu).report()
