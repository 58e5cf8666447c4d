"""Running the ported conformance suites on a machine (bare metal for now)."""

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


def bare_metal_runner(preset: CpuPreset, *, seed: int = 0) -> Runner:
    """A runner that gives each program a fresh bare-metal CPU; a variant is a hardware
    variant of the preset (the same part with a different PMU shape)."""

    def run(program: GuestProgram, variant: Variant | None = None) -> Any:
        hw = preset.with_caps(**variant.changes()) if variant else preset
        return BareMetal(hw, seed=seed).run(program)

    return run


def run_conformance(preset: str | CpuPreset, *, suites: tuple[str, ...] | None = None,
                    design: str | None = None) -> list[CheckResult]:
    """Run the named suites (default: all) on ``preset`` and return every check result."""
    if design is not None:
        raise ValueError(f"design must be None (bare metal) in this version, not {design!r}")
    p = get_preset(preset) if isinstance(preset, str) else preset
    names = suites or tuple(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise ValueError(f"suite must be one of {sorted(SUITES)}, not {unknown[0]!r}")
    runner = bare_metal_runner(p)
    results: list[CheckResult] = []
    for name in names:
        results += run_suite(SUITES[name], runner, Expectations())
    return results
