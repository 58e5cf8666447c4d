"""Intel architectural perfmon v2+ (arch/x86/events/intel/core.c), as guest code.

The PMU is gated by GLOBAL_CTRL: perf_pmu_disable/enable write it 0 / intel_ctrl. GP events
are enabled and disabled through their EVNTSEL; fixed ones through a read-modify-write of
FIXED_CTR_CTRL (intel_pmu_enable_fixed / intel_pmu_disable_fixed as in the 5.x kernels of
seed 001 (docs/sources.md), whose equal FIXED_CTR_CTRL read and write counts show the RMW). The PMI
handler is ``intel_pmu_handle_irq`` for Haswell and later (late ack: LVTPC is unmasked last). LBR
users (events with a branch stack) add the LBR's accesses (``vpmu.guest.linux.lbr``): enabled
before GLOBAL_CTRL, disabled after it, read at each pass of the PMI handler; PEBS and BTS
have no users, so their paths make no register access.
"""

from __future__ import annotations

from vpmu.arch.regs import set_bits
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE
from vpmu.guest.linux.boot import PmuInfo
from vpmu.guest.linux.event import HwPerfEvent, PerfEvent, PerfEventAttr
from vpmu.guest.linux.event_map import EventSpec
from vpmu.guest.linux.lbr import GuestLbr, legacy_lbr_format
from vpmu.guest.linux.x86 import Gen, X86Pmu
from vpmu.guest.port import Rdmsr, Wrmsr
from vpmu.uapi.perf_event import branch_types

IRQ_LOOP_LIMIT = 100
"""intel_pmu_handle_irq gives up ("irq loop stuck!") after 100 passes."""

FIXED_EN_OS, FIXED_EN_USR, FIXED_PMI = 0x1, 0x2, 0x8
"""A fixed counter's FIXED_CTR_CTRL field bits (SDM figure 20-2)."""


class IntelPmu(X86Pmu):
    """Intel v2+: global control, fixed counters, the late-ack PMI handler, the LBR."""

    def __init__(self, info: PmuInfo) -> None:
        super().__init__(info)
        fmt = legacy_lbr_format(info.view.perf_capabilities)
        self.lbr = GuestLbr(fmt, info.view.version) if fmt else None
        """The legacy LBR, if PERF_CAPABILITIES reports one (x86_pmu.lbr_nr)."""

    def event_init(self, spec: EventSpec, attr: PerfEventAttr, period: int) -> HwPerfEvent | None:
        """A branch stack needs the LBR (intel_pmu_hw_config: -EOPNOTSUPP without one)."""
        if attr.branch_sample_type and self.lbr is None:
            return None
        return super().event_init(spec, attr, period)

    def add(self, e: PerfEvent, *, start: bool = True) -> Gen[bool]:
        """x86_pmu_add, and intel_pmu_lbr_add for an event with a branch stack."""
        added = yield from super().add(e, start=start)
        if added and e.attr.branch_sample_type and self.lbr is not None:
            a = e.attr
            self.lbr.add(branch_types(a.branch_sample_type, exclude_user=a.exclude_user,
                                      exclude_kernel=a.exclude_kernel))
        return added

    def delete(self, e: PerfEvent) -> Gen[None]:
        """x86_pmu_del, and intel_pmu_lbr_del."""
        yield from super().delete(e)
        if e.attr.branch_sample_type and self.lbr is not None:
            self.lbr.delete()

    def disable_all(self) -> Gen[None]:
        """intel_pmu_disable_all: GLOBAL_CTRL = 0, then the LBR off."""
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)
        if self.lbr is not None:
            yield from self.lbr.disable()

    def enable_all(self, added: int) -> Gen[None]:
        """__intel_pmu_enable_all: the LBR on, then GLOBAL_CTRL = intel_ctrl (every counter;
        EN gates each)."""
        if self.lbr is not None:
            yield from self.lbr.enable(pmi=self.in_nmi)
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, self.info.intel_ctrl)

    def enable_event(self, e: PerfEvent) -> Gen[None]:
        """intel_pmu_enable_event: EVNTSEL with EN, or the fixed counter's field (PMI, USR,
        OS; no precise_ip, no AnyThread)."""
        hw = e.hw
        if hw.idx < FIXED_IDX_BASE:
            yield Wrmsr(hw.config_base, hw.config | msrs.EVTSEL_EN)
            return
        bits = FIXED_PMI
        bits |= FIXED_EN_USR if hw.config & msrs.EVTSEL_USR else 0
        bits |= FIXED_EN_OS if hw.config & msrs.EVTSEL_OS else 0
        yield from self._fixed_rmw(hw.idx - FIXED_IDX_BASE, bits)

    def disable_event(self, e: PerfEvent) -> Gen[None]:
        """intel_pmu_disable_event: EVNTSEL without EN, or clear the fixed field."""
        hw = e.hw
        if hw.idx < FIXED_IDX_BASE:
            yield Wrmsr(hw.config_base, hw.config)
        else:
            yield from self._fixed_rmw(hw.idx - FIXED_IDX_BASE, 0)

    def _fixed_rmw(self, i: int, bits: int) -> Gen[None]:
        """rdmsrl(FIXED_CTR_CTRL); replace counter i's 4-bit field; wrmsrl."""
        ctrl = yield Rdmsr(msrs.IA32_FIXED_CTR_CTRL)
        ctrl = ctrl if isinstance(ctrl, int) else 0
        shift = 4 * i
        yield Wrmsr(msrs.IA32_FIXED_CTR_CTRL, ctrl & ~(0xF << shift) | bits << shift)

    def get_status(self) -> Gen[int]:
        """intel_pmu_get_status: RDMSR GLOBAL_STATUS."""
        status = yield Rdmsr(msrs.IA32_PERF_GLOBAL_STATUS)
        return status if isinstance(status, int) else 0

    def handle_irq(self) -> Gen[int]:
        """intel_pmu_handle_irq, late ack: GLOBAL_CTRL=0; read STATUS; loop {OVF_CTRL=status;
        handle each set bit; read STATUS}; GLOBAL_CTRL=intel_ctrl if it was on; LVTPC."""
        pmu_enabled, self.enabled, self.in_nmi = self.enabled, False, True
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)  # __intel_pmu_disable_all: not the LBR
        handled, loops = 0, 0
        status = yield from self.get_status()
        while status:
            if self.lbr is not None:
                yield from self.lbr.read()
            yield Wrmsr(msrs.IA32_PERF_GLOBAL_OVF_CTRL, status)  # intel_pmu_ack_status
            loops += 1
            if loops > IRQ_LOOP_LIMIT:
                break  # intel_pmu_reset is not modelled: the counters are left as they are
            handled += yield from self.handle_pmi_common(status)
            status = yield from self.get_status()
        self.enabled = pmu_enabled
        if pmu_enabled:
            yield from self.enable_all(0)
        self.in_nmi = False
        yield from self.lapic_ack()
        return handled

    def handle_pmi_common(self, status: int) -> Gen[int]:
        """For each counter bit of ``status`` (lowest first) with an active event: update
        (RDPMC), re-arm (counter WRMSR), perf_event_overflow."""
        handled = 0
        for idx in set_bits(status & self.info.intel_ctrl):
            handled += 1
            if not self.active_mask >> idx & 1:
                continue
            e = self.events[idx]
            yield from self.update(e)
            yield from self.overflow_event(e)
        return handled
