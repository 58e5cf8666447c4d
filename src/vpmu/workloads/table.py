"""Workloads: a named sequence of rate phases, each with its share of the run's time.

A ``Workload`` is what a guest (or a host load) runs: its phases in order, each with a
weight (its share of the time), the sequence optionally repeated. A run gives it a budget of
core cycles (``duration_ms`` of bare-metal time at the preset's clock); ``streams`` splits
the budget among the passes and, within each pass, among the phases by weight, and turns
each piece into that phase's exact ``Stream``. The split is integer and cumulative (each
piece is ``floor(total * upto / weights) - floor(total * before / weights)``), so the pieces
add up to the budget exactly and a run's ground truth is the sum of its streams' counts.

A single-phase workload of weight 1 gives the one stream ``Phase.stream_for_cycles`` gives:
a scenario naming a built-in phase runs what it ran before workloads had phases.

Built-in workloads (``builtin``) are the phase presets of ``vpmu.workloads.phases`` (one
phase each), the SPEC CPU2017 integer rate presets and their suite mix
(``vpmu.workloads.spec2017``). A scenario adds its own (``vpmu.scenario.workload_schema``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

from vpmu.workloads.phases import PHASES, Phase
from vpmu.workloads.streams import Stream


@dataclass(frozen=True, slots=True)
class WorkloadPhase:
    """One phase of a workload and its weight: its share of each pass's time."""

    phase: Phase
    weight: Fraction

    def __post_init__(self) -> None:
        if self.weight <= 0:
            raise ValueError(f"phase {self.phase.name!r}: weight must be positive, "
                             f"not {self.weight!r}")


@dataclass(frozen=True, slots=True)
class Workload:
    """A named sequence of phases, run ``repeat`` times over a run's cycles."""

    name: str
    phases: tuple[WorkloadPhase, ...]
    repeat: int = 1

    def __post_init__(self) -> None:
        if not self.phases:
            raise ValueError(f"workload {self.name!r}: expected at least one phase")
        if type(self.repeat) is not int or self.repeat < 1:
            raise ValueError(f"workload {self.name!r}: repeat must be a positive int, "
                             f"not {self.repeat!r}")

    @classmethod
    def single(cls, phase: Phase) -> Workload:
        """The workload of one phase, named after it."""
        return cls(phase.name, (WorkloadPhase(phase, Fraction(1)),))

    def cycle_split(self, cycles: int) -> list[tuple[Phase, int]]:
        """Each piece of the run, in order: (phase, its cycles); pieces of 0 cycles are left
        out, and a budget too small for any piece goes whole to the first phase (as
        ``Phase.stream_for_cycles`` takes it, 0 included)."""
        total = sum(p.weight for p in self.phases)
        pieces: list[tuple[Phase, int]] = []
        for k in range(self.repeat):
            budget = cycles * (k + 1) // self.repeat - cycles * k // self.repeat
            before = Fraction(0)
            for p in self.phases:
                upto = before + p.weight
                n = int(budget * upto / total) - int(budget * before / total)
                before = upto
                if n > 0:
                    pieces.append((p.phase, n))
        return pieces or [(self.phases[0].phase, cycles)]

    def streams(self, cycles: int) -> list[Stream]:
        """The exact streams of a run of ``cycles`` core cycles, in order."""
        return [phase.stream_for_cycles(n) for phase, n in self.cycle_split(cycles)]


def truth(streams: list[Stream]) -> dict[str, int]:
    """The exact event totals of running ``streams`` one after the other."""
    out: dict[str, int] = {}
    for s in streams:
        for key, value in s.counts.items():
            out[key] = out.get(key, 0) + value
    return out


@cache
def builtin() -> Mapping[str, Workload]:
    """Every built-in workload by name: the phase presets, then the SPEC CPU2017 presets."""
    from vpmu.workloads.spec2017 import spec_workloads  # spec2017 builds on this module

    out = {name: Workload.single(phase) for name, phase in PHASES.items()}
    out.update(spec_workloads())
    return out


def resolve(name: str, extra: Mapping[str, Workload] | None = None) -> Workload:
    """The workload ``name``: one of ``extra`` (a scenario's own) or a built-in one; the
    error lists the valid names."""
    if extra and name in extra:
        return extra[name]
    found = builtin().get(name)
    if found is None:
        valid = [*builtin(), *(extra or {})]
        raise ValueError(f"workload must be one of {valid}, not {name!r}")
    return found
