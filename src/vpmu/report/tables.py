"""Rich tables of results: one column per run, the metrics users compare.

Every row's label names its unit (ms, ns, %, or a count), so no figure stands without one;
times the results give in ns are shown in the unit that reads best (a KVM time per guest
second of 1,370,333,222.7 ns is 1,370.3 ms). A row that does not apply to a run shows "n/a"
(``NA``): PMU switch rows where no guest PMU context was ever loaded, latencies where no PMI
was delivered, a baseline that was not measured. "-" is a row another run has and this one
lacks. The table has no vertical rules and its metric labels are short, so three designs fit
in 80 columns (a piped terminal).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from rich import box
from rich.table import Table


class _NotApplicable:
    """A row that does not apply to a run (shown "n/a"; not a zero)."""

    def __repr__(self) -> str:
        return "NA"


NA: Final = _NotApplicable()


def fmt(value: Any) -> str:
    """A figure as the tables print it: thousands separators, one decimal from 10 up."""
    if value is NA:
        return "n/a"
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def pct(fraction: float | None) -> Any:
    """A fraction as a signed percentage to 0.1 (0.05 -> "+5.0"), or NA."""
    return NA if fraction is None else f"{fraction * 100:+,.1f}"


def ms(ns_value: float | None) -> Any:
    """ns as ms to 0.001, or NA."""
    return NA if ns_value is None else round(ns_value / 1e6, 3)


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


def msr_label(name: str) -> str:
    """``msr_write, MSR_X`` (the kvm_msr histogram's key) as ``wr MSR_X``: short enough for
    the table, still the kernel's MSR name."""
    way, _, msr = name.partition(", ")
    return f"{'wr' if way == 'msr_write' else 'rd'} {msr}"


def summary_rows(data: dict[str, Any],
                 msr_names: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """(metric with its unit, value) rows of one run's results, in reading order;
    ``msr_names`` picks the MSR rows (default: this run's top ones)."""
    ov = data["overhead"]
    rows: list[tuple[str, Any]] = [
        ("simulated end (ms)", data["sim"]["end_ms"]),
        ("guest time vs unprofiled (%)", pct(ov.get("vs_unprofiled"))),
        ("guest time vs bare metal (%)", pct(ov.get("vs_bare_metal"))),
        ("VM-exits", data["vm_exits"]["total"]),
    ]
    rows += [(f"  {reason}", n) for reason, n in data["vm_exits"]["by_reason"].items()]
    rows += [("PMU/APIC MSR exits", data["msr_exits"]["total"])]
    by_msr = data["msr_exits"]["by_msr"]
    names = top_msrs([data]) if msr_names is None else msr_names
    rows += [(f"  {msr_label(name)}", by_msr.get(name, 0)) for name in names]
    rows += [("perf calls", data["perf_calls"]["total"])]
    rows += [(f"  {api}", n) for api, n in data["perf_calls"]["by_api"].items()]
    rows += _pmi_rows(data)
    rows += [("KVM time per guest s (ms)", ms(ov["kvm_per_guest_s_ns"])),
             ("KVM time / guest time (%)", pct(ov["slowdown"])),
             ("  perf-call time (ms)", ms(ov["by_cause_ns"]["perf_calls"])),
             ("  exit-handling time (ms)", ms(ov["by_cause_ns"]["exit_handling"]))]
    rows += _mediated_rows(data)
    rows += _lbr_rows(data)
    rows += _arm64_rows(data)
    rows += _guest_perf_rows(data)
    rows += [("count error, worst (%)", pct(worst_error(data["accuracy"])))]
    return rows


def _guest_perf_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """What the guests' perf limits did, summed over the VMs (rows only with a guest tool)."""
    perf = [vm["guest_perf"] for vm in data.get("vms", [])
            if vm.get("guest_perf", {}).get("max_sample_rate") is not None]
    if not perf:
        return []
    return [("guest perf throttles", sum(p["throttles"] for p in perf)),
            ("  sample rate lowerings", sum(p["rate_lowerings"] for p in perf)),
            ("  max sample rate at end (Hz)", min(p["max_sample_rate"] for p in perf))]


def worst_error(accuracy: dict[str, Any]) -> float | None:
    """The signed error of the guest tool count furthest from the truth (None: no count had
    a truth)."""
    errors = [e["error"] for e in accuracy["events"] if e.get("error") is not None]
    return max(errors, key=abs) if errors else None


def _pmi_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Guest PMIs, their handler latency and per-PMI MSR ratios (n/a with no PMI)."""
    pmi = data["guest_pmi"]
    lat = pmi["handler_latency_ns"]
    rows: list[tuple[str, Any]] = [("guest PMIs", pmi["count"])]
    for label, key in (("PMI latency mean (ns)", "mean"), ("  p50 (ns)", "p50"),
                       ("  p99 (ns)", "p99"), ("  max (ns)", "max")):
        rows.append((label, NA if lat is None else lat[key]))
    rows += [(f"  per PMI: {k}", v) for k, v in pmi["per_pmi"].items()]
    return rows


def _arm64_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Seed 004 (docs/sources.md) on Arm hosts: how much of the guest's time its counters counted,
    across which migrations, and KVM_RUN's entry failures (rows only when present)."""
    arm = data.get("arm64")
    if not arm:
        return []
    cc = arm["cycle_counter"]
    rows: list[tuple[str, Any]] = [("vPMU coverage (% guest time)", pct_of(arm["coverage"]))]
    rows += [(f"  {vcpu}", pct_of(row["coverage"])) for vcpu, row in arm["vcpus"].items()]
    rows += [("vCPU migrations", sum(arm["migrations"].values()))]
    rows += [(f"  cluster {pair}", n) for pair, n in arm["migrations"].items()]
    rows += [("cycle counter discontinuities", cc["discontinuities"]),
             ("  largest jump (cycles)", cc["max_jump"]),
             ("KVM_RUN FAIL_ENTRY", arm["fail_entry"])]
    return rows


def pct_of(fraction: float | None) -> Any:
    """A share (0..1) as an unsigned percentage to 0.1, or NA."""
    return NA if fraction is None else round(fraction * 100, 1)


def _lbr_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Guest LBR stack saves and restores by save point (rows only when present)."""
    lbr = data.get("lbr")
    if not lbr:
        return []
    rows: list[tuple[str, Any]] = [("guest LBR saves + restores", lbr["saves"] + lbr["restores"]),
                                   ("  LBR save/restore time (ms)", ms(lbr["time_ns"]))]
    for why, row in lbr["by_why"].items():
        rows += [(f"  {why}: saves", row["saves"]), (f"  {why}: restores", row["restores"]),
                 (f"  {why}: cycles per guest s", row["cycles_per_guest_s"])]
    return rows


def _mediated_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """PMU context switches, blind spots, leaks and pollution. The switch and pollution rows
    do not apply (n/a) where no guest PMU context was ever loaded on the hardware: a design
    that lends the guest perf events never puts the guest's selectors on it."""
    sw = data["overhead"].get("pmu_switch") or {}
    loaded = bool(sw.get("loads"))
    rows: list[tuple[str, Any]] = [
        ("  PMU switch time (ms)", ms(data["overhead"]["by_cause_ns"]["pmu_switch"])
         if loaded else NA),
        ("PMU context switches", sw["switches"] if loaded else NA),
        ("  per switch (ns)", sw["per_switch_ns"] if loaded else NA)]
    hp = data.get("host_profiling")
    if hp:
        rows += [("host perf blind (% host time)", pct_of(hp.get("blind_fraction"))),
                 ("  blind time (ms)", ms(hp["blind_ns_total"])),
                 ("  worst gap (ns)", hp["worst_gap_ns"])]
        rows += [(f"  cpu{e['cpu']} {e['name']} (%)", pct_of(e["blind_fraction"]))
                 for e in hp["events"]]
        rows += [("  host events refused", len(hp["refused"]))] if hp["refused"] else []
    if data.get("leaks"):
        rows += [("leaked guest values seen", data["leaks"]["count"])]
    if data.get("pollution"):
        pol = data["pollution"]
        rows += [("host time, guest selectors on (ms)", ms(pol["host_ns"]) if loaded else NA),
                 ("  counting host code (ms)", ms(pol["counting_ns"]) if loaded else NA)]
    return rows


def summary_table(runs: Sequence[dict[str, Any]], *, title: str,
                  labels: Sequence[str] | None = None) -> Table:
    """Metrics side by side; rows missing from a run show '-', rows that do not apply 'n/a'."""
    msr_names = top_msrs(runs)
    rows = [summary_rows(r, msr_names) for r in runs]
    per_run = [dict(r) for r in rows]
    order = merged_order(rows)
    cells = [[fmt(p.get(key)) for p in per_run] for key in order]
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("metric", no_wrap=True, overflow="ellipsis", min_width=16)
    names = labels or [r["design"] or "-" for r in runs]
    for i, name in enumerate(names):
        # a figure is never cut: its column is at least as wide as its widest figure, and
        # a long design label folds onto more lines instead
        widest = max((len(row[i]) for row in cells), default=1)
        table.add_column(name, justify="right", overflow="fold", min_width=widest)
    for key, row in zip(order, cells, strict=True):
        table.add_row(key, *row)
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
