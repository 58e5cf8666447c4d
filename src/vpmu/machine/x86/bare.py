"""The x86 port operations on bare metal: each is the instruction itself on the x86 CPU (its
privilege checks, faults and latency are the CPU's: ``vpmu.hw.x86.cpu``)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from vpmu.arch.faults import Fault
from vpmu.guest.port import Cpuid, Mrs, Msr, Op, Rdmsr, Rdpmc, Rdtsc, SetCr4Pce, Wrmsr
from vpmu.hw.core import CpuCore
from vpmu.hw.x86.cpu import x86_cpu
from vpmu.sim import Event, ps_to_cycles


def execute(core: CpuCore, op: Op) -> Generator[Event, Any, Any]:
    """Execute ``op`` on the CPU; TypeError for what is not a port operation."""
    cpu = x86_cpu(core)
    match op:
        case Rdmsr(addr):
            return (yield from cpu.rdmsr(addr))
        case Wrmsr(addr, value):
            return (yield from cpu.wrmsr(addr, value))
        case Rdpmc(ecx):
            return (yield from cpu.rdpmc(ecx))
        case Cpuid(leaf, subleaf):
            return (yield from cpu.cpuid(leaf, subleaf))
        case Rdtsc():
            # Assumption: RDTSC's ~25-cycle latency is not charged (no cost-table entry).
            return ps_to_cycles(cpu.env.now_ps, cpu.preset.tsc_mhz)
        case SetCr4Pce(enabled):
            return (yield from cpu.set_cr4_pce(enabled))
        case Mrs() | Msr():
            return Fault.UD  # an arm64 instruction is undefined here (its latency not modelled)
    raise TypeError(f"a guest program must yield a port operation, not {op!r}")
