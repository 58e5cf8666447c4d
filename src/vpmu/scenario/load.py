"""Reading scenarios: TOML text -> :class:`~vpmu.scenario.schema.Scenario`, with ``--set``.

Every way in fails with one :class:`ScenarioError` whose lines each name a place, the key path
in TOML terms, what was expected and what was given::

    x.toml: vm[0].guest[0].tool: expected one of 'none', 'perf-record', 'perf-stat', got 'top'
    --set host.cpus=0: host.cpus: expected a value >= 1, got 0

A problem caused by a ``--set`` names that option rather than the file.
"""

from __future__ import annotations

import copy
import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from vpmu.errors import InputError
from vpmu.scenario.checks import BAD_VALUE, CHOICE, CROSS_CHECK, Loc, show, toml_path
from vpmu.scenario.schema import Scenario


class Problem(NamedTuple):
    """One thing wrong with a scenario: where it came from, the key path, and what is wrong."""

    source: str
    """The file name, ``<string>``, or the ``--set key=value`` that caused it."""
    path: str
    """Key path in TOML terms (``vm[0].guest[1].tool``); empty for the whole input."""
    message: str
    """What was expected and what was given."""

    def __str__(self) -> str:
        return f"{self.source}: {self.path}: {self.message}" if self.path else \
            f"{self.source}: {self.message}"


