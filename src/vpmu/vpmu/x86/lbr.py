"""KVM's guest LBR (vmx/pmu_intel.c ``lbr_desc`` and vmx.c's DEBUGCTL, Linux v6.6; the series
"KVM: x86/pmu: Guest Last Branch Recording Enabling", v14, 1 Feb 2021, merged in v5.12).

A guest whose PERF_CAPABILITIES reports the host's LBR format gets the host's LBR stack:

- **DEBUGCTL** lives in the VMCS (GUEST_IA32_DEBUGCTL): a guest WRMSR always exits and stores
  it, keeping only the bits KVM supports (LBR and FREEZE_LBRS_ON_PMI with LBR enabled; a BTF
  or LBR bit it does not support is dropped silently, any other unsupported bit is #GP:
  ``vmx_get_supported_debugctl``); a RDMSR reads the VMCS. The hardware loads it at every
  VM-entry and saves it at every VM-exit, which zeroes the hardware's DEBUGCTL
  (``hw.x86.lbr.Vmcs``): host code never records into the guest's stack.
- **The guest LBR event** (``intel_pmu_create_guest_lbr_event``): created at the first
  intercepted access to an LBR MSR or a DEBUGCTL write with LBR set. While it is active the
  LBR MSRs are passed through (``vmx_passthrough_lbr_msrs``, before each VM-entry: here the
  intercept follows the event's state, which only changes inside exits); an intercepted
  access with the event active reads or writes the hardware register
  (``intel_pmu_handle_lbr_msrs_access``).
- **Freeze on PMI** for a v2-v3 guest (``intel_pmu_legacy_freezing_lbrs_on_pmi``): delivering
  a virtual PMI clears DEBUGCTL.LBR in the VMCS if the guest set FREEZE_LBRS_ON_PMI.
- **Lazy release** (``intel_pmu_cleanup``): at the first KVM_REQ_PMU after the vCPU thread is
  scheduled back in, the event is released if the guest's DEBUGCTL.LBR is clear (only that
  bit is consulted, whatever the series' cover letter says of LBR MSR accesses).

**Where the stack is saved** (the save point, seed 002's question, docs/sources.md):

- ``thread-switch`` (upstream): the guest LBR event is a call-stack task event, so perf saves
  the stack when the vCPU thread is switched out (``intel_pmu_lbr_sched_task`` ->
  ``__intel_pmu_lbr_save``: TOS, then FROM/TO/INFO newest first until an empty FROM, then
  LBR_SELECT) and restores it when it is switched back in (every entry, TOS, LBR_SELECT),
  unless the stack is still its own: nothing else saved or restored an LBR context on that
  CPU since (``last_task_ctx`` / ``log_id``). Assumption: idle does not reach a C-state that
  resets the LBR (the model has no C-states).
- ``vm-transition`` (what Peter Zijlstra asked for in the thread, 9 Jul 2019): KVM saves the
  stack at every VM-exit and restores it at every VM-entry while the event exists.

Each save and restore is a ``LbrContext`` record, priced at the cost table's
``instruction_cycles["lbr_rdmsr"]`` / ``["lbr_wrmsr"]`` per MSR.

**Who holds the LBR** when host perf wants it too is ``vpmu.host.perf.lbr``'s arbitration under
the ``lbr_ownership`` rule: an event that loses goes to ERROR, its MSRs are intercepted again
(reads 0, writes dropped) and nothing is saved or restored for it until KVM releases it.

Not modelled: the creation's perf call record (its cost is charged as kernel work).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpmu.arch.faults import Fault
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import X86PmuCaps
from vpmu.host.perf.lbr import OWNERSHIP_RULES
from vpmu.hw.x86.cpu import x86_cpu
from vpmu.hw.x86.lbr import Vmcs, X86Lbr
from vpmu.trace import LbrContext
from vpmu.vpmu.lifecycle import Gen

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.vpmu.x86.access import X86VcpuHandle

SAVE_POINTS = ("thread-switch", "vm-transition")
"""Where the guest's stack is saved and restored (``emulated``'s ``lbr_save_point``)."""
PMU_SWITCH = "pmu-switch"
"""A mediated vPMU with LBR (not upstream): the guest owns the LBR while its PMU context is
loaded, with the MSRs passed through and no perf event; the put saves the stack and resets
the LBR (so no guest branch stays on the hardware for host code), the load restores it."""

DEBUGCTL_LBR = 1 << msrs.DEBUGCTL_LBR
DEBUGCTL_BTF = 1 << 1
DEBUGCTL_FREEZE_LBRS = 1 << msrs.DEBUGCTL_FREEZE_LBRS_ON_PMI


def lbr_msrs(caps: X86PmuCaps) -> frozenset[int]:
    """intel_pmu_is_valid_lbr_msr: LBR_SELECT, TOS and the FROM/TO/INFO entries, as the
    architecture declares them for ``caps`` (``arch.x86.msrs.lbr_msrs``)."""
    return frozenset(spec.addr for spec in msrs.lbr_msrs(caps))


class GuestLbrEvent:
    """The guest LBR perf event (pinned, exclude_host, call-stack branch sampling): the
    guest's claim on the LBR (``vpmu.host.perf.lbr``)."""

    def __init__(self, created_ps: int, ownership: str, label: str) -> None:
        self.created_ps = created_ps
        self.ownership = ownership
        self.label = label
        self.active = True
        """PERF_EVENT_STATE_ACTIVE (or INACTIVE); False: ERROR, the host holds the LBR."""

    def __repr__(self) -> str:
        return f"GuestLbrEvent(created_ps={self.created_ps}, active={self.active})"

    def error(self) -> None:
        """perf_event_set_state(ERROR): it could not get, or lost, the LBR."""
        self.active = False


