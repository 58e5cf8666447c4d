"""Time units: integer picoseconds and the cycle conversions."""

from __future__ import annotations

import pytest

from vpmu.sim import (
    PS_PER_MS,
    PS_PER_NS,
    PS_PER_S,
    PS_PER_US,
    cycles_to_ps,
    ms,
    ns,
    ps_to_cycles,
    us,
)


def test_unit_constants() -> None:
    """Each unit is a thousand of the one below, starting from 1 ns = 1,000 ps."""
    assert (PS_PER_NS, PS_PER_US, PS_PER_MS, PS_PER_S) == (10**3, 10**6, 10**9, 10**12)


def test_unit_functions() -> None:
    """ns, us and ms return picoseconds, and zero is a valid duration."""
    assert (ns(40), us(3), ms(2), ns(0)) == (40_000, 3_000_000, 2_000_000_000, 0)


@pytest.mark.parametrize("function", [ns, us, ms])
@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_unit_functions_reject(function: object, bad: object) -> None:
    """Negative numbers, floats, bools and strings are rejected with the one error shape."""
    with pytest.raises(ValueError, match=rf"^x must be a non-negative int, not {bad!r}$"):
        function(bad)  # type: ignore[operator]


def test_cycles_to_ps() -> None:
    """3,000 cycles at 3 GHz last 1 µs; at 1 MHz one cycle lasts 1 µs."""
    assert cycles_to_ps(3_000, 3_000) == PS_PER_US
    assert cycles_to_ps(1, 1) == PS_PER_US
    assert cycles_to_ps(0, 2_400) == 0


def test_cycles_to_ps_rounds_down() -> None:
    """One cycle at 3 GHz is 333.3 ps, floored to 333."""
    assert cycles_to_ps(1, 3_000) == 333


def test_ps_to_cycles_floor() -> None:
    """Only whole cycles count: 999 ps at 1 GHz is 0 cycles, 1,000 ps is 1."""
    assert ps_to_cycles(999, 1_000) == 0
    assert ps_to_cycles(1_000, 1_000) == 1
    assert ps_to_cycles(PS_PER_S, 2_400) == 2_400_000_000


def test_round_trip_loses_at_most_one_cycle() -> None:
    """Both directions floor, so a round trip at 3 GHz may lose a cycle: convert spans once."""
    assert ps_to_cycles(cycles_to_ps(1, 3_000), 3_000) == 0
    assert ps_to_cycles(cycles_to_ps(3, 3_000), 3_000) == 3
    for cycles in range(1_000):
        assert cycles - ps_to_cycles(cycles_to_ps(cycles, 3_000), 3_000) in (0, 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cycles_to_ps(-1, 1_000), "cycles must be a non-negative int, not -1"),
        (
            lambda: cycles_to_ps(1.0, 1_000),  # type: ignore[arg-type]
            "cycles must be a non-negative int, not 1.0",
        ),
        (lambda: cycles_to_ps(1, 0), "mhz must be a positive int, not 0"),
        (
            lambda: ps_to_cycles(1, 2.5),  # type: ignore[arg-type]
            "mhz must be a positive int, not 2.5",
        ),
        (lambda: ps_to_cycles(-5, 1_000), "t_ps must be a non-negative int, not -5"),
    ],
)
def test_cycle_conversions_reject(call: object, message: str) -> None:
    """Bad cycles, times or frequencies name the argument in the error."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        call()  # type: ignore[operator]
