"""perf's x86 driver on one CPU: programming counters, reading them, the global control.

What arch/x86/events/core.c and intel/core.c / amd/core.c do with the MSRs: an event on GP
counter i gets its EVTSEL (event bits | USR unless exclude_user | OS unless exclude_kernel |
INT if it samples | EN) and its counter armed at ``-period`` (x86_perf_event_set_period); a
fixed counter gets its 4-bit FIXED_CTR_CTRL field. The global control enables exactly the
active counters; on Intel the guest's copy (loaded at VM-entry, ``perf_guest_get_msrs``)
leaves out the exclude_guest events and the host's leaves out the exclude_host ones, while on
AMD the HostOnly/GuestOnly select bits do it.

The driver writes the hardware directly (the kernel at CPL 0); what the writes cost is
charged by the caller from the cost table, per event scheduled in or out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, X86PmuCaps
from vpmu.arch.x86.msrs import (
    AMD_EVTSEL_GUEST_ONLY,
    AMD_EVTSEL_HOST_ONLY,
    EVTSEL_EN,
    EVTSEL_INT,
    EVTSEL_OS,
    EVTSEL_USR,
    LVT_DELIVERY_NMI,
    LVT_MASKED,
)
from vpmu.host.perf.constraint import Constraint
from vpmu.host.perf.event import PerfEvent
from vpmu.host.perf.x86.assign import assign, constraint_for
from vpmu.host.perf.x86.events_map import PMU_EVENT_ALIASES, hw_event_config
from vpmu.host.perf.x86.lbr import X86HostLbr
from vpmu.hw.x86.cpu import X86Cpu
from vpmu.hw.x86.pmu import X86Pmu
from vpmu.uapi.perf_event import PERF_TYPE_RAW

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu

RAW_EVENT_MASK = 0xFFFF_FFFF & ~(EVTSEL_USR | EVTSEL_OS | EVTSEL_INT | EVTSEL_EN) | (0xF << 32)
"""X86_RAW_EVENT_MASK with AMD's event bits 35:32: what a raw config names (perf sets
USR/OS/INT/EN itself)."""
X86_MAX_PERIOD = (1 << 47) - 1
"""x86_pmu.max_period for 48-bit counters: a counting event is armed at -max_period."""


class X86PerfDriver:
    """The per-CPU x86 PMU driver state (struct cpu_hw_events)."""

    pmu_name = "cpu"
    """The x86 core PMU's name (a hybrid part's would be cpu_core / cpu_atom)."""
    pmu_type: int | None = PERF_TYPE_RAW
    """perf_pmu_register(&pmu, "cpu", PERF_TYPE_RAW)."""
    pmi_vector: int | None = None
    """The host PMI is an NMI (the LVTPC's delivery mode)."""

    def __init__(self, cpu: Pcpu) -> None:
        hw = cpu.hw
        if not isinstance(hw, X86Cpu):
            raise ValueError(f"X86PerfDriver needs an x86 CPU, not {hw!r}")
        self.hw = hw
        self.pmu: X86Pmu = hw.x86_pmu
        self.caps = self.pmu.caps
        self.events: dict[int, PerfEvent] = {}
        """Active events by global counter index (cpuc->events / assign)."""
        self.dirty = 0
        """Counters an event has used since the last perf_clear_dirty_counters."""
        self.guest = False
        self.suspended = False
        """A mediated guest context owns the PMU: the global control is not perf's to write."""
        self.lbr = X86HostLbr(self.pmu, self.pmu.lbr) if self.pmu.lbr is not None else None
        """The legacy LBR as perf's lbr.c drives it (none without one)."""
        self.pmu.svme = not self.caps.is_intel  # kvm_amd sets EFER.SVME when loaded
        self.sysfs_events: Mapping[str, int] = PMU_EVENT_ALIASES[self.caps.vendor]
        """The core PMU's named sysfs events (Intel ``slots``)."""
        self._counter_mask = self.caps.gp_mask | self.caps.fixed_global_mask
        ovf = self.pmu.specs.get(msrs.IA32_PERF_GLOBAL_OVF_CTRL) if self.caps.is_intel else None
        self._ack_mask = ovf.defined_mask if ovf is not None else self._counter_mask
        """What the PMI's ack clears: Intel's handler acks the status as read
        (intel_pmu_handle_irq -> intel_pmu_ack_status, arch/x86/events/intel/core.c@v6.6),
        which on v4 also unfreezes (CTR_FRZ, LBR_FRZ: "v4 can do that as part of the
        GLOBAL_STATUS ack", lbr.c); AMD's STATUS_CLR has the counters' bits only."""

    def __repr__(self) -> str:
        return f"X86PerfDriver(pmu={self.pmu!r})"

    # -- addresses -----------------------------------------------------------------------
    def _ctr_addr(self, idx: int) -> int:
        return ctr_addr(self.caps, idx)

    def _sel_addr(self, idx: int) -> int:
        return sel_addr(self.caps, idx)

    def _width(self, idx: int) -> int:
        return self.caps.fixed_width if idx >= FIXED_IDX_BASE else self.caps.gp_width

    def _write(self, addr: int, value: int) -> None:
        fault = self.pmu.wrmsr(addr, value)
        if fault is not None:
            raise AssertionError(f"perf's WRMSR {addr:#x} <- {value:#x} faulted: a model bug")

    # -- encoding ------------------------------------------------------------------------
    def evtsel(self, event: PerfEvent) -> int:
        """The EVTSEL value for a GP counter (x86_pmu_hw_config + __x86_pmu_enable_event)."""
        a = event.attr
        value = event.hw_config | EVTSEL_EN
        value |= 0 if a.exclude_user else EVTSEL_USR
        value |= 0 if a.exclude_kernel else EVTSEL_OS
        value |= EVTSEL_INT if (a.is_sampling or event.overflow_handler) else 0
        if not self.caps.is_intel:
            if a.exclude_guest and not a.exclude_host:
                value |= AMD_EVTSEL_HOST_ONLY
            elif a.exclude_host and not a.exclude_guest:
                value |= AMD_EVTSEL_GUEST_ONLY
        return value

    def _fixed_field(self, event: PerfEvent) -> int:
        a = event.attr
        field = (0 if a.exclude_kernel else 1) | (0 if a.exclude_user else 2)
        return field | (8 if (a.is_sampling or event.overflow_handler) else 0)

    # -- programming ---------------------------------------------------------------------
    def add(self, event: PerfEvent, idx: int) -> None:
        """Put ``event`` on counter ``idx``, armed for its period, and enable it."""
        with self.pmu.batch():
            self._add(event, idx)

    def _add(self, event: PerfEvent, idx: int) -> None:
        self.events[idx] = event
        event.hw_idx = idx
        self.dirty |= 1 << idx
        self.arm(event)
        if idx >= FIXED_IDX_BASE:
            shift = 4 * (idx - FIXED_IDX_BASE)
            ctrl = self.pmu.regs.get("FIXED_CTR_CTRL", 0) & ~(0xF << shift)
            self._write(msrs.IA32_FIXED_CTR_CTRL, ctrl | self._fixed_field(event) << shift)
        else:
            self._write(self._sel_addr(idx), self.evtsel(event))
        self.load_global()

    def remove(self, event: PerfEvent) -> None:
        """Take ``event`` off its counter, folding the hardware count into it."""
        with self.pmu.batch():
            self._remove(event)

    def _remove(self, event: PerfEvent) -> None:
        idx = event.hw_idx
        assert idx is not None
        self.read(event)
        if idx >= FIXED_IDX_BASE:
            shift = 4 * (idx - FIXED_IDX_BASE)
            ctrl = self.pmu.regs.get("FIXED_CTR_CTRL", 0) & ~(0xF << shift)
            self._write(msrs.IA32_FIXED_CTR_CTRL, ctrl)
        else:
            self._write(self._sel_addr(idx), 0)
        del self.events[idx]
        event.hw_idx = None
        self.load_global()

    def arm(self, event: PerfEvent) -> None:
        """x86_perf_event_set_period: the counter starts at -left (counting: -max_period)."""
        idx = event.hw_idx
        assert idx is not None
        left = event.period_left if event.period_left > 0 else X86_MAX_PERIOD
        raw = (-min(left, X86_MAX_PERIOD)) & ((1 << self._width(idx)) - 1)
        self._write(self._ctr_addr(idx), raw)
        event.prev_raw = raw

    def read(self, event: PerfEvent) -> int:
        """x86_perf_event_update: fold the counter's progress into the event; the delta."""
        idx = event.hw_idx
        assert idx is not None
        self.pmu.sync()
        raw = self.pmu.counters[idx].value
        mask = (1 << self._width(idx)) - 1
        delta = (raw - event.prev_raw) & mask
        event.prev_raw = raw
        event.count += delta
        event.period_left -= delta
        return delta

    # -- global control ------------------------------------------------------------------
    def global_mask(self) -> int:
        """GLOBAL_CTRL for the mode the CPU is in (host or guest): every counter
        (x86_pmu.intel_ctrl, AMD's global counter mask) except those of events that exclude
        this mode (perf_guest_get_msrs). Free counters are off by their selector's EN bit,
        which is why a selector left enabled by someone else counts (seed 003,
        docs/sources.md)."""
        mask = self._counter_mask
        if not self.caps.is_intel:
            return mask
        for idx, ev in self.events.items():
            a = ev.attr
            if a.exclude_guest if self.guest else a.exclude_host:
                mask &= ~(1 << idx)
        return mask

    def counts_in_host(self, counters: int) -> int:
        """The subset of ``counters`` whose selectors count host code now (globally enabled;
        on AMD not GuestOnly)."""
        ctrl = self.pmu.regs.get("GLOBAL_CTRL", 0) if self.caps.has_global_ctrl else ~0
        out = 0
        for idx in range(64):
            if not counters >> idx & 1 or not ctrl >> idx & 1:
                continue
            if idx < FIXED_IDX_BASE and not self.caps.is_intel:
                sel = self.pmu.sels.get(idx, 0)
                if sel & AMD_EVTSEL_GUEST_ONLY and not sel & AMD_EVTSEL_HOST_ONLY:
                    continue
            out |= 1 << idx
        return out

    def load_global(self) -> None:
        """Write GLOBAL_CTRL (Intel v2+ / AMD PerfMonV2), unless a guest owns the PMU."""
        if not self.caps.has_global_ctrl or self.suspended:
            return
        addr = (msrs.IA32_PERF_GLOBAL_CTRL if self.caps.is_intel
                else msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL)
        self._write(addr, self.global_mask())

    def set_guest(self, guest: bool) -> None:
        """VM-entry / VM-exit: the atomic GLOBAL_CTRL switch (Intel); nothing on AMD."""
        if guest != self.guest:
            self.guest = guest
            if self.caps.is_intel:
                self.load_global()

    def status(self) -> int:
        """GLOBAL_STATUS (what overflowed)."""
        return self.pmu.regs.get("GLOBAL_STATUS", 0)

    def ack(self, bits: int) -> None:
        """Clear the status bits read (OVF_CTRL / STATUS_CLR): overflow bits, and on Intel
        v4 the freeze bits a PMI set."""
        if not bits or not self.caps.has_global_ctrl:
            return
        addr = (msrs.IA32_PERF_GLOBAL_OVF_CTRL if self.caps.is_intel
                else msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR)
        self._write(addr, bits & self._ack_mask)

    def cpu_init(self) -> None:
        """perf_events_lapic_init: the LVTPC delivers an NMI, unmasked."""
        self.hw.lapic.lvtpc = LVT_DELIVERY_NMI << 8

    def pmi_done(self) -> None:
        """apic_write(APIC_LVTPC, APIC_DM_NMI) at the end of the handler: unmask."""
        self.hw.lapic.lvtpc &= ~(1 << LVT_MASKED)

    def raw_config(self, config: int, config1: int = 0) -> int:
        """The event part of a raw config (X86_RAW_EVENT_MASK; x86 has no config1 bits)."""
        return config & RAW_EVENT_MASK

    def event_constraint(self, config: int) -> Constraint:
        """x86_get_event_constraints: the fixed counter of a pseudo-encoding, else the GPs."""
        return constraint_for(self.caps, config)

    def schedule(self, constraints: Sequence[Constraint],
                 previous: Sequence[int | None]) -> list[int] | None:
        """x86_schedule_events over the events' constraints."""
        return assign(self.caps, constraints, previous=previous)

    def hw_config(self, hw_id: int) -> int | None:
        """x86_pmu.event_map: the vendor's (and generation's) raw config of a generic event."""
        return hw_event_config(self.caps, hw_id)

    def clear_dirty(self) -> int:
        """perf_clear_dirty_counters: zero every dirty counter no event is assigned to."""
        for idx in self.events:
            self.dirty &= ~(1 << idx)
        cleared = 0
        for idx in range(64):
            if self.dirty >> idx & 1 and idx in self.pmu.counters:
                self._write(self._ctr_addr(idx), 0)
                cleared += 1
        self.dirty = 0
        return cleared


def ctr_addr(caps: X86PmuCaps, idx: int) -> int:
    """The counter MSR the kernel writes for global index ``idx`` (full-width with
    FW_WRITE on Intel; AMD's F15H layout)."""
    if idx >= FIXED_IDX_BASE:
        return msrs.IA32_FIXED_CTR0 + idx - FIXED_IDX_BASE
    if caps.is_intel:
        return (msrs.IA32_A_PMC0 if caps.fw_write else msrs.IA32_PMC0) + idx
    return msrs.MSR_F15H_PERF_CTR0 + 2 * idx


def sel_addr(caps: X86PmuCaps, idx: int) -> int:
    """The event-select MSR of GP counter ``idx``."""
    if caps.is_intel:
        return msrs.IA32_PERFEVTSEL0 + idx
    return msrs.MSR_F15H_PERF_CTL0 + 2 * idx

