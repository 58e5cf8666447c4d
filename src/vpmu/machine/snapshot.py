"""A flat picture of a model's mutable state, to tell whether two instants are alike.

The idle fast-forward (``vpmu.machine.ffwd``) must not miss a piece of state that a period
changes: a counter some component keeps, a time stamp, a cache. Rather than listing them (a
list that goes stale as the model grows), it walks every object reachable from the machine
and records each scalar leaf under its path of attribute names, keys and indices. Two
pictures one period apart then say what changed; three say whether it changed by the same
amount each time, and an integer leaf that did can be moved along in one step (its setter).

What the walk leaves out: the event queue and events (their timing is compared separately),
generators and callables (code, not data), the trace (compared separately) and what the
caller names in ``skip`` (a stream the caller advances itself).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from types import FunctionType, GeneratorType, MappingProxyType, MethodType, ModuleType
from typing import Any

from vpmu.sim import Environment, Event
from vpmu.trace import Trace
from vpmu.workloads.branches import BranchPattern

Path = tuple[Any, ...]
Setter = Callable[[int], None] | None
"""Writes an integer leaf back in place; None for a leaf inside an immutable container."""

_SCALARS = (str, bytes, float, Fraction, bool, type(None), enum.Enum)
_OPAQUE = (Environment, Event, Trace, FunctionType, MethodType, GeneratorType, ModuleType,
           type, staticmethod, classmethod, property, BranchPattern)
"""Not walked: the kernel, the trace and code; and immutable data too large to walk at every
mark (a phase's branch pattern, a thousand branches)."""


@dataclass(frozen=True)
class Leaf:
    """One scalar of the state: its value and how to write a new integer there."""

    value: Any
    setter: Setter


def snapshot(roots: dict[str, object], skip: frozenset[int]) -> dict[Path, Leaf]:
    """Every scalar reachable from ``roots`` by path; objects whose id is in ``skip`` become
    the leaf ``"<skipped>"``. Each object is walked once, at the first path that reaches it."""
    out: dict[Path, Leaf] = {}
    seen: set[int] = set()
    stack: list[tuple[Path, object, Setter]] = [((k,), v, None) for k, v in roots.items()]
    stack.reverse()
    while stack:
        path, obj, setter = stack.pop()
        children = _visit(path, obj, setter, out, seen, skip)
        stack.extend(reversed(children))
    return out


def _visit(path: Path, obj: object, setter: Setter, out: dict[Path, Leaf], seen: set[int],
           skip: frozenset[int]) -> list[tuple[Path, object, Setter]]:
    """Record ``obj`` as a leaf, or return its children (with their setters) to walk."""
    if isinstance(obj, int) and not isinstance(obj, bool | enum.Enum):
        out[path] = Leaf(obj, setter)
        return []
    if isinstance(obj, _SCALARS):
        out[path] = Leaf(obj, None)
        return []
    if id(obj) in skip:
        out[path] = Leaf("<skipped>", None)
        return []
    if isinstance(obj, _OPAQUE) or (callable(obj) and not hasattr(obj, "__dict__")):
        out[path] = Leaf(type(obj).__name__, None)
        return []
    if _frozen(obj):  # immutable: compared whole (a Stream, a register spec, a preset)
        out[path] = Leaf(obj, None)
        return []
    if id(obj) in seen:
        out[path] = Leaf(("<seen>", type(obj).__name__), None)
        return []
    seen.add(id(obj))
    return _children(path, obj)


def _frozen(obj: object) -> bool:
    """A frozen dataclass (a value: it changes only by being replaced)."""
    params = getattr(type(obj), "__dataclass_params__", None)
    return params is not None and bool(params.frozen)


def _children(path: Path, obj: Any) -> list[tuple[Path, object, Setter]]:
    """The parts of a container or an object, each with a setter if it can be written."""
    kind = type(obj).__name__
    if isinstance(obj, list | deque):
        return [((*path, "#len"), len(obj), None)] + [
            ((*path, i), v, _item_setter(obj, i)) for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return [((*path, i), v, None) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return [((*path, "#keys"), tuple(map(repr, obj)), None)] + [
            ((*path, repr(k)), v, _item_setter(obj, k)) for k, v in obj.items()]
    if isinstance(obj, MappingProxyType):
        return [((*path, repr(k)), v, None) for k, v in obj.items()]
    if isinstance(obj, set | frozenset):
        return [((*path, "#set"), tuple(sorted(map(repr, obj))), None)]
    return [((*path, kind, name), value, _attr_setter(obj, name))
            for name, value in _attributes(obj)]


def _attributes(obj: Any) -> list[tuple[str, Any]]:
    """An object's instance attributes: its ``__slots__`` (every class's), a class compiled
    by mypyc's native attributes (``__mypyc_attrs__``: it has neither slots nor a
    ``__dict__`` for them, so without this its state would go unseen) and ``__dict__``."""
    names: list[str] = []
    for cls in type(obj).__mro__:
        for key in ("__slots__", "__mypyc_attrs__"):
            slots = cls.__dict__.get(key, ())
            names += [slots] if isinstance(slots, str) else [
                s for s in slots if s not in ("__weakref__", "__dict__") and s not in names]
    out = [(n, getattr(obj, n)) for n in names if n != "__dict__" and hasattr(obj, n)]
    return out + list(getattr(obj, "__dict__", {}).items())


def _item_setter(container: Any, key: Any) -> Setter:
    def put(value: int) -> None:
        container[key] = value
    return put


def _attr_setter(obj: Any, name: str) -> Setter:
    def put(value: int) -> None:
        object.__setattr__(obj, name, value)
    return put
