"""Who holds a CPU's LBR: host perf's LBR users or a guest (KVM's guest LBR event).

The LBR is one per CPU and its records carry no owner, so at any moment one side records into
it and reads it. Host LBR users are perf events with a branch stack (``perf record -b``,
``--call-graph lbr``); a guest's claim is KVM's guest LBR event, present on a CPU while its
vCPU thread runs there (``vpmu.vpmu.x86.lbr``). When both want a CPU, the guest's
``lbr_ownership`` rule decides (seed 002's argument, 9 Jul 2019; docs/sources.md):

- ``first-come`` (Wei Wang: "if guest first gets the lbr, host wouldn't take over"): the
  older claim wins: a guest LBR event created before the host event keeps the LBR on its
  CPUs, and the host event's samples carry no branch stack there (perf's
  ``vlbr_exclude_host``); a guest event younger than a host LBR user fails to schedule.
- ``cpu-event-precedence`` (Peter Zijlstra: CPU-pinned, task-pinned, CPU-flexible,
  task-flexible; the v14 series' documented intent "Higher priority host perf events (e.g.
  cpu pinned) could reclaim the pmu resources (e.g. LBR)"): a host CPU LBR event takes the
  LBR from the guest, by IPI.
- ``guest-precedence`` (what upstream perf does, Xiong Zhang, "[PATCH 0/4] Part of fix for
  host and guest LBR event coexist", 16 Jun 2023: the guest LBR event's constraint is matched
  before the LBR's shared-register check, so "vLBR event is always active even if LBR is
  owned by host higher prority per cpu pinned LBR event"): the guest wins on its CPU
  whenever its thread runs there.

A guest event that loses goes to ERROR: perf never schedules it again and KVM never re-enables
it ("the only way to reschedule it is to enable it again", Xiong Zhang, 27 Jun 2023), so its
LBR MSRs are intercepted, read 0 and drop writes until KVM releases the event. Its DEBUGCTL
is still loaded at VM-entry, so the guest's branches go into the host's stack (a leak).
When the guest takes the LBR from a host user, perf's pmu_disable turns the host's LBR off
before the guest event is enabled; from then on perf leaves the LBR alone
(``vlbr_exclude_host``: intel_pmu_lbr_enable_all / _disable_all / _read do nothing). KVM,
though, writes back after every VM-exit the DEBUGCTL it read at vcpu load: if a host user had
the LBR on then (the guest's event was created, or won, later in the same load), host
branches go into the guest's stack until the vCPU is next loaded (pollution; Xiong Zhang's
unmerged "KVM: VMX/pmu: Save host debugctlmsr just before vm entry", 16 Jun 2023).

Every change of holder is a ``LbrOwner`` record with what the LBR recorded since the CPU's
previous one; every host sample of an LBR event is a ``LbrRead``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from vpmu.trace import LbrContext, LbrOwner, LbrRead

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.perf.attr import PerfEventAttr
    from vpmu.host.perf.core import PerfSubsystem
    from vpmu.host.perf.event import PerfEvent
    from vpmu.host.task import Task
    from vpmu.hw.branches import BranchRecorder

OWNERSHIP_RULES = ("first-come", "cpu-event-precedence", "guest-precedence")
"""The values of a design's ``lbr_ownership`` option (the first is the default)."""


class HostLbrOps(Protocol):
    """What perf's LBR code does to one CPU's LBR (x86: ``vpmu.host.perf.x86.lbr``)."""

    @property
    def recorder(self) -> BranchRecorder:
        """The stack."""
        ...

    def enable(self, attr: PerfEventAttr) -> None:
        """Program the filter for ``attr`` and start recording."""
        ...

    def disable(self) -> None:
        """Stop recording."""
        ...

    def reset(self) -> int:
        """Wipe the stack; the MSR writes it took."""
        ...

    def read(self) -> tuple[int, int, int]:
        """Read the stack: (MSR reads, records, records from guest mode)."""
        ...


class LbrClaim(Protocol):
    """A guest's claim on the LBR (KVM's guest LBR event)."""

    created_ps: int
    ownership: str
    label: str
    """The guest's vCPU (``vm/vcpuN``)."""

    @property
    def active(self) -> bool:
        """The event is schedulable (not in ERROR state)."""
        ...

    def error(self) -> None:
        """perf put the event in ERROR state (it could not get, or lost, the LBR)."""
        ...


def guest_wins(claim: LbrClaim, host: list[PerfEvent], created: dict[int, int]) -> bool:
    """The ownership rule between a guest claim and the host LBR users on one CPU."""
    if claim.ownership == "cpu-event-precedence":
        return not any(ev.cpu >= 0 for ev in host)
    if claim.ownership == "guest-precedence":
        return True
    return all(claim.created_ps < created[ev.id] for ev in host)


@dataclass
class CpuLbr:
    """One CPU's LBR users."""

    host: list[PerfEvent] = field(default_factory=list)
    """Host LBR events on the CPU's counters."""
    guest: LbrClaim | None = None
    """The guest claim present (its vCPU thread runs here)."""
    last_guest: str = ""
    holder: str = ""
    host_enabled: bool = False
    """Host perf set DEBUGCTL.LBR for its users (and has not cleared it)."""
    marks: tuple[int, int, int] = (0, 0, 0)
    """The recorder's (guest_ps, guest_pushed, pushed) at the CPU's last record."""


