"""Rich tables of results: one column per run, the metrics users compare."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


TOP_MSRS = 14
"""MSR rows a summary shows (the most accessed across the runs compared)."""


def top_msrs(runs: Sequence[dict[str, Any]], n: int = TOP_MSRS) -> list[str]:
    """The ``n`` MSR-exit names with the largest count in any run, most first, so that every
    run's column shows the same rows."""
    best: dict[str, int] = {}
    for r in runs:
        for name, count in r["msr_exits"]["by_msr"].items():
            best[name] = max(best.get(name, 0), count)
    return sorted(best, key=lambda k: -best[k])[:n]


def summary_rows(data: dict[str, Any],
                 msr_names: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """(metric, value) rows of one run's results, in reading order; ``msr_names`` picks the
    MSR rows (default: this run's top ones)."""
    pmi = data["guest_pmi"]
    lat = pmi["handler_latency_ns"] or {}
    rows: list[tuple[str, Any]] = [
        ("simulated end (ms)", data["sim"]["end_ms"]),
        ("VM-exits", data["vm_exits"]["total"]),
    ]
    rows += [(f"  {reason}", n) for reason, n in data["vm_exits"]["by_reason"].items()]
    rows += [("PMU/APIC MSR exits", data["msr_exits"]["total"])]
    by_msr = data["msr_exits"]["by_msr"]
    names = top_msrs([data]) if msr_names is None else msr_names
    rows += [(f"  {name}", by_msr.get(name, 0)) for name in names]
    rows += [("perf calls", data["perf_calls"]["total"])]
    rows += [(f"  {api}", n) for api, n in data["perf_calls"]["by_api"].items()]
    rows += [("guest PMIs", pmi["count"]), ("PMI handler latency mean (ns)", lat.get("mean")),
             ("  p50 (ns)", lat.get("p50")), ("  p99 (ns)", lat.get("p99")),
             ("  max (ns)", lat.get("max"))]
    rows += [(f"  per PMI: {k}", v) for k, v in pmi["per_pmi"].items()]
    ov = data["overhead"]
    rows += [("KVM time per guest second (ns)", ov["kvm_per_guest_s_ns"]),
             ("vCPU slowdown", ov["slowdown"]),
             ("  perf-call time (ns)", ov["by_cause_ns"]["perf_calls"]),
             ("  exit-handling time (ns)", ov["by_cause_ns"]["exit_handling"])]
    rows += _mediated_rows(data)
    rows += _lbr_rows(data)
    rows += _arm64_rows(data)
    rows += [("accuracy: worst |error|", data["accuracy"]["worst_abs_error"])]
    return rows


def _arm64_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Seed 004 on Arm hosts: how much of the guest's time its counters counted, across
    which migrations, and KVM_RUN's entry failures (rows only when present)."""
    arm = data.get("arm64")
    if not arm:
        return []
    cc = arm["cycle_counter"]
    rows: list[tuple[str, Any]] = [("vPMU coverage (guest time counted)", arm["coverage"])]
    rows += [(f"  {vcpu}", row["coverage"]) for vcpu, row in arm["vcpus"].items()]
    rows += [("vCPU migrations", sum(arm["migrations"].values()))]
    rows += [(f"  cluster {pair}", n) for pair, n in arm["migrations"].items()]
    rows += [("cycle counter discontinuities", cc["discontinuities"]),
             ("  largest jump (cycles)", cc["max_jump"]),
             ("KVM_RUN FAIL_ENTRY", arm["fail_entry"])]
    return rows


def _lbr_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Guest LBR stack saves and restores by save point (rows only when present)."""
    lbr = data.get("lbr")
    if not lbr:
        return []
    rows: list[tuple[str, Any]] = [("guest LBR saves + restores", lbr["saves"] + lbr["restores"]),
                                   ("  LBR save/restore time (ns)", lbr["time_ns"])]
    for why, row in lbr["by_why"].items():
        rows += [(f"  {why}: saves", row["saves"]), (f"  {why}: restores", row["restores"]),
                 (f"  {why}: cycles per guest s", row["cycles_per_guest_s"])]
    return rows


def _mediated_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """PMU context switches, blind spots, leaks and pollution (rows only when present)."""
    rows: list[tuple[str, Any]] = []
    sw = data["overhead"].get("pmu_switch") or {}
    if sw:
        rows += [("  PMU switch time (ns)", data["overhead"]["by_cause_ns"]["pmu_switch"]),
                 ("PMU context switches (loads + puts)", sw["switches"]),
                 ("  per switch (ns)", sw["per_switch_ns"])]
    hp = data.get("host_profiling")
    if hp:
        rows += [("host events blind (ns)", hp["blind_ns_total"]),
                 ("  worst gap (ns)", hp["worst_gap_ns"])]
        rows += [(f"  blind fraction cpu{e['cpu']} {e['name']}", e["blind_fraction"])
                 for e in hp["events"]]
        rows += [("  host events refused", len(hp["refused"]))] if hp["refused"] else []
    if data.get("leaks"):
        rows += [("leaked guest values seen", data["leaks"]["count"])]
    if data.get("pollution"):
        rows += [("host time with guest selectors on (ns)", data["pollution"]["host_ns"]),
                 ("  counting host code (ns)", data["pollution"]["counting_ns"])]
    return rows


def summary_table(runs: Sequence[dict[str, Any]], *, title: str,
                  labels: Sequence[str] | None = None) -> Table:
    """Metrics side by side; rows missing from a run show '-'."""
    table = Table(title=title)
    table.add_column("metric")
    names = labels or [r["design"] or "-" for r in runs]
    for name in names:
        table.add_column(name, justify="right")
    msr_names = top_msrs(runs)
    rows = [summary_rows(r, msr_names) for r in runs]
    per_run = [dict(r) for r in rows]
    order = merged_order(rows)
    for key in order:
        table.add_row(key, *(fmt(p.get(key)) for p in per_run))
    return table


def merged_order(rows: Sequence[list[tuple[str, Any]]]) -> list[str]:
    """Row keys of several runs in one order: a key only a later run has goes just before
    the next of that run's keys already placed (so a section's extra rows stay under its
    heading, after the rows the earlier runs have)."""
    order: list[str] = []
    for run_rows in rows:
        keys = [key for key, _ in run_rows]
        for i, key in enumerate(keys):
            if key not in order:
                after = next((k for k in keys[i + 1:] if k in order), None)
                order.insert(len(order) if after is None else order.index(after), key)
    return order
