"""Guest OS side: the register port guest programs use, and the ported conformance programs.

The guest reaches hardware only through the port's operations; ``vpmu.machine`` executes them
on bare metal or under a hypervisor design.
"""

from vpmu.guest.port import (
    Cpuid,
    Execute,
    Fault,
    GuestGen,
    GuestProgram,
    Mrs,
    Msr,
    Op,
    Rdmsr,
    Rdpmc,
    Rdtsc,
    SetCpl,
    SetCr4Pce,
    WaitPmi,
    Wrmsr,
)

__all__ = ["Cpuid", "Execute", "Fault", "GuestGen", "GuestProgram", "Mrs", "Msr",
           "Op", "Rdmsr", "Rdpmc",
           "Rdtsc", "SetCpl", "SetCr4Pce", "WaitPmi", "Wrmsr"]
