"""Cross-field checks the scenario's tables share (VMs, workloads, their phases)."""

from __future__ import annotations

from collections.abc import Iterable

Loc = tuple[str | int, ...]
"""A key path as pydantic reports it: ``("vm", 0, "name")``."""


def repeated_names(names: Iterable[str], table: str, what: str) -> list[tuple[Loc, str]]:
    """A problem at ``table[i].name`` for each name an earlier entry already has."""
    seen: set[str] = set()
    problems: list[tuple[Loc, str]] = []
    for i, name in enumerate(names):
        if name in seen:
            problems.append(((table, i, "name"), f"expected a unique {what} name, got "
                                                 f"{name!r} again"))
        seen.add(name)
    return problems