class VcpuLbr:
    """One vCPU's LBR state as KVM keeps it (``lbr_desc`` and the VMCS's DEBUGCTL)."""

    def __init__(self, vcpu: X86VcpuHandle, caps: X86PmuCaps,
                 save_point: str = "thread-switch", ownership: str = OWNERSHIP_RULES[0]) -> None:
        if save_point not in (*SAVE_POINTS, PMU_SWITCH):
            raise ValueError(f"lbr_save_point must be one of {SAVE_POINTS}, not {save_point!r}")
        if ownership not in OWNERSHIP_RULES:
            raise ValueError(f"lbr_ownership must be one of {OWNERSHIP_RULES}, "
                             f"not {ownership!r}")
        self.ownership = ownership
        self.vcpu = vcpu
        self.caps = caps
        self.msrs = lbr_msrs(caps)
        self.per_entry = msrs.lbr_entry_msrs(caps.lbr_format)
        self.vmcs: Vmcs = vcpu.vmcs
        self.save_point = save_point
        self.event: GuestLbrEvent | None = None
        self.created = 0
        """Guest LBR events created so far."""
        self.released = 0
        self.saved: tuple[list[int], ...] | None = None
        """The stack as last saved (task_ctx_data): TOS, LBR_SELECT, then each entry's
        fields."""
        self.restore_pending = False
        """vm-transition: a save at VM-exit waits for the next VM-entry's restore."""
        self.restores_skipped = 0
        """thread-switch restores skipped because the stack was still this vCPU's."""
        if save_point == PMU_SWITCH:  # the whole PMU is the guest's while loaded
            self.event = GuestLbrEvent(0, ownership, vcpu.label)

    def __repr__(self) -> str:
        return f"VcpuLbr(event={self.event!r})"

    def intercepts(self, addr: int) -> bool:
        """The MSR bitmap for an LBR MSR: passed through while the event is active (a
        mediated vPMU's: always, the guest runs only with its context loaded)."""
        return self.event is None or not self.event.active

    # -- DEBUGCTL (vmx_get_msr / vmx_set_msr) -----------------------------------------------
    def get_debugctl(self) -> int:
        """The guest's DEBUGCTL, from the VMCS."""
        return self.vmcs.guest_debugctl

    def set_debugctl(self, cpu: Pcpu, value: int) -> Gen:
        """vmx_set_msr(MSR_IA32_DEBUGCTLMSR): unsupported BTF dropped, other unsupported
        bits #GP; the event created when LBR is set."""
        supported = DEBUGCTL_LBR | DEBUGCTL_FREEZE_LBRS
        invalid = value & ~supported
        value &= ~(invalid & DEBUGCTL_BTF)
        if invalid & ~DEBUGCTL_BTF:
            return Fault.GP
        self.vmcs.guest_debugctl = value
        if value & DEBUGCTL_LBR:
            yield from self._create(cpu)
        return None

    # -- the LBR MSRs (intel_pmu_handle_lbr_msrs_access) ------------------------------------
    def get_msr(self, cpu: Pcpu, addr: int) -> Gen:
        """An intercepted read: the hardware's register if the event is active, else 0."""
        yield from self._create(cpu)
        if self.event is None or not self.event.active:
            return 0
        return x86_cpu(cpu.hw).x86_pmu.rdmsr(addr)

    def set_msr(self, cpu: Pcpu, addr: int, value: int) -> Gen:
        """An intercepted write: to the hardware if the event is active, else dropped."""
        yield from self._create(cpu)
        if self.event is None or not self.event.active:
            return None
        fault = x86_cpu(cpu.hw).x86_pmu.wrmsr(addr, value)
        return fault

    def _create(self, cpu: Pcpu) -> Gen:
        """intel_pmu_create_guest_lbr_event, if there is none; its perf_event_create cost.
        perf schedules it at once on this CPU (the vCPU thread's), where host LBR users may
        hold the LBR (``vpmu.host.perf.lbr``); if it gets the LBR, the first LBR user of a
        CPU starts from a clean stack (intel_pmu_lbr_add resets it: intel_pmu_lbr_reset)."""
        if self.event is not None:
            return
        costs, vcpu = cpu.host.costs, self.vcpu
        self.event = GuestLbrEvent(cpu.host.env.now_ps, self.ownership, vcpu.label)
        self.created += 1
        self.saved = None
        self.vcpu.perf.lbr.guest_in(cpu, self.event, cpu.current)
        lbr = x86_cpu(cpu.hw).x86_pmu.lbr
        if lbr is not None and self.event.active:
            lbr.recorder.clear()
            lbr.owner = self
        yield from cpu.kernel_work(costs.perf_ctx_lock_cycles
                                   + costs.perf_call_work_cycles["create"],
                                   "perf_event_create (guest LBR)")

    # -- save and restore (the save point) ----------------------------------------------------
    def save(self, cpu: Pcpu, why: str) -> int:
        """__intel_pmu_lbr_save: read the stack off ``cpu``'s LBR; the cycles it took (an
        event in ERROR is not scheduled, so nothing is saved for it)."""
        hw = x86_cpu(cpu.hw).x86_pmu.lbr
        if self.event is None or not self.event.active or hw is None:
            return 0
        reads = self._read_stack(hw)
        hw.owner = self
        cost = reads * cpu.host.costs.instruction_cycles["lbr_rdmsr"]
        return self._emit(cpu, "save", why, reads, cost)

    def restore(self, cpu: Pcpu, why: str) -> int:
        """__intel_pmu_lbr_restore: write the saved stack back (every entry, TOS,
        LBR_SELECT), unless at a thread switch the LBR still holds it."""
        hw = x86_cpu(cpu.hw).x86_pmu.lbr
        if self.event is None or not self.event.active or hw is None or self.saved is None:
            return 0
        if why == "thread-switch" and hw.owner is self:
            self.restores_skipped += 1
            return 0
        self._write_back(hw)
        writes = 2 + self.per_entry * hw.recorder.depth
        cost = writes * cpu.host.costs.instruction_cycles["lbr_wrmsr"]
        return self._emit(cpu, "restore", why, writes, cost)

    def _write_back(self, hw: X86Lbr) -> None:
        assert self.saved is not None
        rec = hw.recorder
        rec.sync()
        (tos, select), src, dst, mispredicted, cycles, flags, guest = self.saved
        rec.src[:], rec.dst[:], rec.cycles[:], rec.flags[:] = src, dst, cycles, flags
        rec.mispredicted[:] = [bool(m) for m in mispredicted]
        rec.guest[:] = [bool(g) for g in guest]
        rec.tos = tos
        hw.pmu.regs["MSR_LBR_SELECT"] = select
        hw.update()
        hw.owner = self

    def put(self, cpu: Pcpu, why: str) -> int:
        """A mediated put (pmu-switch): save the stack, then reset the LBR with perf's
        intel_pmu_lbr_reset (FROM/TO/INFO of every entry and LBR_SELECT written with 0), one
        record for both."""
        hw = x86_cpu(cpu.hw).x86_pmu.lbr
        if hw is None:
            return 0
        reads = self._read_stack(hw)
        host_lbr = self.vcpu.perf.drivers[cpu.index].lbr
        writes = host_lbr.reset() if host_lbr is not None else 0
        if self.event is not None:
            self.vcpu.perf.lbr.guest_out(cpu, self.event)
        ins = cpu.host.costs.instruction_cycles
        return self._emit(cpu, "save", why, reads + writes,
                          reads * ins["lbr_rdmsr"] + writes * ins["lbr_wrmsr"])

    def load(self, cpu: Pcpu, why: str) -> int:
        """A mediated load (pmu-switch): the guest takes the LBR (perf has taken every host
        event off the CPU) and gets back what the last put saved."""
        if self.event is not None:
            self.vcpu.perf.lbr.guest_in(cpu, self.event, None)
        return self.restore(cpu, why)

    def _read_stack(self, hw: X86Lbr) -> int:
        """__intel_pmu_lbr_save's reads: TOS, the entries newest first until an empty FROM,
        LBR_SELECT; keeps what they read (``saved``) and returns how many MSRs."""
        rec = hw.recorder
        live = rec.live()
        self.saved = ([rec.tos, hw.pmu.regs.get("MSR_LBR_SELECT", 0)], list(rec.src),
                      list(rec.dst), [int(m) for m in rec.mispredicted], list(rec.cycles),
                      list(rec.flags), [int(g) for g in rec.guest])
        return 2 + self.per_entry * live

    def _emit(self, cpu: Pcpu, op: str, why: str, msrs_: int, cycles: int) -> int:
        host, vcpu = cpu.host, self.vcpu
        host.trace.emit(LbrContext(host.env.now_ps, cpu.index, op, vcpu.vm_name, vcpu.index,
                                   why, msrs_, cycles, host.cycles_ps(cycles)))
        return cycles

    def at_vm_exit(self, cpu: Pcpu) -> int:
        """vm-transition: save at every VM-exit while the event exists."""
        if self.save_point != "vm-transition" or self.event is None:
            return 0
        self.restore_pending = True
        return self.save(cpu, "vm-transition")

    def at_vm_entry(self, cpu: Pcpu) -> int:
        """vm-transition: restore the stack saved at the last VM-exit."""
        self.restore_pending = False
        return self.restore(cpu, "vm-transition")

    def sched_out(self, cpu: Pcpu) -> int:
        """The event leaves the CPU with its thread; at thread-switch perf first saves the
        call-stack task event's LBR context."""
        if self.event is None:
            return 0
        cycles = self.save(cpu, "thread-switch") if self.save_point == "thread-switch" else 0
        self.vcpu.perf.lbr.guest_out(cpu, self.event)
        return cycles

    def sched_in(self, cpu: Pcpu) -> int:
        """The event comes back on the CPU with its thread (and may find a host LBR user
        there); at thread-switch perf restores it (or finds it still there)."""
        if self.event is None:
            return 0
        self.vcpu.perf.lbr.guest_in(cpu, self.event, cpu.current)
        return self.restore(cpu, "thread-switch") if self.save_point == "thread-switch" else 0

    # -- KVM's hooks --------------------------------------------------------------------------
    def deliver_pmi(self) -> None:
        """intel_pmu_legacy_freezing_lbrs_on_pmi (PMU v2-v3 guests)."""
        if 1 < self.caps.version < 4 and self.vmcs.guest_debugctl & DEBUGCTL_FREEZE_LBRS:
            self.vmcs.guest_debugctl &= ~DEBUGCTL_LBR

    def cleanup(self, cpu: Pcpu) -> None:
        """intel_pmu_cleanup: release the event if the guest's DEBUGCTL.LBR is clear (a
        mediated vPMU has no event to release)."""
        if self.save_point == PMU_SWITCH:
            return
        if self.event is not None and not self.vmcs.guest_debugctl & DEBUGCTL_LBR:
            self.vcpu.perf.lbr.guest_out(cpu, self.event)
            if cpu.current is not None:
                self.vcpu.perf.lbr.forget(cpu.current)
            self.event = None
            self.saved = None
            self.restore_pending = False
            self.released += 1
