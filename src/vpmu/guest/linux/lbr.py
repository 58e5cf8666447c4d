"""The guest's perf LBR code (arch/x86/events/intel/lbr.c@v6.6), as guest operations.

- ``intel_pmu_lbr_add``: the first LBR user of the CPU resets the stack (FROM, TO and, from
  format 5, INFO of every entry written with 0, then LBR_SELECT): 97 WRMSRs on Skylake.
- ``__intel_pmu_lbr_enable`` (from ``intel_pmu_enable_all``): LBR_SELECT (not at the end of
  a PMI), then DEBUGCTL read-modify-written with LBR and, outside call-stack mode,
  FREEZE_LBRS_ON_PMI; at the end of a PMI on PMU v4+ nothing (the status ack unfreezes).
- ``__intel_pmu_lbr_disable`` (from ``intel_pmu_disable_all``, not from the PMI handler):
  DEBUGCTL read-modify-written without them.
- ``intel_pmu_lbr_read_64`` (at each pass of the PMI handler): TOS, then FROM, TO (and INFO)
  newest first; assumption, as for the host: the walk stops at the first empty FROM.

Every access is an RDMSR/WRMSR of the guest: passed through while KVM's guest LBR event is
active, trapped otherwise (``vpmu.vpmu.x86.lbr``).
"""

from __future__ import annotations

from collections.abc import Iterable

from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import PERF_CAP_LBR_FMT
from vpmu.guest.port import GuestGen, Rdmsr, Wrmsr
from vpmu.linux.lbr import freezes_on_pmi, lbr_select

LBR_DEPTH = 32
"""Entries Linux uses on the guest's CPU models (intel_pmu_lbr_init_skl / _icl: lbr_nr = 32,
the Skylake and Ice Lake presets' depth)."""
ARCH_LBR_FORMAT = 0x3F
"""LBR_FMT of an architectural-LBR CPU (no legacy LBR MSRs)."""


def legacy_lbr_format(perf_capabilities: int) -> int:
    """The legacy LBR format a guest finds in PERF_CAPABILITIES (0: none)."""
    fmt = perf_capabilities & PERF_CAP_LBR_FMT
    return 0 if fmt == ARCH_LBR_FORMAT else fmt


class GuestLbr:
    """The guest CPU's LBR users (cpuc->lbr_users) and their filter."""

    def __init__(self, lbr_format: int, version: int) -> None:
        self.per_entry = msrs.lbr_entry_msrs(lbr_format)
        self.version = version
        self.users = 0
        self.types: tuple[str, ...] = ()
        """The branch types of the LBR users (the first one's: one filter per CPU)."""
        self.reset_pending = False
        self.reads = 0
        """Stacks read at PMIs."""
        self.records = 0
        """Records those stacks held."""

    def __repr__(self) -> str:
        return f"GuestLbr(users={self.users})"

    def add(self, types: Iterable[str]) -> None:
        """intel_pmu_lbr_add (its reset runs at the next enable, still inside the same
        perf_pmu_disable section)."""
        if not self.users:
            self.types, self.reset_pending = tuple(types), True
        self.users += 1

    def delete(self) -> None:
        """intel_pmu_lbr_del."""
        self.users -= 1

    def _reset(self) -> GuestGen:
        for i in range(LBR_DEPTH):
            yield Wrmsr(msrs.MSR_LBR_NHM_FROM + i, 0)
            yield Wrmsr(msrs.MSR_LBR_NHM_TO + i, 0)
            if self.per_entry == 3:
                yield Wrmsr(msrs.MSR_LBR_INFO_0 + i, 0)
        yield Wrmsr(msrs.MSR_LBR_SELECT, 0)

    def enable(self, *, pmi: bool) -> GuestGen:
        """__intel_pmu_lbr_enable (with the pending reset first)."""
        if not self.users or (pmi and self.version >= 4):
            return
        if self.reset_pending:
            self.reset_pending = False
            yield from self._reset()
        if not pmi:
            yield Wrmsr(msrs.MSR_LBR_SELECT, lbr_select(self.types, msrs.LBR_SELECT_LSB))
        bits = 1 << msrs.DEBUGCTL_LBR
        bits |= 1 << msrs.DEBUGCTL_FREEZE_LBRS_ON_PMI if freezes_on_pmi(self.types) else 0
        debugctl = yield Rdmsr(msrs.IA32_DEBUGCTL)
        yield Wrmsr(msrs.IA32_DEBUGCTL, (debugctl if isinstance(debugctl, int) else 0) | bits)

    def disable(self) -> GuestGen:
        """__intel_pmu_lbr_disable."""
        if not self.users:
            return
        bits = 1 << msrs.DEBUGCTL_LBR | 1 << msrs.DEBUGCTL_FREEZE_LBRS_ON_PMI
        debugctl = yield Rdmsr(msrs.IA32_DEBUGCTL)
        yield Wrmsr(msrs.IA32_DEBUGCTL, (debugctl if isinstance(debugctl, int) else 0) & ~bits)

    def read(self) -> GuestGen:
        """intel_pmu_lbr_read_64: TOS, then the entries newest first until an empty FROM."""
        if not self.users:
            return
        tos = yield Rdmsr(msrs.MSR_LBR_TOS)
        tos = tos if isinstance(tos, int) else 0
        n = 0
        while n < LBR_DEPTH:
            slot = (tos - n) % LBR_DEPTH
            frm = yield Rdmsr(msrs.MSR_LBR_NHM_FROM + slot)
            if not frm:
                break
            yield Rdmsr(msrs.MSR_LBR_NHM_TO + slot)
            if self.per_entry == 3:
                yield Rdmsr(msrs.MSR_LBR_INFO_0 + slot)
            n += 1
        self.reads += 1
        self.records += n
