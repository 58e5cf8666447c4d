"""What every design's per-vCPU state does, whatever the architecture: the vCPU a design
sees (``VcpuBase``), the ops KVM's common code calls (``VcpuLifecycle``: requests handled before
the next entry, PMI delivery, sched in/out, load/put of a guest context), the KVM requests, and
the context-switch ops of a design that never loads guest state (``NoGuestContext``).

An architecture adds how its guests reach the vPMU (``vpmu.vpmu.x86.access``: MSRs, RDPMC,
the LVTPC). Every kernel-side op is a simulation generator run on the physical CPU the vCPU is
on, so its cost lands there as IN_KVM time; guest-visible faults are returned as values.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.machine import Host
    from vpmu.host.perf.core import PerfSubsystem
    from vpmu.host.perf.kapi import KernelCounterApi
    from vpmu.host.task import Task
    from vpmu.vpmu.costs import KvmCosts
    from vpmu.vpmu.filter import PmuEventFilter

Gen = Generator[Any, Any, Any]
"""A kernel-side op: a simulation generator whose return value is the op's result."""

KVM_REQ_PMU: Final = "KVM_REQ_PMU"
"""kvm_make_request(KVM_REQ_PMU): kvm_pmu_handle_event reprograms the counters the reprogram
bitmap names before the next VM-entry."""
KVM_REQ_PMI: Final = "KVM_REQ_PMI"
"""kvm_make_request(KVM_REQ_PMI): kvm_pmu_deliver_pmi injects the guest PMI before the next
VM-entry (and kicks a halted vCPU)."""


class VcpuBase(Protocol):
    """What a design sees of a vCPU, whatever the architecture (``vpmu.machine`` implements
    it; an architecture adds its own guest-visible state, ``vpmu.vpmu.x86.access``)."""

    index: int
    host: Host
    task: Task
    """The vCPU thread (perf events are bound to it)."""
    kapi: KernelCounterApi
    """perf's in-kernel counter API on this host."""
    kvm_costs: KvmCosts
    event_filter: PmuEventFilter | None
    """The VM's KVM_SET_PMU_EVENT_FILTER, if any."""
    cpl: int
    """The guest's current privilege level (x86 CPL 0-3; arm64 EL0/EL1 as 3/0)."""
    perf: PerfSubsystem
    """The host's perf subsystem (a mediated design borrows the PMU from it)."""
    vm_name: str
    label: str
    """``vm/vcpuN``: how reports and origin tags name this vCPU."""

    def request(self, name: str) -> None:
        """Raise a KVM request (KVM_REQ_PMU, KVM_REQ_PMI, ...), handled before the next entry."""
        ...


class VcpuLifecycle(Protocol):
    """The per-vCPU ops KVM's common code calls whatever the architecture: requests handled
    before entry, PMI delivery, scheduling, and loading/putting a guest context."""

    def handle_event(self, cpu: Pcpu) -> Gen:
        """KVM_REQ_PMU: kvm_pmu_handle_event (reprogram the dirty counters)."""
        ...

    def deliver_pmi(self, cpu: Pcpu) -> Gen:
        """KVM_REQ_PMI: kvm_pmu_deliver_pmi through the virtual LVTPC; True if injected."""
        ...

    def instruction_retired(self) -> None:
        """KVM skipped/emulated a guest instruction (kvm_pmu_instruction_retired)."""
        ...

    def sched_in(self, cpu: Pcpu) -> int:
        """kvm_arch_sched_in: the vCPU thread is scheduled in; kernel cycles spent."""
        ...

    def sched_out(self, cpu: Pcpu) -> int:
        """kvm_sched_out -> vcpu_put: the vCPU thread leaves the CPU; kernel cycles spent."""
        ...

    def needs_load(self) -> bool:
        """A guest PMU context must be loaded on the hardware before guest code runs."""
        ...

    def load(self, cpu: Pcpu) -> Gen:
        """Load the guest PMU context (just before VM-entry)."""
        ...

    def at_exit(self, cpu: Pcpu, point: str) -> Gen:
        """A VM-exit reached ``point``: "vm-exit" (right after the exit) or "loop-exit"
        (leaving the fastpath loop for a full exit). A design may put its context here."""
        ...

    def fastpath_allowed(self) -> bool:
        """kvm_pmu_is_fastpath_emulation_allowed: the fastpath may complete an exit."""
        ...


class NoGuestContext:
    """The context-switch ops of a design that never loads guest state on the PMU."""

    def sched_out(self, cpu: Pcpu) -> int:
        """Nothing PMU-related in vcpu_put."""
        return 0

    def needs_load(self) -> bool:
        """Nothing to load."""
        return False

    def load(self, cpu: Pcpu) -> Gen:
        """Nothing to load."""
        yield from ()

    def at_exit(self, cpu: Pcpu, point: str) -> Gen:
        """Nothing to put."""
        yield from ()

    def fastpath_allowed(self) -> bool:
        """The fastpath does not depend on the vPMU."""
        return True

    def lvtpc_written(self, cpu: Pcpu) -> int:
        """The LVTPC is the virtual APIC's alone."""
        return 0
