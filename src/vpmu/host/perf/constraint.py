"""What counters an event may use (``struct event_constraint``'s counter mask), whatever the
PMU: a driver derives one per event (x86: ``vpmu.host.perf.x86.assign.constraint_for``; arm64:
the cycle counter for CPU_CYCLES, the event counters for everything) and schedules by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpmu.arch.regs import set_bits

COUNTER_IDX_MAX = 64
"""Global counter indices are bits of a 64-bit mask (x86 X86_PMC_IDX_MAX; arm64 uses 0-32)."""


@dataclass(frozen=True, slots=True)
class Constraint:
    """The counters an event may use: ``struct event_constraint``'s ``idxmsk64``.

    The weight (how many counters are allowed) is derived, never stored twice; the slow path
    schedules the most constrained events first by it.
    """

    idxmsk: int
    """Bit ``i`` set: global counter index ``i`` is allowed."""

    def __post_init__(self) -> None:
        if not isinstance(self.idxmsk, int) or not 0 <= self.idxmsk < 1 << COUNTER_IDX_MAX:
            raise ValueError(f"idxmsk must be a 64-bit counter mask, not {self.idxmsk!r}")

    @classmethod
    def of(cls, *indices: int) -> Constraint:
        """A constraint allowing exactly these global counter indices."""
        if not all(isinstance(i, int) and 0 <= i < COUNTER_IDX_MAX for i in indices):
            raise ValueError(f"indices must be global counter indices 0..63, not {indices!r}")
        return cls(sum({1 << i for i in indices}))

    @property
    def weight(self) -> int:
        """Number of allowed counters; 0 means the event can never be scheduled."""
        return self.idxmsk.bit_count()

    @property
    def counters(self) -> tuple[int, ...]:
        """The allowed global counter indices, ascending."""
        return tuple(set_bits(self.idxmsk))

    def allows(self, idx: int) -> bool:
        """``test_bit(idx, c->idxmsk)``."""
        return idx >= 0 and bool(self.idxmsk >> idx & 1)

    def __repr__(self) -> str:
        return f"Constraint(idxmsk={self.idxmsk:#x})"
