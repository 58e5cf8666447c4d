"""Rate-based phases: execution described by per-instruction rates instead of a script.

A ``Phase`` says how a stretch of code behaves (IPC, branches and misses per instruction,
cache behaviour, the share of it spent in user mode); ``Phase.stream`` turns it into an exact
``Stream`` for a given amount of work, rounding each total down once. Named presets cover
the shapes the seed threads (docs/sources.md) use: seed 001's branch-heavy ``br_instr``, a compute
loop, a memory-bound scan and a syscall-heavy server. Their rates are estimates typical of such code
on a modern server core, stated as such; a scenario can give its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from vpmu.arch import events as ev
from vpmu.workloads.branches import for_phase
from vpmu.workloads.streams import Stream


@dataclass(frozen=True, slots=True)
class Phase:
    """Per-instruction event rates of a stretch of code."""

    name: str
    ipc: Fraction
    """Instructions per core cycle."""
    branches_per_insn: Fraction = Fraction(0)
    branch_miss_rate: Fraction = Fraction(0)
    """Mispredicted fraction of branches."""
    loads_per_insn: Fraction = Fraction(0)
    stores_per_insn: Fraction = Fraction(0)
    llc_refs_per_kinsn: Fraction = Fraction(0)
    """LLC references per thousand instructions."""
    llc_miss_rate: Fraction = Fraction(0)
    """Missed fraction of LLC references."""
    user_fraction: Fraction = Fraction(1)
    """Share of the phase's work done at CPL 3 (the rest at CPL 0)."""

    def __post_init__(self) -> None:
        if self.ipc <= 0:
            raise ValueError(f"phase {self.name!r}: ipc must be positive, not {self.ipc!r}")
        for attr in ("branch_miss_rate", "llc_miss_rate", "user_fraction"):
            value = getattr(self, attr)
            if not 0 <= value <= 1:
                raise ValueError(f"phase {self.name!r}: {attr} must be in [0, 1], "
                                 f"not {value!r}")

    def stream(self, *, instructions: int) -> Stream:
        """The exact stream for ``instructions`` instructions of this phase."""
        if instructions <= 0:
            raise ValueError(f"instructions must be positive, not {instructions!r}")
        n = Fraction(instructions)
        branches = int(n * self.branches_per_insn)
        llc_refs = int(n * self.llc_refs_per_kinsn / 1000)
        counts = {
            ev.INSTRUCTIONS: instructions, ev.CYCLES: max(int(n / self.ipc), 1),
            ev.BRANCHES: branches, ev.BRANCH_MISSES: int(branches * self.branch_miss_rate),
            ev.LOADS: int(n * self.loads_per_insn), ev.STORES: int(n * self.stores_per_insn),
            ev.LLC_REFERENCES: llc_refs, ev.LLC_MISSES: int(llc_refs * self.llc_miss_rate),
        }
        pattern = for_phase(self.name, round(self.branch_miss_rate * 1000))
        return Stream(f"{self.name}[{instructions}]", counts, self.user_fraction, pattern)

    def stream_for_cycles(self, cycles: int) -> Stream:
        """The stream that takes about ``cycles`` core cycles."""
        return self.stream(instructions=max(int(cycles * self.ipc), 1))


F = Fraction

PHASES: dict[str, Phase] = {p.name: p for p in (
    Phase("br_instr", ipc=F(3, 2), branches_per_insn=F(1, 3), branch_miss_rate=F(1, 50),
          loads_per_insn=F(1, 5), llc_refs_per_kinsn=F(1), llc_miss_rate=F(1, 10)),
    Phase("compute", ipc=F(5, 2), branches_per_insn=F(1, 8), branch_miss_rate=F(1, 200),
          loads_per_insn=F(1, 4), stores_per_insn=F(1, 10), llc_refs_per_kinsn=F(1, 2),
          llc_miss_rate=F(1, 20)),
    Phase("memory", ipc=F(1, 2), branches_per_insn=F(1, 10), branch_miss_rate=F(1, 100),
          loads_per_insn=F(2, 5), stores_per_insn=F(1, 5), llc_refs_per_kinsn=F(30),
          llc_miss_rate=F(1, 2)),
    Phase("syscall-heavy", ipc=F(1), branches_per_insn=F(1, 5), branch_miss_rate=F(1, 25),
          loads_per_insn=F(3, 10), stores_per_insn=F(3, 20), llc_refs_per_kinsn=F(5),
          llc_miss_rate=F(1, 5), user_fraction=F(2, 5)),
)}
"""Named phase presets (rates are estimates, see the module docstring)."""


def get_phase(name: str) -> Phase:
    """Look a phase preset up by name; the error lists the valid names."""
    try:
        return PHASES[name]
    except KeyError:
        raise ValueError(f"phase must be one of {sorted(PHASES)}, not {name!r}") from None
