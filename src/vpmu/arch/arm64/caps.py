"""What one Arm core's PMUv3 implements (Arm ARM DDI 0487, D13 "The Performance Monitors
Extension" and the ID_AA64DFR0_EL1 / PMCR_EL0 descriptions).

The counter index space is the architecture's own: event counters 0 to N-1 (PMEVCNTR<n>_EL0,
N = PMCR_EL0.N, at most 31), the cycle counter PMCCNTR_EL0 at 31, and with FEAT_PMUv3_ICNTR
the fixed instruction counter PMICNTR_EL0 at 32 (the bit positions of PMCNTENSET_EL0 and
PMOVSSET_EL0).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from vpmu.arch.arm64.events import pmceid
from vpmu.arch.regs import set_bits

CYCLE_IDX = 31
"""PMCCNTR_EL0's bit in PMCNTENSET_EL0, PMOVSSET_EL0 and PMINTENSET_EL1."""
ICNTR_IDX = 32
"""PMICNTR_EL0's bit (FEAT_PMUv3_ICNTR)."""
MAX_EVENT_COUNTERS = 31
"""PMCR_EL0.N is 5 bits, and index 31 belongs to the cycle counter."""

PMUVER_V3 = 0b0001
PMUVER_V3P1 = 0b0100
PMUVER_V3P4 = 0b0101
PMUVER_V3P5 = 0b0110
PMUVER_V3P7 = 0b0111
PMUVER_V3P8 = 0b1000
PMUVER_V3P9 = 0b1001
"""ID_AA64DFR0_EL1.PMUVer (bits 11:8) values: FEAT_PMUv3 and its extensions."""


@dataclass(frozen=True, slots=True)
class ArmPmuCaps:
    """One Arm core's PMU as its ID registers and PMCR_EL0 enumerate it."""

    arch: ClassVar[str] = "arm64"

    implementer: int
    """MIDR_EL1.Implementer (bits 31:24): 0x41 for Arm Ltd."""
    part: int
    """MIDR_EL1.PartNum (bits 15:4): 0xD03 Cortex-A53, 0xD08 Cortex-A72, 0xD0C Neoverse N1."""
    pmuver: int
    """ID_AA64DFR0_EL1.PMUVer."""
    n_counters: int
    """PMCR_EL0.N: event counters besides the cycle counter, 0 to 31."""
    aarch32_el0: bool = True
    """EL0 can run AArch32 (ID_AA64PFR0_EL1.EL0); without it PMCR_EL0.LC reads as 1."""
    icntr: bool = False
    """FEAT_PMUv3_ICNTR: the fixed instruction counter PMICNTR_EL0."""
    events: frozenset[int] = frozenset()
    """The common events 0x00-0x3F implemented (PMCEID0_EL0 / PMCEID1_EL0; ``events``)."""

    def __post_init__(self) -> None:
        if not 0 <= self.n_counters <= MAX_EVENT_COUNTERS:
            raise ValueError(f"n_counters must be 0-{MAX_EVENT_COUNTERS} (PMCR_EL0.N), "
                             f"not {self.n_counters!r}")

    @property
    def vendor(self) -> str:
        """The MIDR implementer's name: "arm" for Arm Ltd (0x41)."""
        return {0x41: "arm"}.get(self.implementer, f"implementer {self.implementer:#x}")

    @property
    def pmceid0(self) -> int:
        """PMCEID0_EL0: common events 0x00-0x1F."""
        return pmceid(self.events)[0]

    @property
    def pmceid1(self) -> int:
        """PMCEID1_EL0: common events 0x20-0x3F."""
        return pmceid(self.events)[1]

    def replace(self, **changes: object) -> ArmPmuCaps:
        """A variant of these capabilities."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def long_event_counters(self) -> bool:
        """FEAT_PMUv3p5: event counters are 64 bits (overflow at 32 unless PMCR_EL0.LP)."""
        return self.pmuver >= PMUVER_V3P5

    @property
    def event_mask(self) -> int:
        """PMEVTYPER<n>_EL0.evtCount: 10 bits in PMUv3, 16 from PMUv3p1."""
        return 0x3FF if self.pmuver == PMUVER_V3 else 0xFFFF

    @property
    def counter_mask(self) -> int:
        """Event counters 0..N-1, the cycle counter, and PMICNTR_EL0 where implemented."""
        mask = (1 << self.n_counters) - 1 | 1 << CYCLE_IDX
        return mask | (1 << ICNTR_IDX if self.icntr else 0)

    @property
    def counters_label(self) -> str:
        """"6 event + cycle" (``PmuCaps.counters_label``), with PMICNTR_EL0 where present."""
        return f"{self.n_counters} event + cycle" + (" + instruction" if self.icntr else "")

    @property
    def label(self) -> str:
        """FEAT_PMUv3 and its extension level, from ID_AA64DFR0_EL1.PMUVer."""
        names = {PMUVER_V3: "PMUv3", PMUVER_V3P1: "PMUv3p1", PMUVER_V3P4: "PMUv3p4",
                 PMUVER_V3P5: "PMUv3p5", PMUVER_V3P7: "PMUv3p7", PMUVER_V3P8: "PMUv3p8",
                 PMUVER_V3P9: "PMUv3p9"}
        return names.get(self.pmuver, f"PMUVer {self.pmuver:#x}")

    @property
    def user_read_indices(self) -> tuple[int, ...]:
        """Every counter by its own index (EL0 reads it with MRS when PMUSERENR_EL0 allows)."""
        return tuple(set_bits(self.counter_mask))

    def width(self, idx: int) -> int:
        """Bits a counter stores: the cycle and instruction counters 64, an event counter 64
        with FEAT_PMUv3p5 and 32 before it."""
        if idx in (CYCLE_IDX, ICNTR_IDX):
            return 64
        return 64 if self.long_event_counters else 32

    def overflow_width(self, idx: int, *, lc: bool, lp: bool) -> int:
        """Where a counter overflows (sets its PMOVSSET bit) under PMCR_EL0.LC / .LP: the
        cycle counter at 64 bits with LC (forced on without AArch32 EL0), an event counter at
        64 with LP (FEAT_PMUv3p5 only), else 32; PMICNTR_EL0 at 64."""
        if idx == ICNTR_IDX:
            return 64
        if idx == CYCLE_IDX:
            return 64 if lc or not self.aarch32_el0 else 32
        return 64 if lp and self.long_event_counters else 32
