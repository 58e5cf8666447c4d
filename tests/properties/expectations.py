"""What the reference model expects an operation to return, and how an observed outcome is
committed back into it (``reference_model.RefPmu.step`` returns one of these)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vpmu.guest import Fault


class Expect:
    """What the reference expects one operation to return."""

    def matches(self, actual: Any) -> bool:
        """The model's ``actual`` result is an outcome the manuals allow."""
        raise NotImplementedError

    def learn(self, actual: Any) -> None:
        """Commit the operation, narrowed to the observed (matching) outcome."""


@dataclass
class Exactly(Expect):
    """One outcome: a value, ``None`` or a ``Fault``; ``commit`` runs when it is observed."""

    value: Any
    commit: Callable[[], None] | None = None

    def matches(self, actual: Any) -> bool:
        return type(actual) is type(self.value) and actual == self.value

    def learn(self, actual: Any) -> None:
        if self.commit:
            self.commit()

    def __repr__(self) -> str:
        v = self.value
        return f"{v:#x}" if isinstance(v, int) else repr(v)


GP = Exactly(Fault.GP)


@dataclass
class Then(Expect):
    """``inner``, and once its outcome is committed, ``after`` (a read's own retirement: the
    value is sampled as the instruction executes, the instruction retires afterwards)."""

    inner: Expect
    after: Callable[[], None]

    def matches(self, actual: Any) -> bool:
        return self.inner.matches(actual)

    def learn(self, actual: Any) -> None:
        self.inner.learn(actual)
        self.after()

    def __repr__(self) -> str:
        return repr(self.inner)


class Interval(Protocol):
    """A counter whose value is ``x mod 2**width`` for some ``x`` in ``[lo, hi]``."""

    lo: int
    hi: int


@dataclass
class CounterValue(Expect):
    """A counter read: any value of the counter's interval, modulo ``modulus`` (2**width, or
    2**32 for a fast RDPMC); ``learn`` receives the unwrapped value observed."""

    counter: Interval
    modulus: int
    on_learn: Callable[[int], None]

    def _unwrapped(self, actual: int) -> int:
        return self.counter.lo + (actual - self.counter.lo) % self.modulus

    def matches(self, actual: Any) -> bool:
        return (type(actual) is int and 0 <= actual < self.modulus
                and self._unwrapped(actual) <= self.counter.hi)

    def learn(self, actual: Any) -> None:
        self.on_learn(self._unwrapped(actual))

    def __repr__(self) -> str:
        c, m = self.counter, self.modulus
        if c.lo == c.hi:
            return f"{c.lo % m:#x}"
        return f"[{c.lo:#x}, {c.hi:#x}] mod {m:#x}"


@dataclass
class StatusValue(Expect):
    """A GLOBAL_STATUS read: ``value`` on every bit not in ``unknown``."""

    value: int
    unknown: int

    def matches(self, actual: Any) -> bool:
        return type(actual) is int and (actual ^ self.value) & ~self.unknown == 0

    def __repr__(self) -> str:
        return f"{self.value:#x} (unknown bits {self.unknown:#x})"
