"""The summary's opening: one sentence per design that answers the question users bring,
what profiling inside the guest costs under that design and what the host loses.

Each figure is read from the results (``overhead.vs_unprofiled``, ``overhead.vs_bare_metal``,
``overhead.baseline``, ``host_profiling.blind_fraction``, ``leaks.count``); a figure that was
not measured says so instead of printing a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vpmu.report.tables import pct


def _pct(fraction: float) -> str:
    return f"{pct(fraction)}%"


def guest_tools(data: dict[str, Any]) -> bool:
    """Some guest in the run's scenario runs a tool."""
    vms = data["scenario"]["file_model"].get("vm", [])
    return any(g.get("tool", "none") != "none" for vm in vms for g in vm.get("guest", []))


def _guest_cost(data: dict[str, Any]) -> str:
    ov = data["overhead"]
    if ov.get("vs_unprofiled") is None:
        return "guest cost not measured (--no-baseline)"
    if not guest_tools(data):
        return "no guest tool runs"
    bare = ov["baseline"].get("bare_metal_vs_unprofiled")
    on_bare = "" if bare is None else f" (on bare metal: {_pct(bare)})"
    blind = (", though its perf counted nothing (every event <not supported>)"
             if _uncounted(data) else "")
    return (f"profiling costs the guest {_pct(ov['vs_unprofiled'])} time{on_bare}{blind}; it "
            f"takes {_pct(ov['vs_bare_metal'])} against the same work and tools on bare metal")


def _uncounted(data: dict[str, Any]) -> bool:
    """Every guest tool event was <not supported> (a guest with no vPMU): the cost is then
    that of tools that measured nothing."""
    events = data["accuracy"]["events"]
    return bool(events) and all(e["count"] is None for e in events)


def _host_loss(data: dict[str, Any]) -> str:
    hp = data.get("host_profiling")
    if not hp:
        return "no host perf event"
    refused = f", {len(hp['refused'])} host events refused" if hp["refused"] else ""
    blind = hp.get("blind_fraction")
    seen = "n/a" if blind is None else f"{blind * 100:.1f}%"
    return f"host perf was blind {seen} of host time{refused}"


def headline(label: str, data: dict[str, Any]) -> str:
    """One design's sentence."""
    leaks = data["leaks"]["count"]
    return (f"{label}: {_guest_cost(data)}; {_host_loss(data)}; "
            f"{leaks:,} leak{'' if leaks == 1 else 's'}.")


def headlines(runs: Sequence[dict[str, Any]], labels: Sequence[str]) -> list[str]:
    """One sentence per run, in the runs' order."""
    return [headline(label, data) for label, data in zip(labels, runs, strict=True)]
