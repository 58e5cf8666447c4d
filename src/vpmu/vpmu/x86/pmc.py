"""``struct kvm_pmc``'s part every x86 vPMU design shares (arch/x86/kvm/pmu.h): the global
index, the width, the value KVM holds and the guest's selector. A design adds what it keeps
beside them (the emulated design its perf event, the mediated one its hardware selector).
"""

from __future__ import annotations

from dataclasses import dataclass

from mypy_extensions import mypyc_attr

from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE

FIXED_BITS_STRIDE = 4
"""INTEL_FIXED_BITS_STRIDE: each fixed counter has a 4-bit field in FIXED_CTR_CTRL."""
FIXED_BITS_MASK = 0xF
"""INTEL_FIXED_BITS_MASK."""
FIXED_OS = 0x1
"""A fixed counter's field: count at CPL 0 (INTEL_FIXED_0_KERNEL; a selector's OS)."""
FIXED_USR = 0x2
"""A fixed counter's field: count at CPL > 0 (INTEL_FIXED_0_USER; a selector's USR)."""
FIXED_PMI = 0x8
"""A fixed counter's field: interrupt on overflow (INTEL_FIXED_0_ENABLE_PMI; a selector's
INT)."""
FIXED_EN = FIXED_OS | FIXED_USR
"""The field's ring bits: the counter counts in some ring (fixed_ctrl_field & 0x3)."""


@mypyc_attr(allow_interpreted_subclasses=True)  # MediatedPmc is not compiled
@dataclass(eq=False)
class X86Pmc:
    """One virtual counter: GP ``idx`` < 32, fixed ``32 + i``. Identity is the counter (no
    field equality): designs keep them in lists and bitmaps by ``idx``."""

    idx: int
    width: int
    counter: int = 0
    """The value KVM holds (the emulated design adds its perf event's count to it)."""
    eventsel: int = 0
    """GP: the guest's selector; the emulated design's fixed counters keep their
    architectural encoding here (fixed_pmc_events)."""

    @property
    def is_fixed(self) -> bool:
        """A fixed counter (global index 32+)."""
        return self.idx >= FIXED_IDX_BASE

    @property
    def mask(self) -> int:
        """pmc_bitmask."""
        return (1 << self.width) - 1


def ring_field(eventsel: int) -> int:
    """A selector's OS, USR and INT as a fixed counter's field (FIXED_OS, FIXED_USR,
    FIXED_PMI): one form for "where does it count, does it interrupt" for both kinds."""
    return ((FIXED_OS if eventsel & msrs.EVTSEL_OS else 0)
            | (FIXED_USR if eventsel & msrs.EVTSEL_USR else 0)
            | (FIXED_PMI if eventsel & msrs.EVTSEL_INT else 0))


def fixed_ctrl_field(ctrl: int, pmc: X86Pmc) -> int:
    """fixed_ctrl_field: the fixed counter's 4-bit field of a FIXED_CTR_CTRL value."""
    return ctrl >> FIXED_BITS_STRIDE * (pmc.idx - FIXED_IDX_BASE) & FIXED_BITS_MASK


def fixed_bits(pmc: X86Pmc, bits: int) -> int:
    """intel_fixed_bits_by_idx: ``bits`` placed in the fixed counter's field."""
    return bits << FIXED_BITS_STRIDE * (pmc.idx - FIXED_IDX_BASE)
