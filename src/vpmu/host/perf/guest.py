"""What perf needs of a mediated vPMU guest context, and the errors of mediated admission.

A mediated vPMU (Linux 7.0: kernel/events/core.c and arch/x86/kvm/pmu.c@v7.0) borrows the
core PMU: while a vCPU's guest
context is loaded on a CPU, perf keeps every host event off that CPU's counters and lets the
owner switch the global control at VM-entry and VM-exit (the VMCS fields on Intel). Perf
also refuses events that would count the guest while mediated VMs exist (admission control
instead of preemption).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu

EBUSY = "EBUSY"
ENOENT = "ENOENT"
EOPNOTSUPP = "EOPNOTSUPP"


class PerfOpenError(OSError):
    """perf_event_open failed with ``errno`` (a name such as "EOPNOTSUPP")."""

    def __init__(self, errno_name: str, message: str) -> None:
        super().__init__(message)
        self.errno_name = errno_name


class GuestContext(Protocol):
    """A loaded mediated guest context on one CPU (the vCPU's ``struct kvm_pmu``)."""

    def vm_entry(self, cpu: Pcpu) -> None:
        """VM-entry: the hardware loads the guest's global control (VMCS on Intel)."""
        ...

    def vm_exit(self, cpu: Pcpu) -> None:
        """VM-exit: the hardware saves the guest's global control and loads the host's 0."""
        ...

    def host_event_added(self, cpu: Pcpu) -> None:
        """A host event that wants this CPU was installed while the guest owns the PMU."""
        ...
