"""Guest microbenchmarks that measure what the literature measures, the way it measures it.

``cpuid_round_trip`` is kvm-unit-tests' vmexit "cpuid" shape: a guest times a run of CPUIDs
with RDTSC and divides, so the figure includes everything between two guest instructions
(exit, handling, a mediated PMU's put and load, re-entry). The v6 mediated series reports
this figure before/after eliding PMC writes ("[PATCH v6 34/44] KVM: x86/pmu: Elide WRMSRs
when loading guest PMCs...", 5 Dec 2025).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from vpmu.arch.presets import CpuPreset, as_preset
from vpmu.guest.port import Cpuid, Rdtsc
from vpmu.machine.vm import run_vm_program

WARMUP = 5
"""CPUIDs before the timed ones (the first entry loads the context from reset state)."""


def cpuid_round_trip(preset: str | CpuPreset, design: str, *, iterations: int = 100) -> float:
    """Core cycles per guest CPUID under ``design`` on ``preset`` (the guest PMU idle)."""
    p = as_preset(preset)

    def program() -> Any:
        for _ in range(WARMUP):
            yield Cpuid(0, 0)
        t0 = yield Rdtsc()
        for _ in range(iterations):
            yield Cpuid(0, 0)
        t1 = yield Rdtsc()
        return t1 - t0

    tsc = run_vm_program(program, preset=p, design=design)
    return float(Fraction(tsc * p.core_mhz, p.tsc_mhz * iterations))
