"""The ``[[workload]]`` tables of a scenario: a user's program as named rate phases.

A ``[[workload]]`` names a workload and lists its phases in order (``[[workload.phase]]``),
each with its rates per kilo-instruction as a profiler reports them (IPC, branches and
branch misses, loads, stores, LLC references and misses) and its size: ``share`` (its part
of each pass's time) or ``instructions`` (its length; the phases' cycles, instructions /
ipc, set their shares). ``repeat`` runs the sequence that many times. A ``[[vm.guest]]`` or
a ``[[host_task]]`` load then names it as its ``workload``, besides the built-in ones
(``vpmu.workloads.table.builtin``). docs/workloads.md documents every key.

The models follow ``vpmu.scenario.schema``'s rules (unknown keys are errors, values are
strict and frozen, every number has a range) and report cross-field problems at their own
key path (``workload[0].phase[1].branch_mpki``). ``to_workload`` turns a checked table into
the ``vpmu.workloads`` value a run executes; rates written as decimals (``ipc = 1.8``) are
taken at their decimal value (9/5), not the nearest binary float.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Final, Self

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from vpmu.scenario.checks import STRICT, raise_problems, repeated_names, valid_name
from vpmu.workloads.phases import Phase
from vpmu.workloads.table import Workload, WorkloadPhase

MAX_INSTRUCTIONS: Final = 1e18
"""A guard against typos (``2e80``), not a modelling limit: 10^18 instructions are years of
a core's work."""
MAX_IPC: Final = 64.0
"""A guard: no core retires 64 instructions a cycle."""
MAX_PKI: Final = 100_000.0
"""A guard on memory rates per kilo-instruction (an instruction may make several accesses,
a string move many)."""
MAX_REPEAT: Final = 1_000_000
SHARE_TOLERANCE: Final = 1e-9
"""How far from 1 the shares of a workload's phases may sum (decimal shares such as 0.1,
0.2 and 0.7 do not add up to exactly 1.0 in binary)."""


def _exact(value: float) -> Fraction:
    """A TOML number at the decimal value it was written as (1.8 -> 9/5)."""
    return Fraction(repr(value))


class _Model(BaseModel):
    """A scenario table (``STRICT``, as ``vpmu.scenario.schema``'s)."""

    model_config = STRICT


class WorkloadPhaseSpec(_Model):
    """``[[workload.phase]]``: one phase of a workload, its size and its rates."""

    name: Annotated[str, BeforeValidator(valid_name)]
    """Phase name, unique in its workload."""
    instructions: float | None = Field(default=None, gt=0, le=MAX_INSTRUCTIONS)
    """Instructions of the phase in one pass of the sequence (1 to 10^18); give this or
    ``share`` (the same choice in every phase of a workload)."""
    share: float | None = Field(default=None, gt=0, le=1)
    """The phase's part of each pass's time, in (0, 1]; the shares of a workload sum to 1."""
    ipc: float = Field(gt=0, le=MAX_IPC)
    """Instructions per core cycle."""
    branches_pki: float = Field(default=0.0, ge=0, le=1000)
    """Branch instructions per thousand instructions (0-1000)."""
    branch_mpki: float = Field(default=0.0, ge=0, le=1000)
    """Mispredicted branches per thousand instructions (at most ``branches_pki``)."""
    loads_pki: float = Field(default=0.0, ge=0, le=MAX_PKI)
    """Memory loads per thousand instructions."""
    stores_pki: float = Field(default=0.0, ge=0, le=MAX_PKI)
    """Memory stores per thousand instructions."""
    llc_refs_pki: float = Field(default=0.0, ge=0, le=MAX_PKI)
    """Last-level cache references per thousand instructions."""
    llc_mpki: float = Field(default=0.0, ge=0, le=MAX_PKI)
    """Last-level cache misses per thousand instructions (at most ``llc_refs_pki``)."""
    user_fraction: float = Field(default=1.0, ge=0, le=1)
    """Share of the phase's work done in user mode (CPL 3 / EL0); the rest in the kernel."""

    @model_validator(mode="after")
    def _check_rates(self) -> Self:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if (self.instructions is None) == (self.share is None):
            given = "both" if self.share is not None else "neither"
            problems.append(((), f"expected one of instructions or share, got {given}"))
        for misses, refs in (("branch_mpki", "branches_pki"), ("llc_mpki", "llc_refs_pki")):
            if getattr(self, misses) > getattr(self, refs):
                problems.append(((misses,), f"expected at most {refs} = "
                                            f"{getattr(self, refs):g}, got "
                                            f"{getattr(self, misses):g}"))
        raise_problems(problems)
        return self

    def to_phase(self, workload: str) -> Phase:
        """The rate phase this table describes (named ``WORKLOAD.PHASE``)."""
        branches, refs = _exact(self.branches_pki), _exact(self.llc_refs_pki)
        return Phase(
            f"{workload}.{self.name}", ipc=_exact(self.ipc),
            branches_per_insn=branches / 1000,
            branch_miss_rate=_exact(self.branch_mpki) / branches if branches else Fraction(0),
            loads_per_insn=_exact(self.loads_pki) / 1000,
            stores_per_insn=_exact(self.stores_pki) / 1000,
            llc_refs_per_kinsn=refs,
            llc_miss_rate=_exact(self.llc_mpki) / refs if refs else Fraction(0),
            user_fraction=_exact(self.user_fraction))

    @property
    def weight(self) -> Fraction:
        """Its part of a pass's time: ``share``, or its cycles (instructions / ipc)."""
        if self.share is not None:
            return _exact(self.share)
        assert self.instructions is not None
        return _exact(self.instructions) / _exact(self.ipc)


class WorkloadSpec(_Model):
    """``[[workload]]``: a named workload, its phases in order, how often they repeat."""

    name: Annotated[str, BeforeValidator(valid_name)]
    """The name ``[[vm.guest]]`` and ``[[host_task]]`` give as ``workload``; unique, and not
    a built-in workload's."""
    description: str = ""
    """What the workload is, for the reader."""
    repeat: int = Field(default=1, ge=1, le=MAX_REPEAT)
    """How many times the phase sequence runs in a run's work (1 to 10^6)."""
    phase: list[WorkloadPhaseSpec] = Field(min_length=1, max_length=1024)
    """``[[workload.phase]]``: the phases, in the order they run (1 to 1024)."""

    @model_validator(mode="after")
    def _check_phases(self) -> Self:
        problems = repeated_names((p.name for p in self.phase), "phase", "phase")
        by_share = [p.share is not None for p in self.phase]
        if any(by_share) and not all(by_share):
            problems += [(("phase", i, "share" if s else "instructions"),
                          "expected every phase of a workload to give share, or every one "
                          "instructions, not a mix")
                         for i, s in enumerate(by_share)]
        elif all(by_share):
            total = sum(p.share or 0.0 for p in self.phase)
            if abs(total - 1) > SHARE_TOLERANCE:
                problems.append((("phase",), f"expected the phases' shares to sum to 1, got "
                                             f"{total:g}"))
        raise_problems(problems)
        return self

    def to_workload(self) -> Workload:
        """The workload a run executes."""
        return Workload(self.name, tuple(WorkloadPhase(p.to_phase(self.name), p.weight)
                                         for p in self.phase), self.repeat)
