"""The mediated vPMU's vendor ops (designs/mediated/vendor.py): they extend the shared vendor
ops, refuse the hosts KVM refuses, and build the hardware selector as each vendor does. The
load and put sequences they take part in are checked MSR by MSR in test_mediated.py."""

from __future__ import annotations

import dataclasses

from vpmu.arch.presets import PRESETS
from vpmu.arch.x86 import msrs
from vpmu.vpmu.designs.mediated.vendor import (
    MEDIATED_AMD_OPS,
    MEDIATED_INTEL_OPS,
    mediated_ops_for,
)
from vpmu.vpmu.x86.ops import AMD_OPS, INTEL_OPS

ICX, ZEN4 = PRESETS["intel-icx"].caps, PRESETS["amd-zen4"].caps
SEL = 0x4300C0 | msrs.AMD_EVTSEL_HOST_ONLY


def test_mediated_ops_extend_the_shared_vendor_ops() -> None:
    """Same table entries (addresses, EVENTSEL_EVENT, RDPMC space) as kvm_pmu_ops'."""
    assert mediated_ops_for(ICX) is MEDIATED_INTEL_OPS
    assert mediated_ops_for(ZEN4) is MEDIATED_AMD_OPS
    for mediated, shared in ((MEDIATED_INTEL_OPS, INTEL_OPS), (MEDIATED_AMD_OPS, AMD_OPS)):
        assert dataclasses.astuple(mediated) == dataclasses.astuple(shared)
        assert mediated.rdpmc_ecx_to_pmc(1 << 30) == shared.rdpmc_ecx_to_pmc(1 << 30)
    assert (INTEL_OPS.nr_fixed(ICX), AMD_OPS.nr_fixed(ZEN4)) == (ICX.n_fixed, 0)


def test_host_refusal_names_what_the_host_lacks() -> None:
    """is_mediated_pmu_supported: Intel v4+ with full-width writes, AMD PerfMonV2."""
    assert MEDIATED_INTEL_OPS.host_refusal(ICX) == ""
    assert MEDIATED_INTEL_OPS.host_refusal(ICX.replace(version=3)) == (
        "an Intel PMU v4+ with full-width writes (the host has v3)")
    assert "no full-width writes" in MEDIATED_INTEL_OPS.host_refusal(ICX.replace(fw_write=False))
    assert MEDIATED_AMD_OPS.host_refusal(ZEN4) == ""
    assert MEDIATED_AMD_OPS.host_refusal(ZEN4.replace(perfmon_v2=False)) == (
        "AMD PerfMonV2 (the host does not have it)")


def test_amd_hardware_selectors_count_in_the_guest_only() -> None:
    """AMD: GuestOnly set and HostOnly cleared; Intel keeps the guest's selector."""
    assert MEDIATED_INTEL_OPS.eventsel_hw(SEL) == SEL
    assert MEDIATED_AMD_OPS.eventsel_hw(SEL) == 0x4300C0 | msrs.AMD_EVTSEL_GUEST_ONLY
