"""Intel architectural perfmon v2+ (arch/x86/events/intel/core.c), as guest code.

The PMU is gated by GLOBAL_CTRL: perf_pmu_disable/enable write it 0 / intel_ctrl. GP events
are enabled and disabled through their EVNTSEL; fixed ones through a read-modify-write of
FIXED_CTR_CTRL (intel_pmu_enable_fixed / intel_pmu_disable_fixed as in the 5.x kernels of
seed 001, whose equal FIXED_CTR_CTRL read and write counts show the RMW). The PMI handler is
``intel_pmu_handle_irq`` for Haswell and later (late ack: LVTPC is unmasked last), with no
LBR, PEBS or BTS users, so those paths make no register access.
"""

from __future__ import annotations

from vpmu.arch.regs import set_bits
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE
from vpmu.guest.linux.event import PerfEvent
from vpmu.guest.linux.x86 import Gen, X86Pmu
from vpmu.guest.port import Rdmsr, Wrmsr

IRQ_LOOP_LIMIT = 100
"""intel_pmu_handle_irq gives up ("irq loop stuck!") after 100 passes."""

FIXED_EN_OS, FIXED_EN_USR, FIXED_PMI = 0x1, 0x2, 0x8
"""A fixed counter's FIXED_CTR_CTRL field bits (SDM figure 20-2)."""


class IntelPmu(X86Pmu):
    """Intel v2+: global control, fixed counters, the late-ack PMI handler."""

    def disable_all(self) -> Gen[None]:
        """__intel_pmu_disable_all: GLOBAL_CTRL = 0."""
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)

    def enable_all(self, added: int) -> Gen[None]:
        """__intel_pmu_enable_all: GLOBAL_CTRL = intel_ctrl (every counter; EN gates each)."""
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
        yield from self.disable_all()
        handled, loops = 0, 0
        status = yield from self.get_status()
        while status:
            yield Wrmsr(msrs.IA32_PERF_GLOBAL_OVF_CTRL, status)  # intel_pmu_ack_status
            loops += 1
            if loops > IRQ_LOOP_LIMIT:
                break  # intel_pmu_reset is not modelled: the counters are left as they are
            handled += yield from self.handle_pmi_common(status)
            status = yield from self.get_status()
        self.enabled, self.in_nmi = pmu_enabled, False
        if pmu_enabled:
            yield from self.enable_all(0)
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
