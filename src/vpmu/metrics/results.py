"""The results' metric sections (DESIGN.md "Metrics vocabulary"), computed from records only.

Every function takes the trace's records and returns plain JSON data with a fixed key order,
so the same run gives byte-identical JSON. Times are reported in ns (floats rounded to 0.1 ns)
and counts as ints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from vpmu.arch.names import names_for
from vpmu.trace import GuestPmi, ModeChange, PerfCall, PmuContext, Record, VmExit


def ns(ps: float) -> float:
    """Picoseconds as the results print times: ns to one decimal."""
    return round(ps / 1000, 1)


def _ranked(counts: Counter[str]) -> dict[str, int]:
    """Most frequent first, ties by name: the order of a kvm_exit histogram."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def records_of(records: Iterable[Record], kind: type[Record]) -> list[Any]:
    """The records of exactly one kind, in order."""
    return [r for r in records if type(r) is kind]


def vm_exits(records: Sequence[Record]) -> dict[str, Any]:
    """Exits: total, by VMX reason, how many the fastpath completed, and their time."""
    exits: list[VmExit] = records_of(records, VmExit)
    by_reason = Counter(e.reason for e in exits)
    return {"total": len(exits), "by_reason": _ranked(by_reason),
            "fastpath": sum(e.fastpath for e in exits),
            "time_ns": ns(sum(e.cost_ps for e in exits))}


def msr_exits(records: Sequence[Record]) -> dict[str, Any]:
    """MSR exits by kernel MSR name and direction, as seed 001's kvm_msr histogram."""
    counts: Counter[str] = Counter()
    name = names_for().name
    for e in records_of(records, VmExit):
        if e.msr >= 0:
            counts[f"{'msr_write' if e.write else 'msr_read'}, {name(e.msr)}"] += 1
    return {"total": sum(counts.values()), "by_msr": _ranked(counts)}


def perf_calls(records: Sequence[Record]) -> dict[str, Any]:
    """Kernel-counter API calls by name, and the host time they took."""
    calls: list[PerfCall] = records_of(records, PerfCall)
    return {"total": len(calls), "by_api": _ranked(Counter(c.api for c in calls)),
            "time_ns": ns(sum(c.cost_ps for c in calls))}


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile."""
    rank = max(1, -(-int(q * len(sorted_values) * 1000) // 1000))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def guest_pmi(records: Sequence[Record]) -> dict[str, Any]:
    """Guest PMIs handled, and the handler latency distribution (delivery to last op)."""
    lat = sorted(p.latency_ps for p in records_of(records, GuestPmi))
    if not lat:
        return {"count": 0, "handler_latency_ns": None, "per_pmi": {}}
    stats = {"mean": ns(sum(lat) / len(lat)), "p50": ns(percentile(lat, 0.5)),
             "p99": ns(percentile(lat, 0.99)), "max": ns(lat[-1]), "min": ns(lat[0])}
    return {"count": len(lat), "handler_latency_ns": stats,
            "per_pmi": per_pmi_msr_ratios(records, len(lat))}


def per_pmi_msr_ratios(records: Sequence[Record], pmis: int) -> dict[str, float]:
    """Seed 001's per-PMI MSR ratios over the whole run (accesses / guest PMIs)."""
    by_msr = msr_exits(records)["by_msr"]
    names = names_for()
    out: dict[str, float] = {}
    for name, msr, direction in names.per_pmi:
        out[name] = round(by_msr.get(f"msr_{direction}, {msr}", 0) / pmis, 3)
    counter_writes = sum(n for key, n in by_msr.items()
                         if key.startswith("msr_write, ") and names.is_counter_name(key[11:]))
    out["counter_writes"] = round(counter_writes / pmis, 3)
    out["rdpmc"] = round(vm_exits(records)["by_reason"].get("RDPMC", 0) / pmis, 3)
    return out


