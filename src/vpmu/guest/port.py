"""The guest register port (the contract of the README's guest programs): operations a guest
program yields.

A guest program is a generator function: it yields operations and receives their results.
Faults are values (``Fault.GP``), never exceptions, so a program can test for them the way the
kvm-unit-tests and selftests do. The same program runs on bare metal and under every design;
only the cost and the path differ.

The neutral operations are here: ``Execute`` -> None; ``WaitPmi`` -> True if a PMI was
delivered, else False; ``SetCpl`` -> None. Each architecture's register operations are in
``vpmu.guest.ports`` and re-exported here: x86's ``Rdmsr`` -> int or Fault.GP; ``Wrmsr`` ->
None or Fault.GP; ``Rdpmc`` -> int or Fault.GP; ``Cpuid`` -> (eax, ebx, ecx, edx); ``Rdtsc``
-> int; ``SetCr4Pce`` -> None; arm64's ``Mrs`` -> int or Fault.UNDEF, ``Msr`` -> None or
Fault.UNDEF. ``Rdtsc``, ``SetCpl``, ``SetCr4Pce``, ``Mrs`` and ``Msr`` extend the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeAlias

from vpmu.arch.faults import Fault
from vpmu.guest.ports.arm64 import Arm64Op, Mrs, Msr
from vpmu.guest.ports.x86 import Cpuid, Rdmsr, Rdpmc, Rdtsc, SetCr4Pce, Wrmsr, X86Op
from vpmu.workloads.streams import Stream


@dataclass(frozen=True, slots=True)
class Execute:
    """Run a workload stream to completion (interrupts may arrive meanwhile)."""

    stream: Stream


@dataclass(frozen=True, slots=True)
class WaitPmi:
    """Wait up to ``timeout_ns`` for a PMI; True at once if one arrived since the last wait."""

    timeout_ns: int


@dataclass(frozen=True, slots=True)
class SetCpl:
    """Continue at privilege level ``cpl`` (0 kernel, 3 user; 1 and 2 are rings too and count
    as user for the PMU's USR bit): what an IRET/SYSRET does. A ring outside 0-3 cannot be
    encoded (a selector's RPL is two bits), so it is refused when the operation is made."""

    cpl: int

    def __post_init__(self) -> None:
        if type(self.cpl) is not int or not 0 <= self.cpl <= 3:
            raise ValueError(f"cpl must be a ring 0-3, not {self.cpl!r}")


NeutralOp: TypeAlias = Execute | WaitPmi | SetCpl
"""The operations every architecture executes the same way."""

Op: TypeAlias = NeutralOp | X86Op | Arm64Op
"""Every operation a guest program may yield."""

GuestGen: TypeAlias = Generator[Op, Any, Any]
"""A running guest program."""

GuestProgram: TypeAlias = Callable[[], GuestGen]
"""A guest program: a generator function taking no arguments."""

__all__ = ["Cpuid", "Execute", "Fault", "GuestGen", "GuestProgram", "Mrs", "Msr", "NeutralOp",
           "Op", "Rdmsr", "Rdpmc", "Rdtsc", "SetCpl", "SetCr4Pce", "WaitPmi", "Wrmsr"]
