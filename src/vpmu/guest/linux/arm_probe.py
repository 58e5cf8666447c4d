"""PMU discovery and reset at boot on arm64, as Linux v6.6 does them (drivers/perf/arm_pmuv3.c:
``__armv8pmu_probe_pmu``, ``armv8pmu_reset``; arch/arm64/include/asm/arm_pmuv3.h for the
accessors), and the generic timer's frequency (drivers/clocksource/arm_arch_timer.c reads
CNTFRQ_EL0).

Probe: ID_AA64DFR0_EL1.PMUVer (0 = not implemented, 0xF = IMPLEMENTATION DEFINED: no PMUv3
driver), then PMCR_EL0.N (num_events = N + 1, the cycle counter included), then PMCEID0_EL0 and
PMCEID1_EL0 (the common events 0x00-0x3F perf will accept as generic events). Assumptions where
the model differs from the kernel's order: the kernel reads CurrentEL (is_kernel_in_hyp_mode)
whenever it builds an event's filter; the model reads it once here. PMMIR_EL1, which the kernel
reads for the sysfs ``caps`` files on PMUv3p4+ when PMCEID1_EL0 bit 31 (STALL_SLOT) is set, is
not read: the hardware model does not declare it and nothing perf counts depends on it.

Reset (arm_perf_starting_cpu -> armv8pmu_reset): every counter and interrupt disabled, every
overflow flag cleared, then PMCR_EL0 = P | C | LC (| LP with 64-bit event counters): the
sequence ``vpmu.linux.arm_pmuv3.reset_writes`` shares with the host's driver. The ISBs between
these writes are not port operations (the model's MSR lands when it retires). The PMCEID
bitmap is ``vpmu.arch.arm64.events.events_of``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpmu.arch.arm64.caps import PMUVER_V3P4, PMUVER_V3P5
from vpmu.arch.arm64.events import events_of
from vpmu.guest.linux.pmu import Gen
from vpmu.guest.port import Mrs, Msr
from vpmu.linux.arm_pmuv3 import ARMV8_PMU_PMCR_N_MASK, ARMV8_PMU_PMCR_N_SHIFT, reset_writes

ID_AA64DFR0_EL1_PMUVER_SHIFT = 8
PMUVER_NI, PMUVER_IMP_DEF = 0x0, 0xF
"""ID_AA64DFR0_EL1.PMUVer values without a PMUv3 (pmuv3_implemented)."""
CURRENT_EL_EL2 = 2 << 2
"""CurrentEL of a kernel running at EL2 (VHE: is_kernel_in_hyp_mode)."""


@dataclass(frozen=True, slots=True)
class ArmPmuInfo:
    """What ``struct arm_pmu`` holds after the probe."""

    pmuver: int
    """ID_AA64DFR0_EL1.PMUVer."""
    num_events: int
    """PMCR_EL0.N + 1: the event counters and the cycle counter."""
    pmceid: frozenset[int]
    """pmceid_bitmap: the common events 0x00-0x3F PMCEID0/1_EL0 report."""
    hyp_mode: bool = False
    """The kernel runs at EL2 (VHE host): the event filter takes the hypervisor branch."""

    @property
    def has_long_event(self) -> bool:
        """armv8pmu_has_long_event: PMUv3p5's 64-bit event counters (arm64 only)."""
        return self.pmuver >= PMUVER_V3P5

    @property
    def is_pmuv3p4(self) -> bool:
        """PMUv3p4 or later (PMMIR_EL1 exists)."""
        return self.pmuver >= PMUVER_V3P4


def probe() -> Gen[ArmPmuInfo | None]:
    """__armv8pmu_probe_pmu: None when there is no PMUv3 (perf keeps only software events)."""
    dfr0 = yield Mrs("ID_AA64DFR0_EL1")
    if not isinstance(dfr0, int):
        return None
    pmuver = dfr0 >> ID_AA64DFR0_EL1_PMUVER_SHIFT & 0xF
    if pmuver in (PMUVER_NI, PMUVER_IMP_DEF):
        return None
    pmcr = yield Mrs("PMCR_EL0")
    ceid0 = yield Mrs("PMCEID0_EL0")
    ceid1 = yield Mrs("PMCEID1_EL0")
    if not all(isinstance(v, int) for v in (pmcr, ceid0, ceid1)):
        return None
    n = pmcr >> ARMV8_PMU_PMCR_N_SHIFT & ARMV8_PMU_PMCR_N_MASK
    el = yield Mrs("CurrentEL")
    # pmceid_bitmap: bitmap_from_arr32 of the low 32 bits of PMCEID0 / PMCEID1
    return ArmPmuInfo(pmuver, n + 1, events_of(ceid0, ceid1), el == CURRENT_EL_EL2)


def reset(info: ArmPmuInfo) -> Gen[None]:
    """armv8pmu_reset: counters and interrupts off, overflows cleared, counters zeroed, the
    cycle counter 64-bit (LC) and, with PMUv3p5, the event counters too (LP)."""
    for name, value in reset_writes(long_event_counters=info.has_long_event):
        yield Msr(name, value)


def timer_hz() -> Gen[int | None]:
    """arch_timer_get_cntfrq: CNTFRQ_EL0 (None: unreadable or 0, the frequency must be
    given)."""
    hz = yield Mrs("CNTFRQ_EL0")
    return hz if isinstance(hz, int) and hz > 0 else None