class ScenarioError(InputError):
    """A scenario that cannot be used; ``str()`` has one line per problem, each naming its
    place (the first one is ``place`` / ``message``)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        """Every problem found, in the order of the schema."""
        first = self.problems[0]
        super().__init__(f"{first.source}: {first.path}" if first.path else first.source,
                         first.message)

    def lines(self) -> list[str]:
        """One line per problem."""
        return [str(p) for p in self.problems]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    @classmethod
    def one(cls, source: str, path: str, message: str) -> ScenarioError:
        """An error with a single problem."""
        return cls([Problem(source, path, message)])


def load_scenario(path: str | Path, *, overrides: Iterable[str] = ()) -> Scenario:
    """Read and check a scenario file, then apply ``--set`` overrides (``key=value``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError.one(str(path), "", f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ScenarioError.one(str(path), "", f"not UTF-8 text: {e.reason} at byte "
                                               f"{e.start}") from None
    return parse_scenario(text, str(path), overrides=overrides)


def parse_scenario(text: str, source: str = "<string>", *,
                   overrides: Iterable[str] = ()) -> Scenario:
    """Parse and check scenario TOML text; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # its message ends "(at line L, column C)"
        raise ScenarioError.one(source, "", f"invalid TOML: {e}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ScenarioError.one(source, "", f"invalid TOML: arrays or tables nested more "
                                            f"than {MAX_DEPTH} deep") from None
    _check_depth(data, source)
    overrides = list(overrides)
    if overrides:
        return apply_overrides(data, overrides, source=source)
    return validate_scenario(data, source)


MAX_DEPTH = 32
"""No scenario key is nested deeper than a few levels; a value nested deeper than this is a
mistake (and deep enough nesting would exhaust Python's recursion limit)."""


def _check_depth(data: object, source: str) -> None:
    """Refuse a value nested more than MAX_DEPTH arrays or tables deep (iteratively)."""
    todo: list[tuple[object, Loc]] = [(data, ())]
    while todo:
        node, loc = todo.pop()
        if len(loc) > MAX_DEPTH:
            raise ScenarioError.one(source, toml_path(loc[:MAX_DEPTH]),
                                    f"arrays or tables nested more than {MAX_DEPTH} deep")
        if isinstance(node, dict):
            todo += [(v, (*loc, str(k))) for k, v in node.items()]
        elif isinstance(node, list):
            todo += [(v, (*loc, i)) for i, v in enumerate(node)]


def validate_scenario(data: Mapping[str, Any], source: str = "<string>") -> Scenario:
    """Check a scenario given as plain data (parsed TOML, or JSON read back from results)."""
    return _validate(data, source, {})


def apply_overrides(scenario: Scenario | Mapping[str, Any], overrides: Iterable[str], *,
                    source: str = "<string>") -> Scenario:
    """The scenario with each ``key=value`` applied in order, checked against the schema.

    Keys are TOML key paths (``host.cpus``, ``vm[0].design``, ``vm[0].design_options.x``);
    values are read as TOML values (``8``, ``true``, ``[0, 1]``, ``"text"``) and otherwise
    taken as strings (``mediated``). A key must exist in the schema; entries of arrays of
    tables can be changed, and the next one added (``host_task[1].kind=load`` on a scenario
    with one host task). ``source`` names the scenario for problems the
    overrides did not cause.
    """
    data: dict[str, Any] = (scenario.model_dump() if isinstance(scenario, Scenario)
                            else copy.deepcopy(dict(scenario)))
    applied: dict[Loc, str] = {}
    for item in overrides:
        where = f"--set {item if len(item) <= 80 else item[:77] + '...'}"
        key, eq, raw = item.partition("=")
        if not eq:
            raise ScenarioError.one(where, "", "expected key=value, got no '='")
        loc = _parse_key(key.strip(), where)
        _check_key(loc, where)
        _assign(data, loc, _toml_value(raw.strip()), where)
        applied[loc] = where
    return _validate(data, source, applied)


def _validate(data: Mapping[str, Any], source: str, applied: Mapping[Loc, str]) -> Scenario:
    _check_depth(data, source)
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        problems = [Problem(_blame(loc, source, applied), toml_path(loc), message)
                    for loc, message in _problems(e)]
        raise ScenarioError(problems) from None


def _blame(loc: Loc, source: str, applied: Mapping[Loc, str]) -> str:
    """The ``--set`` that wrote at or above ``loc`` (the last one), else the scenario."""
    hits = [where for key, where in applied.items() if loc[:len(key)] == key]
    return hits[-1] if hits else source


# --- pydantic errors -> (loc, message) ---------------------------------------------------

_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "bool_type": "true or false", "bool_parsing": "true or false", "string_type": "a string",
    "list_type": "an array", "dict_type": "a table", "model_type": "a table",
    "model_attributes_type": "a table",
}
_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
           "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}


def _problems(error: ValidationError) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for err in error.errors(include_url=False):
        if err["type"] == CROSS_CHECK:
            out += [(err["loc"] + loc, msg) for loc, msg in err.get("ctx", {})["problems"]]
        else:
            out.append((err["loc"], _describe(err)))
    return out


def _describe(err: ErrorDetails) -> str:
    kind, ctx, got = err["type"], err.get("ctx", {}), show(err["input"])
    if kind in (CHOICE, BAD_VALUE):
        return err["msg"]
    if kind == "missing":
        return "missing required key"
    if kind == "extra_forbidden":
        return _unknown_key(err["loc"])
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got}"
    if kind in _BOUNDS:
        name, op = _BOUNDS[kind]
        bound = ctx[name]  # a float field's bound is a float: say "> 0", not "> 0.0"
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        return f"expected a value {op} {bound}, got {got}"
    if kind in ("too_short", "too_long"):
        bound = ("at least", ctx["min_length"]) if kind == "too_short" else \
            ("at most", ctx["max_length"])
        return f"expected {bound[0]} {bound[1]} entr{'y' if bound[1] == 1 else 'ies'}, got {got}"
    msg = err["msg"]
    return f"{msg[:1].lower()}{msg[1:]}, got {got}"


def _unknown_key(loc: Loc) -> str:
    parent = _walk(loc[:-1])
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
        return "unknown key"
    keys = list(parent.model_fields)
    near = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"unknown key{hint}; expected one of {', '.join(keys)}"


# --- the schema as a tree of key paths -----------------------------------------------------

def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``| None`` from a field type."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif get_origin(tp) in (Union, UnionType) and NoneType in get_args(tp):
            rest = [a for a in get_args(tp) if a is not NoneType]
            tp = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
        else:
            return tp


def _child(tp: Any, part: str | int) -> Any:
    """The type found at ``part`` below ``tp``, or None if the schema has no such place."""
    tp = _unwrap(tp)
    if isinstance(part, int):
        return get_args(tp)[0] if get_origin(tp) is list else None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(part)
        return None if field is None else field.annotation
    return get_args(tp)[1] if get_origin(tp) is dict else None


def _walk(loc: Loc) -> Any:
    tp: Any = Scenario
    for part in loc:
        tp = _child(tp, part)
        if tp is None:
            return None
    return _unwrap(tp)


_KEY_PART = re.compile(r"([A-Za-z0-9_-]+)((?:\[\d+\])*)")


def _parse_key(key: str, where: str) -> Loc:
    """``vm[0].guest[1].tool`` -> ``("vm", 0, "guest", 1, "tool")``."""
    loc: list[str | int] = []
    for part in key.split("."):
        m = _KEY_PART.fullmatch(part)
        if not m:
            raise ScenarioError.one(where, "", f"expected a key path like vm[0].design, "
                                               f"got {key!r}")
        loc.append(m[1])
        loc += [int(i) for i in re.findall(r"\d+", m[2])]
    return tuple(loc)


def _check_key(loc: Loc, where: str) -> None:
    """Every step of ``loc`` must be a place in the schema."""
    tp: Any = Scenario
    for n, part in enumerate(loc):
        here = _unwrap(tp)
        tp = _child(here, part)
        if tp is not None:
            continue
        path = toml_path(loc[:n + 1])
        if isinstance(here, type) and issubclass(here, BaseModel):
            raise ScenarioError.one(where, path, _unknown_key(loc[:n + 1]))
        if get_origin(here) is list:
            raise ScenarioError.one(where, path, f"{toml_path(loc[:n])} is an array: "
                                                 "expected an index like [0]")
        raise ScenarioError.one(where, path, f"{toml_path(loc[:n])} is a value, not a table")


def _assign(data: dict[str, Any], loc: Loc, value: object, where: str) -> None:
    """Set ``data`` at ``loc``, creating missing tables and the next entry of an array of
    tables (``host_task[N].kind=...`` with N entries so far adds one), but no other entry."""
    node: Any = data
    for n, part in enumerate(loc):
        last = n == len(loc) - 1
        if isinstance(part, int):
            if isinstance(node, list) and part == len(node) and not last:
                node.append({})
            if not isinstance(node, list) or part >= len(node):
                count = len(node) if isinstance(node, list) else 0
                raise ScenarioError.one(where, toml_path(loc[:n + 1]), _no_entry(loc[:n], count))
        elif not isinstance(node, dict):
            raise ScenarioError.one(where, toml_path(loc[:n]), f"expected a table, "
                                                               f"got {show(node)}")
        elif not last and node.get(part) is None:
            node[part] = [] if isinstance(loc[n + 1], int) else {}
        if last:
            node[part] = value
        else:
            node = node[part]


def _no_entry(loc: Loc, count: int) -> str:
    entries = "entry" if count == 1 else "entries"
    return (f"no such entry; {toml_path(loc)} has {count} {entries} "
            f"(--set can change them, or add the next: {toml_path(loc)}[{count}].KEY=VALUE)")


def _toml_value(text: str) -> object:
    """A ``--set`` value: a TOML value if it parses as one, else the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return text
