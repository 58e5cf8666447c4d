"""Running the ported conformance suites on bare metal or on a one-vCPU VM of a design.

Each design names the guest-visible differences KVM documents as ``Expectations`` fields;
a difference that is not listed there is a failure.
"""

from __future__ import annotations

from typing import Any

from vpmu.arch.presets import CpuPreset, get_preset
from vpmu.guest.conformance import SUITES
from vpmu.guest.conformance._framework import (
    CheckResult,
    Expectations,
    Runner,
    Variant,
    run_suite,
)
from vpmu.guest.port import GuestProgram
from vpmu.machine.baremetal import BareMetal
from vpmu.machine.vm import run_vm_program
from vpmu.vpmu.design import DesignSpec, make_design


def bare_metal_runner(preset: CpuPreset, *, seed: int = 0) -> Runner:
    """A runner that gives each program a fresh bare-metal CPU; a variant is a hardware
    variant of the preset (the same part with a different PMU shape)."""

    def run(program: GuestProgram, variant: Variant | None = None) -> Any:
        hw = preset.with_caps(**variant.changes()) if variant else preset
        return BareMetal(hw, seed=seed).run(program)

    return run


DESIGN_EXPECTATIONS: dict[str, Expectations] = {
    "emulated": Expectations(platform="kvm-emulated", unsupported_legacy_perfctr01="drop",
                             max_version=2),
    "none": Expectations(platform="kvm-none", unsupported_legacy_perfctr01="drop",
                         max_version=0),
}
"""What each design documents as different from bare metal (conformance_suites.md 2.2)."""


def vm_runner(preset: CpuPreset, design: str, *, seed: int = 0) -> Runner:
    """A runner that gives each program a fresh one-vCPU VM of ``design``; a variant is the
    guest PMU shape userspace asks KVM for (the design clamps it)."""

    def run(program: GuestProgram, variant: Variant | None = None) -> Any:
        shape = variant.changes() if variant else None
        return run_vm_program(program, preset=preset, design=design, seed=seed, shape=shape)

    return run


def run_conformance(preset: str | CpuPreset, *, suites: tuple[str, ...] | None = None,
                    design: str | None = None) -> list[CheckResult]:
    """Run the named suites (default: all) on ``preset``, on bare metal or under ``design``,
    and return every check result."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    names = suites or tuple(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise ValueError(f"suite must be one of {sorted(SUITES)}, not {unknown[0]!r}")
    if design is None:
        runner, expect = bare_metal_runner(p), Expectations()
    else:
        spec = DesignSpec.parse(design)
        make_design(spec)  # an unknown name or option fails here, before any program runs
        runner = vm_runner(p, design)
        expect = DESIGN_EXPECTATIONS.get(spec.name, Expectations(platform=spec.name))
    results: list[CheckResult] = []
    for name in names:
        results += run_suite(SUITES[name], runner, expect)
    return results
