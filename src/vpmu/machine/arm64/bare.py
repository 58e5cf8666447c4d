"""The arm64 port operations on bare metal: MRS and MSR are the instructions themselves on the
Arm CPU (``vpmu.hw.arm64.cpu``); an x86 operation is UNDEFINED here."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from vpmu.arch.faults import Fault
from vpmu.guest.port import Cpuid, Mrs, Msr, Op, Rdmsr, Rdpmc, Rdtsc, SetCr4Pce, Wrmsr
from vpmu.hw.arm64.cpu import ArmCpu
from vpmu.hw.core import CpuCore
from vpmu.sim import Event


def execute(core: CpuCore, op: Op) -> Generator[Event, Any, Any]:
    """Execute ``op`` on the CPU; TypeError for what is not a port operation."""
    if not isinstance(core, ArmCpu):
        raise TypeError(f"the arm64 executor needs an ArmCpu, not {core!r}")
    match op:
        case Mrs(name):
            return (yield from core.mrs(name))
        case Msr(name, value):
            return (yield from core.msr(name, value))
        case Rdmsr() | Wrmsr() | Rdpmc() | Cpuid() | Rdtsc() | SetCr4Pce():
            return Fault.UNDEF  # an x86 instruction is undefined here (its latency not modelled)
    raise TypeError(f"a guest program must yield a port operation, not {op!r}")
