"""selftests kvm/arm64/vpmu_counter_access as a guest program suite: it passes under
``emulated`` on every Arm preset (every N from 0 to the maximum, N above it refused with
EINVAL, userspace bitmap writes masked, the fixed-counters-only cases), runs on bare metal with
the KVM cases skipped."""

from __future__ import annotations

import pytest

from vpmu.arch.arm64.caps import ArmPmuCaps
from vpmu.arch.presets import PRESETS
from vpmu.guest.conformance import SUITE_ARCH, SUITES, suites_for
from vpmu.guest.conformance.arm64.vpmu_counter_access import SUITE
from vpmu.machine.conformance import run_conformance

ARM = [name for name, p in PRESETS.items() if isinstance(p.caps, ArmPmuCaps)]


def test_registered_for_arm64() -> None:
    assert SUITES[SUITE.name] is SUITE and SUITE_ARCH[SUITE.name] == "arm64"
    assert SUITE.name in suites_for("arm64") and SUITE.name not in suites_for("x86")


@pytest.mark.parametrize("preset", ARM)
def test_passes_under_emulated_for_every_n(preset: str) -> None:
    results = run_conformance(preset, suites=(SUITE.name,), design="emulated")
    bad = [r for r in results if not r.passed and not r.skipped]
    assert bad == []
    labels = {r.test for r in results}
    top = PRESETS[preset].caps.n_counters
    assert {f"vpmu_counter_access[N={n}]" for n in range(top + 1)} <= labels
    refused = [r for r in results if r.test == f"vpmu_counter_access[N={top + 1}]"]
    assert [r.check for r in refused] == ["KVM_ARM_VCPU_PMU_V3 attributes fail with EINVAL"]
    assert any("fixed-counters-only" in t for t in labels)


def test_bare_metal_skips_the_kvm_cases() -> None:
    results = run_conformance("arm-a53", suites=(SUITE.name,))
    assert not [r for r in results if not r.passed and not r.skipped]
    assert sum(r.skipped for r in results) == 5
