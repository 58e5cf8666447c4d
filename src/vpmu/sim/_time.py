"""Simulated time: integer picoseconds, and the one place cycles become time.

Why integers: float time drifts (``0.1 + 0.2``) and makes event order depend on rounding, so two
runs of the same scenario could disagree. A picosecond is fine enough for any CPU clock we model
(a 5 GHz cycle is 200 ps) and Python ints never overflow.

Why picoseconds everywhere: a name carries its unit (``t_ps``, ``delay_ps``, ``cycles``), and the
conversions below are the only bridges. In particular :func:`cycles_to_ps` and
:func:`ps_to_cycles` are the single place where a clock frequency turns cycles into time and back,
so rounding happens once, in one documented direction (down).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "PS_PER_MS",
    "PS_PER_NS",
    "PS_PER_S",
    "PS_PER_US",
    "cycles_to_ps",
    "ms",
    "ns",
    "ps_to_cycles",
    "us",
]

PS_PER_NS: Final = 1_000
"""Picoseconds in a nanosecond."""
PS_PER_US: Final = 1_000 * PS_PER_NS
"""Picoseconds in a microsecond."""
PS_PER_MS: Final = 1_000 * PS_PER_US
"""Picoseconds in a millisecond."""
PS_PER_S: Final = 1_000 * PS_PER_MS
"""Picoseconds in a second."""

_PS_PER_CYCLE_AT_1_MHZ: Final = PS_PER_US
"""One cycle at 1 MHz lasts 1 µs, so ``t_ps = cycles * PS_PER_US // mhz``."""


def _natural(name: str, x: object) -> int:
    """Return ``x`` if it is an int >= 0, else raise the one error shape of this module.

    ``bool`` is rejected on purpose: ``ns(True)`` is a bug, not one nanosecond.
    """
    if type(x) is not int or x < 0:
        raise ValueError(f"{name} must be a non-negative int, not {x!r}")
    return x


def _positive(name: str, x: object) -> int:
    """Return ``x`` if it is an int > 0 (a clock frequency), else raise ValueError."""
    if type(x) is not int or x <= 0:
        raise ValueError(f"{name} must be a positive int, not {x!r}")
    return x


def ns(x: int) -> int:
    """Return ``x`` nanoseconds in picoseconds, so call sites read ``delay_ps=ns(40)``."""
    return _natural("x", x) * PS_PER_NS


def us(x: int) -> int:
    """Return ``x`` microseconds in picoseconds."""
    return _natural("x", x) * PS_PER_US


def ms(x: int) -> int:
    """Return ``x`` milliseconds in picoseconds."""
    return _natural("x", x) * PS_PER_MS


def cycles_to_ps(cycles: int, mhz: int) -> int:
    """Return how long ``cycles`` clock cycles last at ``mhz`` MHz, in picoseconds, rounded down.

    This is the one place where cycles become time. Rounding down means that, when ``mhz`` does not
    divide 10**6 exactly, ``ps_to_cycles(cycles_to_ps(c, mhz), mhz)`` may be ``c - 1``: convert
    whole spans once rather than summing converted pieces.
    """
    return _natural("cycles", cycles) * _PS_PER_CYCLE_AT_1_MHZ // _positive("mhz", mhz)


def ps_to_cycles(t_ps: int, mhz: int) -> int:
    """Return how many whole cycles of a ``mhz`` MHz clock fit in ``t_ps`` picoseconds (floor).

    Floor because a counter only increments when a cycle completes.
    """
    return _natural("t_ps", t_ps) * _positive("mhz", mhz) // _PS_PER_CYCLE_AT_1_MHZ
