"""A ``perf kvm stat report`` table of a run's VM-exits.

``perf kvm stat`` pairs each ``kvm_exit`` with the vCPU's next ``kvm_entry`` and reports, per
exit reason, the count and the time between the two (the exit's handling time): the table
people paste into vPMU threads. This prints the same table, column for column, from the
``VmExit`` records (whose ``cost_ps`` is exactly that exit-to-entry time), following
tools/perf/builtin-kvm.c print_result; the ``( +- x% )`` figure is perf's relative standard
deviation of the mean (util/stat.c stddev_stats / rel_stddev_stats).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def kvm_stat_rows(records: Sequence[Record]) -> dict[str, _Stats]:
    """Per exit reason, the statistics of its handling time in ns, by count (descending; perf's
    default sort key ``sample``), then by name."""
    stats: dict[str, _Stats] = {}
    for r in records:
        if isinstance(r, VmExit):
            stats.setdefault(r.reason, _Stats()).update(r.cost_ps / 1000)
    return dict(sorted(stats.items(), key=lambda kv: (-kv[1].n, kv[0])))


def kvm_stat_report(records: Sequence[Record], *, vcpu: int | None = None) -> str:
    """The text of ``perf kvm stat report --event=vmexit`` for all VMs (or one vCPU)."""
    picked = [r for r in records if isinstance(r, VmExit) and (vcpu is None or r.vcpu == vcpu)]
    rows = kvm_stat_rows(picked)
    total_n = sum(s.n for s in rows.values())
    total_ns = sum(s.total_ns for s in rows.values())
    who = "all VCPUs" if vcpu is None else f"VCPU {vcpu}"
    out = [f"Analyze events for all VMs, {who}:", "",
           f"{'VM-EXIT':>{DECODE_STR_LEN}} {'Samples':>10} {'Samples%':>9} {'Time%':>9} "
           f"{'Min Time':>11} {'Max Time':>11} {'Avg time':>16} ", ""]
    for name, s in rows.items():
        out.append(f"{name:>{DECODE_STR_LEN}} {s.n:10d} {100 * s.n / total_n:8.2f}% "
                   f"{100 * s.total_ns / total_ns if total_ns else 0.0:8.2f}% "
                   f"{s.min_ns / 1000:9.2f}us {s.max_ns / 1000:9.2f}us "
                   f"{s.total_ns / s.n / 1000:9.2f}us ( +-{s.rel_stddev():7.2f}% )")
    out += ["", f"Total Samples:{total_n}, Total events handled time:{total_ns / 1000:.2f}us.",
            ""]
    return "\n".join(out) + "\n"
