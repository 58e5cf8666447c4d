"""What every scenario table's checks share: key paths, the error shapes the loader turns into
one line per problem, the strict model configuration, and the checks more than one table
makes (a name's spelling, a value among names, unique names).

``vpmu.scenario.schema`` (the scenario) and ``vpmu.scenario.workload_schema`` (its
``[[workload]]`` tables) both build on this module, so neither has to reach into the other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from typing import Final

from pydantic import ConfigDict
from pydantic_core import PydanticCustomError

Loc = tuple[str | int, ...]
"""A key path as pydantic reports it: ``("vm", 0, "guest", 1, "tool")``."""

CROSS_CHECK: Final = "scenario_cross_check"
"""Error type of a cross-field check; its ``ctx["problems"]`` holds ``(loc, message)`` pairs."""
CHOICE: Final = "scenario_choice"
"""Error type of a value that must be one of a set of names."""
BAD_VALUE: Final = "scenario_value"
"""Error type of any other value the schema checks itself; the message says what was
expected."""

NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""A name a scenario gives (a VM, a workload, a phase)."""


STRICT: Final = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False,
                           use_attribute_docstrings=True)
"""Every scenario table's model configuration: unknown keys are errors, values are frozen
and strictly typed (each module's ``_Model(BaseModel)`` sets it, so that linters see the
pydantic base)."""


def toml_path(loc: Iterable[str | int]) -> str:
    """A key path in TOML terms: ``("vm", 0, "guest", 1, "tool")`` -> ``vm[0].guest[1].tool``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def show(value: object) -> str:
    """A value as the user wrote it in TOML, shortened for an error message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    text = f"[{', '.join(show(v) for v in value)}]" if isinstance(value, list) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def bad(expected: str, got: object) -> PydanticCustomError:
    """The one error shape of a value check: expected X, got Y."""
    return PydanticCustomError(BAD_VALUE, "expected {expected}, got {got}",
                               {"expected": expected, "got": show(got)})


def raise_problems(problems: list[tuple[Loc, str]]) -> None:
    """Raise the cross-field problems found, each at its key path below the current model."""
    if problems:
        summary = "; ".join(f"{toml_path(loc) or '.'}: {msg}" for loc, msg in problems)
        raise PydanticCustomError(CROSS_CHECK, "{summary}",
                                  {"summary": summary, "problems": tuple(problems)})


def one_of(names: Callable[[], Collection[str]]) -> Callable[[object], object]:
    """A check that a value is one of ``names()`` (looked up at check time, in that order)."""
    def check(value: object) -> object:
        valid = names()
        if isinstance(value, str) and value in valid:
            return value
        expected = ", ".join(repr(n) for n in valid)
        raise PydanticCustomError(CHOICE, "expected one of {expected}, got {got}",
                                  {"expected": expected, "got": show(value)})
    return check


def valid_name(value: object) -> object:
    """A name of letters, digits, '_', '.' or '-' (``NAME``)."""
    if isinstance(value, str) and NAME.fullmatch(value):
        return value
    raise bad("a name of letters, digits, '_', '.' or '-'", value)


def repeated_names(names: Iterable[str], table: str, what: str) -> list[tuple[Loc, str]]:
    """A problem at ``table[i].name`` for each name an earlier entry already has."""
    seen: set[str] = set()
    problems: list[tuple[Loc, str]] = []
    for i, entry in enumerate(names):
        if entry in seen:
            problems.append(((table, i, "name"), f"expected a unique {what} name, got "
                                                 f"{entry!r} again"))
        seen.add(entry)
    return problems