def mode_time_ps(records: Sequence[Record], end_ps: int) -> dict[str, dict[str, int]]:
    """Time each task spent in each mode, from the CPUs' mode changes (task -> mode -> ps)."""
    out: dict[str, dict[str, int]] = {}
    last: dict[int, ModeChange] = {}
    for r in records_of(records, ModeChange):
        prev = last.get(r.cpu)
        if prev is not None:
            slot = out.setdefault(prev.task, {})
            slot[prev.mode] = slot.get(prev.mode, 0) + r.t_ps - prev.t_ps
        last[r.cpu] = r
    for prev in last.values():
        slot = out.setdefault(prev.task, {})
        slot[prev.mode] = slot.get(prev.mode, 0) + max(end_ps - prev.t_ps, 0)
    return out


def overhead(records: Sequence[Record], end_ps: int, vcpu_tasks: Sequence[str]) -> dict[str, Any]:
    """What virtualizing the PMU cost the vCPUs: time in KVM against time in the guest.

    ``kvm_per_guest_s_ns``: host time in KVM per second of guest execution; ``slowdown``: how
    much longer the vCPUs were busy than their guest code ran (a proxy for the slowdown
    against the same run with no exits, measured within one run). The exit time is split by
    cause: the perf calls KVM made, a mediated PMU's context switches (``pmu_switch``: puts
    inside exits are taken out of the exit handling, so nothing counts twice), and the rest
    of the exit handling.
    """
    modes = mode_time_ps(records, end_ps)
    guest = sum(modes.get(t, {}).get(m, 0) for t in vcpu_tasks
                for m in ("guest-user", "guest-kernel"))
    kvm = sum(modes.get(t, {}).get("in-kvm", 0) for t in vcpu_tasks)
    exits_ps = sum(e.cost_ps for e in records_of(records, VmExit))
    perf_ps = sum(c.cost_ps for c in records_of(records, PerfCall))
    switches: list[PmuContext] = records_of(records, PmuContext)
    in_exits_ps = sum(s.cost_ps for s in switches if s.state == "host" and s.why in EXIT_PUTS)
    return {
        "guest_ns": ns(guest), "kvm_ns": ns(kvm),
        "kvm_per_guest_s_ns": ns(kvm * 10**12 / guest) if guest else None,
        "slowdown": round((guest + kvm) / guest - 1, 5) if guest else None,
        "by_cause_ns": {"perf_calls": ns(perf_ps),
                        "exit_handling": ns(exits_ps - perf_ps - in_exits_ps),
                        "pmu_switch": ns(sum(s.cost_ps for s in switches))},
        "pmu_switch": pmu_switch(records),
    }


EXIT_PUTS = ("run-loop", "vm-entry", "vcpu-load")
"""Causes of a put made inside a VM-exit's handling (its time is also in the exit's cost)."""


def pmu_switch(records: Sequence[Record]) -> dict[str, Any]:
    """The mediated PMU context switches: ``switches`` (all), ``loads`` ("guest"), ``puts``
    ("host"), ``time_ns`` (their summed cost), ``per_switch_ns`` (the mean cost of one load
    or put: what each transition costs instead of exits), ``in_exits_ns`` (the part spent
    by puts inside VM-exit handling, so exit time can be split without counting it twice)
    and ``by_why`` (cause -> count, most frequent first, ties by name)."""
    switches: list[PmuContext] = records_of(records, PmuContext)
    total = sum(s.cost_ps for s in switches)
    return {"switches": len(switches),
            "loads": sum(s.state == "guest" for s in switches),
            "puts": sum(s.state == "host" for s in switches),
            "time_ns": ns(total),
            "per_switch_ns": ns(total / len(switches)) if switches else None,
            "in_exits_ns": ns(sum(s.cost_ps for s in switches
                                   if s.state == "host" and s.why in EXIT_PUTS)),
            "by_why": _ranked(Counter(s.why for s in switches))}
