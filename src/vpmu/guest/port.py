"""The guest register port (DESIGN.md contract): operations a guest program yields.

A guest program is a generator function: it yields operations and receives their results.
Faults are values (``Fault.GP``), never exceptions, so a program can test for them the way the
kvm-unit-tests and selftests do. The same program runs on bare metal and under every design;
only the cost and the path differ.

Results: ``Rdmsr`` -> int or Fault.GP; ``Wrmsr`` -> None or Fault.GP; ``Rdpmc`` -> int or
Fault.GP; ``Cpuid`` -> (eax, ebx, ecx, edx); ``Execute`` -> None; ``WaitPmi`` -> True if a PMI
was delivered, else False; ``Rdtsc`` -> int; ``SetCpl`` / ``SetCr4Pce`` -> None. ``Rdtsc``,
``SetCpl`` and ``SetCr4Pce`` extend the contract (the guest kernel's clock, and the RDPMC
CR4.PCE/CPL rule and user-mode code).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeAlias

from vpmu.arch.faults import Fault
from vpmu.workloads.streams import Stream


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
class Execute:
    """Run a workload stream to completion (interrupts may arrive meanwhile)."""

    stream: Stream


@dataclass(frozen=True, slots=True)
class WaitPmi:
    """Wait up to ``timeout_ns`` for a PMI; True at once if one arrived since the last wait."""

    timeout_ns: int


@dataclass(frozen=True, slots=True)
class Rdtsc:
    """RDTSC: the time-stamp counter (never exits: KVM offsets the TSC in hardware). What the
    guest kernel's clock reads (perf_clock, the frequency-mode period estimate)."""


@dataclass(frozen=True, slots=True)
class SetCpl:
    """Continue at privilege level ``cpl`` (0 kernel, 3 user; 1 and 2 are rings too and count
    as user for the PMU's USR bit): what an IRET/SYSRET does. A ring outside 0-3 cannot be
    encoded (a selector's RPL is two bits), so it is refused when the operation is made."""

    cpl: int

    def __post_init__(self) -> None:
        if type(self.cpl) is not int or not 0 <= self.cpl <= 3:
            raise ValueError(f"cpl must be a ring 0-3, not {self.cpl!r}")


@dataclass(frozen=True, slots=True)
class SetCr4Pce:
    """Set or clear CR4.PCE (RDPMC allowed at CPL > 0); privileged like MOV to CR4."""

    enabled: bool


Op: TypeAlias = (Rdmsr | Wrmsr | Rdpmc | Cpuid | Execute | WaitPmi | Rdtsc | SetCpl
                 | SetCr4Pce)
"""Every operation a guest program may yield."""

GuestGen: TypeAlias = Generator[Op, Any, Any]
"""A running guest program."""

GuestProgram: TypeAlias = Callable[[], GuestGen]
"""A guest program: a generator function taking no arguments."""

__all__ = ["Cpuid", "Execute", "Fault", "GuestGen", "GuestProgram", "Op", "Rdmsr", "Rdpmc",
           "Rdtsc", "SetCpl", "SetCr4Pce", "WaitPmi", "Wrmsr"]
