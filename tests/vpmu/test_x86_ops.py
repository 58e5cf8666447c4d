"""KVM's x86 vendor ops table (vpmu/x86/ops.py): the guest PMU each vendor's refresh gives,
the RDPMC index space, and the selector write AMD truncates."""

from __future__ import annotations

import pytest

from vpmu.arch.presets import PRESETS
from vpmu.arch.regs import by_address
from vpmu.arch.x86 import msrs
from vpmu.vpmu.x86.ops import AMD_OPS, INTEL_OPS, CapLimits, ops_for

ICX, ZEN4 = PRESETS["intel-icx"].caps, PRESETS["amd-zen4"].caps


def test_intel_refresh_caps_version_and_counters() -> None:
    """Ice Lake (v5, 8 GP, 4 fixed): KVM's emulated limits give v2, 8 GP, 3 fixed, no LBR
    or PEBS; without a fixed cap (mediated) the 4 fixed counters stay; userspace may ask for
    fewer GP counters; a version-1 guest has no fixed counters, a version-0 none at all."""
    emulated = INTEL_OPS.refresh(ICX, CapLimits(max_gp=8, max_fixed=3))
    assert (emulated.version, emulated.n_gp, emulated.n_fixed) == (2, 8, 3)
    assert (emulated.lbr_format, emulated.pebs_format, emulated.fixed_mask) == (0, 0, 0)
    mediated = INTEL_OPS.refresh(ICX, CapLimits(n_gp=2))
    assert (mediated.version, mediated.n_gp, mediated.n_fixed) == (2, 2, 4)
    v1 = INTEL_OPS.refresh(ICX.replace(version=1), CapLimits())
    assert (v1.n_gp, v1.n_fixed) == (8, 0)
    assert INTEL_OPS.refresh(ICX.replace(version=0), CapLimits()).n_gp == 0


def test_amd_refresh_keeps_the_counters_and_drops_tsx_and_fast_rdpmc() -> None:
    guest = AMD_OPS.refresh(ZEN4.replace(tsx=True, rdpmc_fast_read=True), CapLimits())
    assert (guest.n_gp, guest.tsx, guest.rdpmc_fast_read) == (ZEN4.n_gp, False, False)
    assert AMD_OPS.refresh(ZEN4, CapLimits(n_gp=3)).n_gp == 3


@pytest.mark.parametrize(("ecx", "intel", "amd"), [
    (0, 0, 0), (5, 5, 5), (1 << 30, 32, None), ((1 << 30) | 2, 34, None),
    (1 << 16, None, None), (1 << 31, None, None), (0xFFFF, 0xFFFF, 0xFFFF),
])
def test_rdpmc_index_space(ecx: int, intel: int | None, amd: int | None) -> None:
    """Bit 30 names Intel's fixed counters (AMD has none); any bit but 30 and 15:0 is #GP."""
    assert (INTEL_OPS.rdpmc_ecx_to_pmc(ecx), AMD_OPS.rdpmc_ecx_to_pmc(ecx)) == (intel, amd)


def test_amd_drops_reserved_selector_bits_and_intel_keeps_them_for_the_check() -> None:
    """amd_pmu_set_msr masks reserved bits; Intel's write keeps them, so the declared check
    faults."""
    amd_sel = by_address(msrs.pmu_msrs(ZEN4))[msrs.MSR_F15H_PERF_CTL0]
    intel_sel = by_address(msrs.pmu_msrs(ICX))[msrs.IA32_PERFEVTSEL0]
    wild = (1 << 63) | 0x43_00C0
    assert AMD_OPS.set_msr_value(amd_sel, wild) == 0x43_00C0
    assert INTEL_OPS.set_msr_value(intel_sel, wild) == wild
    assert ops_for(ICX) is INTEL_OPS and ops_for(ZEN4) is AMD_OPS
