"""Scripted streams and rate phases produce exact, validated totals."""

from fractions import Fraction

import pytest

from vpmu.arch.x86 import events as ev
from vpmu.workloads import PHASES, Stream, get_phase, kut_loop, loop, loop_self
from vpmu.workloads.streams import SELFTEST_NUM_INSNS_RETIRED, selftest_measured_block


def test_scripted_streams_have_the_suites_exact_totals() -> None:
    """loop: 10 insns + 1 branch per iteration; kut blob + WRMSR = 10N+17; selftest 64+1."""
    assert (loop(7).get(ev.INSTRUCTIONS), loop(7).get(ev.BRANCHES)) == (70, 7)
    n = 1_000_000
    assert kut_loop(n).get(ev.INSTRUCTIONS) + 1 == 10_000_017
    assert kut_loop(n).get(ev.BRANCHES) == 1_000_002
    assert selftest_measured_block().get(ev.INSTRUCTIONS) + 1 == SELFTEST_NUM_INSNS_RETIRED
    assert loop_self(10).get(ev.BRANCHES) == 10


def test_stream_validation_names_the_problem() -> None:
    """Unknown keys, negative counts, no cycles and bad fractions are refused clearly."""
    with pytest.raises(ValueError, match="event keys must be among"):
        Stream("x", {ev.CYCLES: 1, "bogus": 1})
    with pytest.raises(ValueError, match="non-negative"):
        Stream("x", {ev.CYCLES: 1, ev.INSTRUCTIONS: -1})
    with pytest.raises(ValueError, match="cycles must be positive"):
        Stream("x", {ev.INSTRUCTIONS: 1})
    with pytest.raises(ValueError, match="user_fraction"):
        Stream("x", {ev.CYCLES: 1}, Fraction(3, 2))
    with pytest.raises(ValueError, match="positive int"):
        loop(0)


def test_stream_counts_are_read_only() -> None:
    """A stream's totals cannot be changed after creation (streams are shared values)."""
    s = loop(3)
    with pytest.raises(TypeError):
        s.counts[ev.INSTRUCTIONS] = 0  # type: ignore[index]


@pytest.mark.parametrize("name", sorted(PHASES))
def test_phase_stream_follows_its_rates(name: str) -> None:
    """A phase's stream has the phase's IPC and per-instruction rates, rounded down once."""
    phase = get_phase(name)
    s = phase.stream(instructions=1_000_000)
    assert s.get(ev.INSTRUCTIONS) == 1_000_000
    assert s.cycles == int(1_000_000 / phase.ipc)
    assert s.get(ev.BRANCHES) == int(1_000_000 * phase.branches_per_insn)
    assert s.user_fraction == phase.user_fraction
    assert phase.stream_for_cycles(1000).cycles == pytest.approx(1000, abs=1)


def test_phase_errors() -> None:
    """Unknown phase names and impossible rates are refused clearly."""
    with pytest.raises(ValueError, match="phase must be one of"):
        get_phase("nope")
    with pytest.raises(ValueError, match="ipc must be positive"):
        PHASES["compute"].__class__("bad", ipc=Fraction(0))
