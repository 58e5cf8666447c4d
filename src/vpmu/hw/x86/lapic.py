"""The local APIC's performance-monitoring LVT entry (LVTPC), reached via x2APIC MSR 0x834.

A PMI is delivered through LVTPC: dropped while the entry is masked (a masked LVT interrupt
is not held pending, SDM 11.5.1), otherwise delivered as an NMI or as the entry's fixed
vector. On Intel the APIC sets the entry's mask bit when it delivers a PMI (SDM 11.5.1: "When
the local APIC handles a performance-monitoring counters interrupt, it automatically sets the
mask flag"), so the handler must unmask it; AMD does not (KVM 49ff3b4aec51 exempts AMD).
"""

from __future__ import annotations

from vpmu.arch.faults import Fault
from vpmu.arch.regs import apply_write, read_value
from vpmu.arch.x86 import msrs
from vpmu.hw.core import DeliverFn


class Lapic:
    """The LVTPC of one CPU's local APIC."""

    spec = msrs.lvtpc_msr()
    """The LVTPC's declaration."""

    def __init__(self, *, mask_on_pmi: bool, deliver: DeliverFn) -> None:
        self.lvtpc = self.spec.reset
        """LVTPC value; reset masked (SDM 11.5.1: LVT entries reset with the mask bit set)."""
        self.mask_on_pmi = mask_on_pmi
        self.deliver = deliver
        self.delivered = 0
        """PMIs delivered to the CPU."""
        self.dropped = 0
        """PMIs lost because LVTPC was masked."""

    def __repr__(self) -> str:
        return f"Lapic(mask_on_pmi={self.mask_on_pmi})"

    @property
    def masked(self) -> bool:
        """LVTPC.MASK is set."""
        return bool(self.lvtpc >> msrs.LVT_MASKED & 1)

    def rdmsr(self) -> int:
        """RDMSR 0x834."""
        return read_value(self.spec, self.lvtpc)

    def wrmsr_faults(self, value: int) -> bool:
        """Whether WRMSR 0x834 of ``value`` takes #GP (no side effect)."""
        return apply_write(self.spec, self.lvtpc, value).fault

    def wrmsr(self, value: int) -> Fault | None:
        """WRMSR 0x834 (reserved bits #GP, as for every x2APIC register)."""
        result = apply_write(self.spec, self.lvtpc, value)
        if result.fault or result.store is None:
            return Fault.GP
        self.lvtpc = result.store
        return None

    def pmi(self) -> None:
        """The PMU raised a PMI: deliver it through LVTPC or drop it."""
        if self.masked:
            self.dropped += 1
            return
        vector = self.lvtpc & 0xFF
        nmi = (self.lvtpc >> 8 & 0b111) == msrs.LVT_DELIVERY_NMI
        if self.mask_on_pmi:
            self.lvtpc |= 1 << msrs.LVT_MASKED
        self.delivered += 1
        self.deliver(vector, nmi)
