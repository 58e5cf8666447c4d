"""The result of ``vpmu replay``: what a capture shows, and what each design predicts.

``observed`` comes from the capture (``vpmu.scenario.replay.observed``); each prediction is
the results of running the reconstructed scenario under one design (``results``). The findings
are sentences computed from both: the change in exits and handler latency a design brings,
and any leak, blind spot or refused host event the run found.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.table import Table

REPLAY_KEYS = ("observed", "scenario", "predictions", "findings")
"""Top-level keys of a replay result, in order (extend at the end, never rename)."""
PREDICTION_KEYS = ("vm_exits", "msr_exits", "perf_calls", "guest_pmi", "overhead",
                   "host_profiling", "leaks", "pollution")
"""The results sections a prediction keeps."""


def replay_results(observed: dict[str, Any], scenario: dict[str, Any] | None,
                   predictions: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The replay JSON: observed, the reconstructed scenario, per-design predictions (or
    ``{"design", "error"}`` for a run that did not finish), findings."""
    preds = [{"design": label, "error": r["error"]} if "error" in r else
             {"design": label, **{k: r.get(k) for k in PREDICTION_KEYS}}
             for label, r in predictions]
    return {"observed": observed, "scenario": scenario, "predictions": preds,
            "findings": findings(observed, preds)}


def _per_pmi(p: dict[str, Any]) -> float | None:
    n = p["guest_pmi"]["count"]
    return p["vm_exits"]["total"] / n if n else None


def findings(observed: dict[str, Any], preds: Sequence[dict[str, Any]]) -> list[str]:
    """Sentences a user reads first (computed, never canned figures)."""
    if not observed["pmu_activity"]:
        return ["the capture shows no guest PMU activity (no PMU MSR writes): nothing to "
                "replay; a guest that does not use its PMU costs the same under every design"]
    out: list[str] = []
    for v in observed["vcpus"]:
        if v["pmis"]:
            out.append(f"{v['vm']} vCPU {v['vcpu']}: {v['pmis']} PMIs at "
                       f"{v['pmi_rate_hz']:,.0f}/s ({v['mode']}), {v['exits_per_pmi']} exits "
                       f"per PMI observed")
    out += [f"{p['design']}: the replayed guest {p['error']} (a slowdown beyond that: check "
            f"the assumptions, e.g. the guest's max_sample_rate)" for p in preds if "error" in p]
    ok = [p for p in preds if "error" not in p]
    base = ok[0] if ok else None
    for p in ok:
        lat = (p["guest_pmi"]["handler_latency_ns"] or {}).get("mean")
        line = (f"{p['design']}: {p['vm_exits']['total']:,} exits, "
                f"{p['guest_pmi']['count']:,} PMIs")
        per = _per_pmi(p)
        line += f", {per:.2f} exits per PMI" if per is not None else ""
        line += f", handler latency {lat:,.1f} ns" if lat is not None else ""
        line += f", vCPU slowdown {p['overhead']['slowdown']:.3g}"
        if base is not None and p is not base and base["vm_exits"]["total"]:
            change = p["vm_exits"]["total"] / base["vm_exits"]["total"] - 1
            line += f" ({change:+.0%} exits vs {base['design']})"
        out.append(line)
        out += _hazards(p)
    return out


def _hazards(p: dict[str, Any]) -> list[str]:
    out = []
    if p.get("leaks") and p["leaks"]["count"]:
        out.append(f"{p['design']}: {p['leaks']['count']} guest counter values seen by host "
                   f"code (leaks)")
    hp = p.get("host_profiling")
    if hp and hp["refused"]:
        out.append(f"{p['design']}: {len(hp['refused'])} host perf events refused")
    return out


def dumps_replay(data: dict[str, Any]) -> str:
    """Canonical JSON text of a replay result."""
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def observed_table(observed: dict[str, Any]) -> Table:
    """One row per vCPU thread of the capture."""
    table = Table(title=f"capture {observed['source']} ({observed['format']}, "
                        f"{observed['lines']:,} lines)")
    for col in ("thread", "vCPU", "guest ms", "exits", "PMIs", "exits/PMI", "mode"):
        table.add_column(col, no_wrap=col == "thread",
                         justify="left" if col == "thread" else "right")
    table.add_column("events", overflow="fold")
    for v in observed["vcpus"]:
        table.add_row(v["thread"], f"{v['vm']}/{v['vcpu']}", f"{v['guest_ms']:.3f}",
                      f"{v['exits']:,}", f"{v['pmis']:,}",
                      "-" if v["exits_per_pmi"] is None else f"{v['exits_per_pmi']:.2f}",
                      f"-c {v['period']}" if v["period"] else v["mode"],
                      ", ".join(e["event"] for e in v["events"]))
    return table
