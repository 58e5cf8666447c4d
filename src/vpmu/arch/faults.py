"""Guest-visible faults as values.

A guest access that the architecture rejects returns one of these instead of a result; a
Python exception is never the answer to a guest's bad access (docs/architecture.md,
"Invariants every change keeps").
"""

from __future__ import annotations

import enum


class Fault(enum.Enum):
    """An architectural fault a register access or instruction can take."""

    GP = "#GP"
    """x86 general-protection exception (#GP(0))."""
    UD = "#UD"
    """x86 invalid opcode."""
    UNDEF = "UNDEFINED"
    """Arm: the access is UNDEFINED (an exception with EC 0 to the guest's EL1)."""

    def __repr__(self) -> str:
        return f"Fault.{self.name}"
