"""The arm64 operations of the guest register port: system-register reads and writes by
name (``MRS x0, PMCCNTR_EL0`` / ``MSR PMCR_EL0, x0``).

Results: ``Mrs`` -> int or Fault.UNDEF; ``Msr`` -> None or Fault.UNDEF (an access
the PMU or the hypervisor refuses is an UNDEFINED exception, Arm ARM D1.12). Declared
now so that a program can be written against the port; no CPU model executes them yet, so
every executor answers Fault.UNDEF (on x86 they are undefined instructions, #UD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Mrs:
    """MRS: read the system register ``name`` (e.g. ``"PMCCNTR_EL0"``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Msr:
    """MSR: write ``value`` to the system register ``name`` (e.g. ``"PMCR_EL0"``)."""

    name: str
    value: int


Arm64Op: TypeAlias = Mrs | Msr
"""Every arm64 operation."""

ARM64_OPS = (Mrs, Msr)
"""The arm64 operation classes."""