class LbrArbiter:
    """The LBR users of every CPU of a host whose PMU has an LBR."""

    def __init__(self, perf: PerfSubsystem, hw: list[HostLbrOps | None]) -> None:
        self.perf = perf
        self.hw = hw
        self.cpus = [CpuLbr() for _ in hw]
        self.created: dict[int, int] = {}
        """Host LBR event id -> when it was opened (first-come's order)."""
        self.claim_tasks: dict[int, LbrClaim] = {}
        """Tasks (by id) with a guest LBR event, a call-stack task event whose LBR context
        perf restores when they come in (no reset, unless the event is in ERROR: then it has
        no call-stack user and perf resets)."""

    def __repr__(self) -> str:
        return f"LbrArbiter(cpus={len(self.cpus)})"

    # -- host events ----------------------------------------------------------------------
    def opened(self, ev: PerfEvent) -> None:
        """A host LBR event was opened."""
        self.created[ev.id] = self.perf.host.env.now_ps

    def host_add(self, cpu: Pcpu, ev: PerfEvent) -> None:
        """intel_pmu_lbr_add: a host LBR event went on this CPU's counters."""
        c = self.cpus[cpu.index]
        c.host.append(ev)
        claim = c.guest
        if claim is not None and claim.active:
            if guest_wins(claim, c.host, self.created):
                self._change(cpu, "host-refused")
                return
            claim.error()
            self._change(cpu, "guest-reclaimed")
            return
        self._change(cpu, "host-in")

    def host_del(self, cpu: Pcpu, ev: PerfEvent) -> None:
        """intel_pmu_lbr_del: it left them."""
        c = self.cpus[cpu.index]
        if ev in c.host:
            c.host.remove(ev)
            self._change(cpu, "host-out")

    # -- guest claims ---------------------------------------------------------------------
    def guest_in(self, cpu: Pcpu, claim: LbrClaim, task: Task | None) -> None:
        """The guest LBR event is scheduled on this CPU (created, or its thread came in)."""
        c = self.cpus[cpu.index]
        c.guest, c.last_guest = claim, claim.label
        if task is not None:
            self.claim_tasks[id(task)] = claim
        if not claim.active:
            self._change(cpu, "guest-in")
        elif c.host and not guest_wins(claim, c.host, self.created):
            claim.error()
            self._change(cpu, "guest-refused")
        else:
            self._change(cpu, "host-preempted" if c.holder == "host" else "guest-in")

    def guest_out(self, cpu: Pcpu, claim: LbrClaim) -> None:
        """It left the CPU (its thread was switched out, or KVM released it)."""
        c = self.cpus[cpu.index]
        if c.guest is claim:
            c.guest = None
            self._change(cpu, "guest-out")

    def forget(self, task: Task) -> None:
        """The task's guest LBR event was released: perf resets the LBR for it again."""
        self.claim_tasks.pop(id(task), None)

    # -- perf's callbacks -------------------------------------------------------------------
    def sched_task(self, cpu: Pcpu, task: Task) -> int:
        """intel_pmu_lbr_sched_task at sched-in, for the host's users: a task without an LBR
        context of its own gets a wiped LBR ("a context switch can flip the address space");
        the WRMSRs' cycles."""
        c, hw = self.cpus[cpu.index], self.hw[cpu.index]
        claim = self.claim_tasks.get(id(task))
        if hw is None or not c.host or (claim is not None and claim.active):
            return 0
        writes = hw.reset()
        if c.holder == "host":
            hw.enable(c.host[0].attr)
        host = self.perf.host
        cycles = writes * cpu.costs.instruction_cycles["lbr_wrmsr"]
        host.trace.emit(LbrContext(host.env.now_ps, cpu.index, "reset", "", -1,
                                   "host-task-switch", writes, cycles, cpu.cycles_ps(cycles)))
        return cycles

    def sample(self, cpu: Pcpu, ev: PerfEvent) -> int:
        """intel_pmu_lbr_read for a sample of a host LBR event; the RDMSRs' cycles (none
        while a guest holds the LBR: the sample has no branch stack)."""
        c, hw = self.cpus[cpu.index], self.hw[cpu.index]
        host, guest = self.perf.host, c.last_guest
        if hw is None:
            return 0
        if c.holder != "host":
            host.trace.emit(LbrRead(host.env.now_ps, cpu.index, ev.id, -1, 0, guest))
            return 0
        reads, records, from_guest = hw.read()
        host.trace.emit(LbrRead(host.env.now_ps, cpu.index, ev.id, records, from_guest, guest))
        return reads * cpu.costs.instruction_cycles["lbr_rdmsr"]

    def finish(self) -> None:
        """Close every CPU's stretch at the end of a run."""
        for cpu in self.perf.host.cpus:
            c = self.cpus[cpu.index]
            if c.holder or c.last_guest:  # a CPU whose LBR nobody used has nothing to close
                self._change(cpu, "end")

    # -- holder changes ---------------------------------------------------------------------
    def _change(self, cpu: Pcpu, why: str) -> None:
        c, hw = self.cpus[cpu.index], self.hw[cpu.index]
        if hw is None:
            return
        held_by = c.holder
        if c.guest is not None and c.guest.active:
            c.holder = "guest"
        else:
            c.holder = "host" if c.host else ""
        if c.holder == "host" and (not c.host_enabled or held_by == "guest"):
            hw.enable(c.host[0].attr)  # its filter again: a guest's restore replaced it
            c.host_enabled = True
        elif c.host_enabled and c.holder != "host":
            # perf's pmu_disable runs before the guest event is enabled (not yet excluded)
            hw.disable()
            c.host_enabled = False
        rec = hw.recorder
        rec.sync()
        now = (rec.guest_ps, rec.guest_pushed, rec.pushed)
        g_ps, g_rec, total = (a - b for a, b in zip(now, c.marks, strict=True))
        c.marks = now
        host = self.perf.host
        host.trace.emit(LbrOwner(host.env.now_ps, cpu.index, why, held_by, c.holder,
                                 c.last_guest, g_ps, g_rec, total - g_rec))
