"""AMD core PMU (arch/x86/events/amd/core.c), as guest code.

Without PerfMonV2 there are no global MSRs: perf_pmu_disable/enable clear and set EN in each
active selector, and the NMI handler is the generic x86_pmu_handle_irq (LVTPC first, RDPMC of
every active counter). Outside NMI context, disabling a counter also waits for a pending
overflow to be handled (amd_pmu_wait_on_overflow: RDMSR of the counter, bit 47 set = not
overflowed). PerfMonV2 adds GLOBAL_CTL / GLOBAL_STATUS / GLOBAL_STATUS_CLR and its own handler,
``amd_pmu_v2_handle_irq``, which does not write LVTPC: the AMD APIC does not mask LVTPC on a PMI
("Unmasking the LVTPC is not required", amd/core.c).
"""

from __future__ import annotations

from vpmu.arch.regs import set_bits
from vpmu.arch.x86 import msrs
from vpmu.guest.linux import costs
from vpmu.guest.linux.event import PerfEvent
from vpmu.guest.linux.x86 import Gen, X86Pmu
from vpmu.guest.port import Execute, Rdmsr, Wrmsr

OVERFLOW_WAIT_COUNT = 50
"""amd_pmu_wait_on_overflow polls at most 50 times, 1 µs apart."""


class AmdPmu(X86Pmu):
    """K7 / F15H core counters: the generic operations plus the overflow waits."""

    def disable_all(self) -> Gen[None]:
        """amd_pmu_disable_all: x86_pmu_disable_all, then amd_pmu_check_overflow."""
        yield from super().disable_all()
        yield from self.check_overflow()

    def disable_event(self, e: PerfEvent) -> Gen[None]:
        """amd_pmu_disable_event: the selector write, then (not in NMI) the overflow wait."""
        yield from super().disable_event(e)
        if not self.in_nmi:
            yield from self.wait_on_overflow(e.hw.idx)

    def check_overflow(self) -> Gen[None]:
        """amd_pmu_check_overflow: wait on every active counter (not in NMI context)."""
        if self.in_nmi:
            return
        for idx in range(self.info.n_gp):
            if self.active_mask >> idx & 1:
                yield from self.wait_on_overflow(idx)

    def wait_on_overflow(self, idx: int) -> Gen[None]:
        """amd_pmu_wait_on_overflow: RDMSR the counter until bit 47 is set (the NMI re-armed
        it), udelay(1) between reads; the NMI runs at the op boundary between two reads."""
        top = 1 << (self.info.cntval_bits - 1)
        for _ in range(OVERFLOW_WAIT_COUNT):
            counter = yield Rdmsr(self.info.perfctr(idx))
            if not isinstance(counter, int) or counter & top:
                return
            yield Execute(costs.kernel_work("udelay", costs.UDELAY_1US_CYCLES))

    def handle_irq(self) -> Gen[int]:
        """amd_pmu_handle_irq: x86_pmu_handle_irq with cpuc->enabled cleared meanwhile."""
        pmu_enabled, self.enabled, self.in_nmi = self.enabled, False, True
        handled = yield from super().handle_irq()
        self.enabled, self.in_nmi = pmu_enabled, False
        return handled


class AmdV2Pmu(AmdPmu):
    """PerfMonV2: GLOBAL_CTL gates the counters; the v2 handler acks through STATUS_CLR."""

    def disable_all(self) -> Gen[None]:
        """amd_pmu_v2_disable_all: GLOBAL_CTL = 0, then amd_pmu_check_overflow."""
        yield Wrmsr(msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL, 0)
        yield from self.check_overflow()

    def enable_all(self, added: int) -> Gen[None]:
        """amd_pmu_v2_enable_all: GLOBAL_CTL = every counter (amd_pmu_global_cntr_mask)."""
        yield Wrmsr(msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL, self.info.intel_ctrl)

    def enable_event(self, e: PerfEvent) -> Gen[None]:
        """amd_pmu_v2_enable_event: EN at once, whatever cpuc->enabled (GLOBAL_CTL gates)."""
        yield Wrmsr(e.hw.config_base, e.hw.config | msrs.EVTSEL_EN)

    def handle_irq(self) -> Gen[int]:
        """amd_pmu_v2_handle_irq: GLOBAL_CTL=0; read STATUS; per overflowed active counter
        update, re-arm, overflow; STATUS_CLR ack; GLOBAL_CTL=mask if it was on. No LVTPC."""
        pmu_enabled, self.enabled, self.in_nmi = self.enabled, False, True
        yield Wrmsr(msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL, 0)  # amd_pmu_core_disable_all
        status = yield Rdmsr(msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS)
        status = status & self.info.intel_ctrl if isinstance(status, int) else 0
        handled = 0
        if status:
            for idx in set_bits(status):
                if not self.active_mask >> idx & 1:
                    continue
                e = self.events[idx]
                yield from self.update(e)
                handled += 1
                status &= ~(1 << idx)
                yield from self.overflow_event(e)
            # Linux writes ~status (all ones once every bit is handled); assumption: the
            # hardware ignores the reserved bits, which the model would #GP, so only the
            # counter bits are written. Same effect on GLOBAL_STATUS.
            yield Wrmsr(msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR,
                        self.info.intel_ctrl & ~status)
        self.enabled, self.in_nmi = pmu_enabled, False
        if pmu_enabled:
            yield from self.enable_all(0)
        return handled
