"""CPUID and PERF_CAPABILITIES derivation, and the guest-side decoding of them."""

import pytest

from vpmu.arch.presets import PRESETS, get_preset
from vpmu.arch.x86.caps import cpuid, discover


@pytest.mark.parametrize("name", sorted(n for n in PRESETS if PRESETS[n].caps.arch == "x86"))
def test_discovery_round_trips_the_caps(name: str) -> None:
    """Decoding the derived CPUID words gives back the preset's PMU shape."""
    caps = PRESETS[name].caps
    words = {(leaf, 0): cpuid(caps, leaf) for leaf in (0, 1, 0xA, 0x8000_0001, 0x8000_0022)}
    view = discover(words, caps.perf_capabilities if caps.pdcm else 0)
    assert (view.is_intel, view.family, view.model) == (caps.is_intel, caps.family, caps.model)
    assert view.n_gp == caps.n_gp
    assert view.has_global_ctrl == caps.has_global_ctrl
    if caps.is_intel:
        assert (view.version, view.n_fixed, view.gp_width) == (caps.version, caps.n_fixed, 48)
        assert view.fw_write == caps.fw_write


def test_leaf_0xa_layout_icx() -> None:
    """ICX CPUID.0xA: v5, 8 GP of width 48, 8 events, 4 fixed of width 48, AnyThread gone."""
    eax, ebx, ecx, edx = cpuid(get_preset("intel-icx").caps, 0xA)
    assert eax == 5 | 8 << 8 | 48 << 16 | 8 << 24
    assert ebx == 0
    assert ecx == 0xF
    assert edx == 4 | 48 << 5 | 1 << 15


def test_version_gates_fixed_fields() -> None:
    """v1 reports no fixed counters in EDX; v4 reports no ECX fixed mask."""
    icx = get_preset("intel-icx").caps
    assert cpuid(icx.replace(version=1), 0xA)[3] == 0
    assert cpuid(icx.replace(version=4), 0xA)[2] == 0
    assert cpuid(icx.replace(version=0), 0xA) == (0, 0, 0, 0)


def test_pdcm_and_amd_leaves() -> None:
    """PDCM follows the caps; AMD leaves report PerfCtrCore, PerfMonV2 and the count."""
    assert cpuid(get_preset("intel-icx").caps, 1)[2] >> 15 & 1
    zen4 = get_preset("amd-zen4").caps
    assert cpuid(zen4, 0x8000_0001)[2] >> 23 & 1
    assert cpuid(zen4, 0x8000_0022)[:2] == (1, 6)
    assert cpuid(zen4.replace(perfmon_v2=False), 0x8000_0022) == (0, 0, 0, 0)


def test_unknown_preset_error_lists_names() -> None:
    """A bad preset name gets one clear error naming the valid ones."""
    with pytest.raises(ValueError, match="preset must be one of"):
        get_preset("intel-486")
