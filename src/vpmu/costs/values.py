"""Walking a cost table's numbers: every table type validates, hashes and names its numbers
the same way, and the sources are keyed by the names this gives."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import Field, fields
from typing import Any

NOT_A_NUMBER = {"number": False}
"""Field metadata for a table field that is no cost (``KvmCosts.arch``): the walk skips it."""


def numbers(table: Any) -> Iterator[tuple[str, str | None, object]]:
    """Every number of a dataclass table as (field, key, value), in field order.

    A mapping field gives one number per key (``perf_call_work_cycles``, ``create``); a scalar
    field gives ``key`` None. Values are yielded unchecked, so the table can refuse a bad one
    by name.
    """
    for f in _number_fields(table):
        value = getattr(table, f.name)
        if isinstance(value, Mapping):
            yield from ((f.name, k, v) for k, v in value.items())
        else:
            yield f.name, None, value


def number_name(field: str, key: str | None) -> str:
    """How a number is named in errors and sources: ``tick_cycles``,
    ``perf_call_work_cycles[create]``."""
    return field if key is None else f"{field}[{key}]"


def number_fields(table: Any) -> tuple[str, ...]:
    """The names of a table's fields that hold costs."""
    return tuple(f.name for f in _number_fields(table))


def _number_fields(table: Any) -> Iterator[Field[Any]]:
    return (f for f in fields(table) if f.metadata.get("number", True))
