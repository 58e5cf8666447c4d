"""What the trace importer (``vpmu.trace.parse``) produces: KVM tracepoint events and its error.

The events are the three tracepoints of arch/x86/kvm/trace.h that a vPMU study needs
(``kvm_entry``, ``kvm_exit``, ``kvm_msr``): mainline kernels have no ``kvm_pmu*`` tracepoint, so
PMU activity is read from MSR exits, RDPMC exits and NMIs. Each event keeps the place it came
from (``line``) so that a report can point back into the capture.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpmu.errors import InputError


@dataclass(frozen=True, slots=True)
class KvmEvent:
    """Where and when a tracepoint fired: the context ftrace (``trace_print_context``),
    trace-cmd and perf script print before the event name."""

    t_ps: int
    """The timestamp, converted exactly (integer arithmetic) from ``secs.usecs`` or
    ``secs.nsecs``; the trace clock's epoch is kept (usually boot)."""
    cpu: int
    """The host CPU, the ``[NNN]`` field."""
    comm: str
    """The task name; may contain spaces and dashes ("CPU 0/KVM", "qemu-system-x86")."""
    pid: int
    """The kernel pid of the task, i.e. the thread id (QEMU runs one thread per vCPU)."""
    line: int
    """The 1-based line of the capture the event was read from."""


@dataclass(frozen=True, slots=True)
class KvmEntry(KvmEvent):
    """``kvm_entry``: ``vcpu %u, rip 0x%lx`` (older kernels: ``vcpu %u``)."""

    vcpu: int
    rip: int | None
    """The guest rip; None for the old ``vcpu %u`` layout, which did not print it."""


@dataclass(frozen=True, slots=True)
class KvmExit(KvmEvent):
    """``kvm_exit``: ``vcpu %u reason %s%s%s rip 0x%lx info1 0x%016llx info2 0x%016llx
    intr_info 0x%08x error_code 0x%08x`` and its older layouts (see ``parse_payload``)."""

    vcpu: int | None
    """The vCPU id; None for old layouts that did not print it."""
    reason: str
    """The VMX exit-reason name (``MSR_READ``, ``RDPMC``, ``EXTERNAL_INTERRUPT`` ...). SVM
    names are mapped to the VMX name of the same exit, so one histogram covers both vendors;
    a reason the kernel printed as a number keeps its text, upper-cased."""
    raw_reason: str
    """The reason exactly as printed, VMX exit-reason flags (``FAILED_VMENTRY``) included."""
    isa: str
    """``"vmx"`` or ``"svm"``: VMX names are upper case, SVM names lower case. A numeric reason
    names no vendor; it takes the vendor of the capture's named reasons ("vmx" if none)."""
    rip: int
    info1: int
    """VMX exit qualification / SVM EXITINFO1 (for an MSR intercept: 1 WRMSR, 0 RDMSR)."""
    info2: int
    intr_info: int
    """VM-exit interruption information; 0 when the kernel did not print it."""
    error_code: int
    """0 when the kernel did not print it."""


@dataclass(frozen=True, slots=True)
class KvmMsr(KvmEvent):
    """``kvm_msr``: ``msr_%s %x = 0x%llx%s``, an RDMSR or WRMSR KVM handled for the guest."""

    write: bool
    index: int
    """The MSR address (ECX), printed in hex without 0x."""
    value: int
    gp: bool
    """The access raised #GP in the guest (the `` (#GP)`` suffix)."""


class TraceParseError(InputError):
    """A line of a capture holds a ``kvm_entry``/``kvm_exit``/``kvm_msr`` event that does not
    read as the kernel prints it. ``line`` and ``column`` are 1-based; the column is where the
    bad token starts, so an editor can jump to it."""

    def __init__(self, source: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{source}:{line}:{column}", message)
        # The four values are the exception's args, so it pickles and compares as constructed.
        self.args = (source, line, column, message)
        self.source = source
        self.line = line
        self.column = column
