"""The x86 operations of the guest register port: MSR and counter reads and writes, CPUID,
the time-stamp counter, and the CR4.PCE bit that gates RDPMC in user mode.

Results: ``Rdmsr`` -> int or Fault.GP; ``Wrmsr`` -> None or Fault.GP; ``Rdpmc`` -> int or
Fault.GP; ``Cpuid`` -> (eax, ebx, ecx, edx); ``Rdtsc`` -> int; ``SetCr4Pce`` -> None or
Fault.GP. Executed by the x86 CPU on bare metal and by the x86 trap layer under a VM; on
another architecture each is Fault.UNDEF (an undefined instruction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Rdmsr:
    """RDMSR ECX=``addr``: privileged; #GP at CPL > 0 or for an unimplemented MSR."""

    addr: int


@dataclass(frozen=True, slots=True)
class Wrmsr:
    """WRMSR ECX=``addr``, EDX:EAX=``value``: #GP per the register's declaration."""

    addr: int
    value: int


@dataclass(frozen=True, slots=True)
class Rdpmc:
    """RDPMC ECX=``ecx``: GP index, ``1<<30 | i`` fixed, bit 31 fast read."""

    ecx: int


@dataclass(frozen=True, slots=True)
class Cpuid:
    """CPUID EAX=``leaf``, ECX=``subleaf``."""

    leaf: int
    subleaf: int = 0


@dataclass(frozen=True, slots=True)
class Rdtsc:
    """RDTSC: the time-stamp counter (never exits: KVM offsets the TSC in hardware). What the
    guest kernel's clock reads (perf_clock, the frequency-mode period estimate)."""


@dataclass(frozen=True, slots=True)
class SetCr4Pce:
    """Set or clear CR4.PCE (RDPMC allowed at CPL > 0); privileged like MOV to CR4."""

    enabled: bool


X86Op: TypeAlias = Rdmsr | Wrmsr | Rdpmc | Cpuid | Rdtsc | SetCr4Pce
"""Every x86 operation."""

X86_OPS = (Rdmsr, Wrmsr, Rdpmc, Cpuid, Rdtsc, SetCr4Pce)
"""The x86 operation classes (what a trap layer or bare-metal executor dispatches on)."""
