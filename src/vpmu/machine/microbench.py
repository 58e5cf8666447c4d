"""Guest microbenchmarks that measure what the literature measures, the way it measures it.

``cpuid_round_trip`` is kvm-unit-tests' x86/vmexit.c "cpuid" shape: a guest times a run of
CPUIDs with RDTSC and divides, so the figure includes everything between two guest
instructions (exit, handling, a mediated PMU's put and load, re-entry). The v6 mediated
series reports this figure before/after eliding PMC writes ("[PATCH v6 34/44] KVM: x86/pmu:
Elide WRMSRs when loading guest PMCs...", 5 Dec 2025). ``wrmsr_round_trip`` times a WRMSR the
same way (an MSR-write exit; the fastpath completes TSC_DEADLINE and ICR writes), and
``bare_cpuid`` a CPUID on bare metal. vmexit.c reports TSC ticks per iteration; these
functions return core cycles, converted with the preset's clocks (equal on every x86 preset).
``arm_trap_round_trip_ns`` is arm/micro-bench.c's shape on arm64: the guest times a run of
trapping instructions with CNTVCT_EL0 and reports nanoseconds.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from vpmu.arch.presets import CpuPreset, as_preset
from vpmu.guest.port import Cpuid, Mrs, Op, Rdtsc, Wrmsr
from vpmu.machine.baremetal import run_guest
from vpmu.machine.vm import run_vm_program

WARMUP = 5
"""CPUIDs before the timed ones (the first entry loads the context from reset state)."""


def _timed(op: Op, iterations: int) -> Any:
    """A guest program: ``op`` WARMUP times, then ``iterations`` times between two RDTSCs;
    it returns the TSC ticks between them."""
    def program() -> Any:
        for _ in range(WARMUP):
            yield op
        t0 = yield Rdtsc()
        for _ in range(iterations):
            yield op
        t1 = yield Rdtsc()
        return t1 - t0
    return program


def _cycles(tsc: int, p: CpuPreset, iterations: int) -> float:
    return float(Fraction(tsc * p.core_mhz, p.tsc_mhz * iterations))


def cpuid_round_trip(preset: str | CpuPreset, design: str, *, iterations: int = 100) -> float:
    """Core cycles per guest CPUID under ``design`` on ``preset`` (the guest PMU idle)."""
    p = as_preset(preset)
    return _cycles(run_vm_program(_timed(Cpuid(0, 0), iterations), preset=p, design=design),
                   p, iterations)


def wrmsr_round_trip(preset: str | CpuPreset, design: str, msr: int, value: int = 0, *,
                     iterations: int = 100) -> float:
    """Core cycles per guest WRMSR of ``msr`` under ``design`` on ``preset``."""
    p = as_preset(preset)
    return _cycles(run_vm_program(_timed(Wrmsr(msr, value), iterations), preset=p,
                                  design=design), p, iterations)


def bare_cpuid(preset: str | CpuPreset, *, iterations: int = 100) -> float:
    """Core cycles per CPUID on bare metal."""
    p = as_preset(preset)
    return _cycles(run_guest(_timed(Cpuid(0, 0), iterations), preset=p), p, iterations)


def arm_trap_round_trip_ns(preset: str | CpuPreset, design: str, register: str, *,
                           iterations: int = 100) -> float:
    """Nanoseconds per guest MRS of ``register`` (a trapped one: an exit per read) under
    ``design`` on an Arm preset, timed with CNTVCT_EL0 as arm/micro-bench.c does."""
    p = as_preset(preset)

    def program() -> Any:
        for _ in range(WARMUP):
            yield Mrs(register)
        t0 = yield Mrs("CNTVCT_EL0")
        for _ in range(iterations):
            yield Mrs(register)
        t1 = yield Mrs("CNTVCT_EL0")
        return t1 - t0

    ticks = run_vm_program(program, preset=p, design=design)
    return float(Fraction(ticks * 1000, p.tsc_mhz * iterations))
