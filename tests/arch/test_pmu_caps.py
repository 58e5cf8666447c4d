"""The neutral PMU-capabilities view, and its x86 and Arm variants."""

from __future__ import annotations

import pytest

from vpmu.arch.arm64.caps import (
    CYCLE_IDX,
    ICNTR_IDX,
    PMUVER_V3,
    PMUVER_V3P1,
    PMUVER_V3P4,
    PMUVER_V3P5,
    ArmPmuCaps,
)
from vpmu.arch.caps import PmuCaps
from vpmu.arch.presets import PRESETS, get_preset


def _neutral(caps: PmuCaps) -> tuple[str, int]:
    """What a neutral layer may read (typed against the protocol)."""
    return caps.arch, caps.counter_mask


@pytest.mark.parametrize("name", [n for n in PRESETS if PRESETS[n].caps.arch == "x86"])
def test_x86_presets_are_pmu_caps(name: str) -> None:
    """Every x86 preset's counters: its GP counters at 0.. and its fixed ones at 32.."""
    caps = PRESETS[name].caps
    arch, mask = _neutral(caps)
    assert arch == "x86"
    assert mask == caps.gp_mask | sum(1 << (32 + i) for i in caps.fixed_indices)
    assert caps.width(0) == caps.gp_width and caps.width(32) == caps.fixed_width


@pytest.mark.parametrize("name", [n for n in PRESETS if PRESETS[n].caps.arch == "arm64"])
def test_arm_presets_are_pmu_caps(name: str) -> None:
    """Every Arm preset's counters: its N event counters at 0.. and the cycle counter at 31,
    and PMCEID0/1 name the events every PMUv3 implements (SW_INCR, CPU_CYCLES, CHAIN)."""
    caps = PRESETS[name].caps
    arch, mask = _neutral(caps)
    assert arch == "arm64"
    assert mask == (1 << caps.n_counters) - 1 | 1 << CYCLE_IDX
    assert caps.pmceid0 & (1 << 0x00 | 1 << 0x11 | 1 << 0x1E) == 1 << 0x00 | 1 << 0x11 | 1 << 0x1E
    # AArch32 at EL0 decides whether PMCR_EL0.LC can be cleared: the Armv8.0-8.2 cores have
    # it, the Armv9.2 ones (A520, A720) do not, so their cycle counter is always 64-bit
    armv9 = name in ("arm-a520", "arm-a720")
    assert caps.aarch32_el0 is not armv9
    assert caps.overflow_width(CYCLE_IDX, lc=False, lp=False) == (64 if armv9 else 32)


def test_arm_counter_space_and_widths() -> None:
    """A PMUv3 core with N = 6 (a Cortex-A72): event counters 0-5 and the cycle counter
    at 31; 32-bit event counters and a 10-bit event number before PMUv3p1."""
    a72 = ArmPmuCaps(implementer=0x41, part=0xD08, pmuver=PMUVER_V3, n_counters=6)
    assert _neutral(a72) == ("arm64", 0b111111 | 1 << CYCLE_IDX)
    assert (a72.width(0), a72.width(CYCLE_IDX), a72.event_mask) == (32, 64, 0x3FF)
    assert a72.overflow_width(CYCLE_IDX, lc=False, lp=False) == 32
    assert a72.overflow_width(CYCLE_IDX, lc=True, lp=False) == 64
    assert a72.overflow_width(0, lc=True, lp=True) == 32  # LP needs FEAT_PMUv3p5


def test_arm_pmuv3p5_long_counters_and_icntr() -> None:
    """PMUv3p5: 64-bit event counters overflowing at 64 only with PMCR.LP; ICNTR at 32;
    no AArch32 EL0 forces the cycle counter's long overflow (PMCR.LC reads 1)."""
    v3p5 = ArmPmuCaps(0x41, 0xD40, PMUVER_V3P5, 20, aarch32_el0=False, icntr=True)
    assert (v3p5.width(0), v3p5.event_mask) == (64, 0xFFFF)
    assert v3p5.overflow_width(0, lc=False, lp=False) == 32
    assert v3p5.overflow_width(0, lc=False, lp=True) == 64
    assert v3p5.overflow_width(CYCLE_IDX, lc=False, lp=False) == 64
    assert v3p5.counter_mask >> ICNTR_IDX & 1 and v3p5.width(ICNTR_IDX) == 64
    assert ArmPmuCaps(0x41, 0xD0C, PMUVER_V3P4, 6).event_mask == 0xFFFF


@pytest.mark.parametrize("n", [-1, 32])
def test_arm_pmcr_n_is_five_bits_below_the_cycle_counter(n: int) -> None:
    with pytest.raises(ValueError, match=r"PMCR_EL0\.N"):
        ArmPmuCaps(0x41, 0xD08, PMUVER_V3, n)


def test_labels_and_user_read_indices() -> None:
    icx, zen4 = get_preset("intel-icx").caps, get_preset("amd-zen4").caps
    assert (icx.label, icx.virt_ext, zen4.label, zen4.virt_ext) == ("v5", "vmx", "PerfMonV2",
                                                                    "svm")
    assert icx.user_read_indices == (*range(8), *((1 << 30) | i for i in range(4)))
    assert zen4.user_read_indices == tuple(range(6))
    n1 = ArmPmuCaps(0x41, 0xD0C, pmuver=PMUVER_V3P1, n_counters=6)
    assert n1.label == "PMUv3p1"
    assert n1.user_read_indices == (0, 1, 2, 3, 4, 5, 31)
