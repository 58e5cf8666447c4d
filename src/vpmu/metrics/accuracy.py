"""Accuracy: what the guest's tools counted against the ground truth of its workload."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def accuracy(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per (vCPU, tool, event): the guest-visible count, the truth, and the relative error.

    A row is ``{"vcpu", "tool", "event", "count", "truth"}``: ``count`` is what the guest tool
    reports (the event's count, scaled by perf stat when multiplexed), ``truth`` the
    workload's exact total of the event over the tool's runs (its kernel work excluded, so
    the error includes what the guest's own handlers added). ``worst_abs_error`` is the
    largest |error| of the run, None when no count could be compared.
    """
    out: list[dict[str, Any]] = []
    worst: float | None = None
    for r in rows:
        truth, count = r["truth"], r["count"]
        err = None if not truth or count is None else round((count - truth) / truth, 6)
        if err is not None:
            worst = abs(err) if worst is None else max(worst, abs(err))
        out.append({"vcpu": r["vcpu"], "tool": r["tool"], "event": r["event"],
                    "count": count, "truth": truth, "error": err})
    return {"events": out, "worst_abs_error": None if worst is None else round(worst, 6)}
