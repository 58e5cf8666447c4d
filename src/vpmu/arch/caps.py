"""What every architecture's PMU capabilities say, whatever the architecture.

Each architecture declares its own capabilities type (``vpmu.arch.x86.caps.X86PmuCaps``,
``vpmu.arch.arm64.caps.ArmPmuCaps``) with the fields of its enumeration registers; this
protocol is the part the neutral layers read: which counters exist, in one global index space
per architecture, and how wide each is. A layer that needs more than this is architecture code
and imports the architecture's own type.
"""

from __future__ import annotations

from typing import Protocol, Self


class PmuCaps(Protocol):
    """The neutral view of one core's PMU."""

    @property
    def arch(self) -> str:
        """``"x86"`` or ``"arm64"``: which architecture's registers, traps and drivers apply."""
        ...

    @property
    def vendor(self) -> str:
        """Who designed the PMU: x86 "intel" or "amd"; arm64 the MIDR implementer ("arm")."""
        ...

    @property
    def counter_mask(self) -> int:
        """One bit per implemented counter, in the architecture's global counter index space
        (x86: GP 0-7, fixed 32+; arm64: event counters 0-30, the cycle counter 31)."""
        ...

    def width(self, idx: int) -> int:
        """Bits a counter stores (what a read returns and a write keeps)."""
        ...

    @property
    def counters_label(self) -> str:
        """The counters in the architecture's terms ("8 GP + 4 fixed", "6 event + cycle")."""
        ...

    @property
    def label(self) -> str:
        """The PMU's generation as listings show it (x86 "v5" or "PerfMonV2", "PMUv3p5")."""
        ...

    @property
    def user_read_indices(self) -> tuple[int, ...]:
        """The index a user-mode read of each counter takes, every counter once (x86: RDPMC
        ECX; arm64: the counter's own index, read with MRS PMEVCNTR<n>_EL0/PMCCNTR_EL0)."""
        ...

    def replace(self, **changes: object) -> Self:
        """A variant with ``changes`` (what userspace asks of KVM: a guest PMU shape)."""
        ...
