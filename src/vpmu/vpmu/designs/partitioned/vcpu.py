"""One vCPU's partitioned PMU: the guest's registers in KVM while put (the vregs of
``KvmPmu``), in the hardware's counters [0, HPMN) and cycle counter while loaded
(``vpmu.vpmu.arm64.partition``).

The attributes, the register declarations and the trapped-access rules are the emulated
PMU's (``KvmArmPmu``); what differs is where a value lives and who counts: the hardware, not
perf events. A trapped access first makes the PMU GUEST_OWNED (and loads the context:
assumption, the v8 cover letter's "ensuring guest state is loaded on transition", whose code
could not be found); it then reaches the vregs for the registers FGT keeps trapping (the
overflow flags, the types, PMCEID) and the hardware, at the guest's EL, for the others.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from vpmu.arch.arm64.caps import CYCLE_IDX
from vpmu.arch.arm64.sysregs import type_name
from vpmu.arch.faults import Fault
from vpmu.arch.regs import RegisterSpec, Role, apply_write, read_value
from vpmu.host.perf.arm64.driver import ArmPerfDriver
from vpmu.hw.arm64.pmu import ArmPmu
from vpmu.trace.records import PmuPartition
from vpmu.vpmu.arm64 import partition as part
from vpmu.vpmu.arm64.access import KVM_REQ_IRQ_PENDING, ArmVcpuHandle
from vpmu.vpmu.arm64.handlers import KvmArmPmu
from vpmu.vpmu.arm64.host_pmu import KvmArch
from vpmu.vpmu.arm64.pmu import MASK64
from vpmu.vpmu.arm64.sysregs import PMCR_E
from vpmu.vpmu.arm64.vmm import VmmPmuConfig
from vpmu.vpmu.lifecycle import Gen

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu


class PartitionedVcpu(KvmArmPmu):
    """A vCPU's PMU under the partitioned series."""

    def __init__(self, vcpu: ArmVcpuHandle, kvm: KvmArch, config: VmmPmuConfig) -> None:
        super().__init__(vcpu, kvm, config)
        self.access = part.VCPU_PMU_ACCESS_FREE
        self.loaded_on: Pcpu | None = None
        self.traffic: dict[str, Counter[str]] = {"load": Counter(), "put": Counter()}
        """Register traffic of every load and put, by access and register."""

    def __repr__(self) -> str:
        return f"PartitionedVcpu(vcpu={self.vcpu.index}, access={self.access})"

    # -- where the guest's state is ------------------------------------------------------
    def _hw(self) -> ArmPmu | None:
        """The hardware PMU holding the guest's registers, or None while put."""
        return None if self.loaded_on is None else part.arm_pmu_of(self.loaded_on)

    @property
    def guest_mask(self) -> int:
        """The counters a load reserves: the guest's maximum and the cycle counter."""
        return part.guest_counter_mask(self.kvm.max_guest_counters)

    def _state(self) -> part.GuestPmuState:
        return part.GuestPmuState(self.counter, self.evtype, self.regs)

    def traps(self, name: str) -> bool:
        """Whether a guest access to ``name`` exits: every one until the PMU is the guest's
        and loaded, and without FEAT_FGT; then only those FGT keeps trapping."""
        hw = self._hw()
        if hw is None or not part.has_fgt(hw.caps):
            return True
        return part.fgt_traps(name)

    # -- the context switch --------------------------------------------------------------
    def sched_in(self, cpu: Pcpu) -> int:
        """kvm_arch_vcpu_load -> kvm_pmu_load, once the PMU is the guest's."""
        if self.access != part.VCPU_PMU_ACCESS_GUEST_OWNED:
            return 0
        return self._load(cpu, "vcpu-load")

    def sched_out(self, cpu: Pcpu) -> int:
        """kvm_arch_vcpu_put -> kvm_pmu_put."""
        return self._put(cpu) if self.loaded_on is cpu else 0

    def _load(self, cpu: Pcpu, why: str) -> int:
        t0, perf = cpu.host.env.now_ps, self.vcpu.perf
        squeeze = part.set_guest_counters(perf, cpu, self.guest_mask)
        tally = part.RegTally(cpu, self.traffic["load"])
        events = {idx: self.event_of(idx) for idx in self.evtype}
        with tally.pmu.batch():
            part.load(self.kvm, self._state(), events, self.guest_mask, self.caps.n_counters,
                      tally)
        self.loaded_on = cpu
        self._driver(cpu).guest_irq = self.handle_guest_irq
        cycles = self.vcpu.kvm_costs.mediated_switch_cycles + tally.cycles + squeeze.cycles
        cpu.host.trace.emit(PmuPartition(
            t0, cpu.index, "guest", self.vcpu.vm_name, self.vcpu.index, self.guest_mask,
            cpu.host.cycles_ps(cycles), squeeze.moved, squeeze.lost, squeeze.pinned, why))
        return cycles

    def _put(self, cpu: Pcpu) -> int:
        t0, perf, drv = cpu.host.env.now_ps, self.vcpu.perf, self._driver(cpu)
        tally = part.RegTally(cpu, self.traffic["put"])
        with tally.pmu.batch():
            part.put(self._state(), self.guest_mask, drv.caps.n_counters, tally)
        self.loaded_on = None
        drv.guest_irq = None
        squeeze = part.set_guest_counters(perf, cpu, 0)
        drv.load_global()  # the host's PMCR_EL0.E back (assumption, see the driver)
        cycles = self.vcpu.kvm_costs.mediated_switch_cycles + tally.cycles + squeeze.cycles
        cpu.host.trace.emit(PmuPartition(t0, cpu.index, "host", self.vcpu.vm_name,
                                         self.vcpu.index, self.guest_mask,
                                         cpu.host.cycles_ps(cycles), why="vcpu-put"))
        return cycles

    def _driver(self, cpu: Pcpu) -> ArmPerfDriver:
        drv = self.vcpu.perf.drivers[cpu.index]
        assert isinstance(drv, ArmPerfDriver), "a partitioned PMU is an Arm PMU"
        return drv

    # -- trapped accesses ----------------------------------------------------------------
    def access_sys_reg(self, cpu: Pcpu, name: str, value: int | None, el: int) -> Gen:
        """``pmu_reg_read`` / ``pmu_reg_write``: the PMU becomes the guest's (its context
        loaded here), then the vregs (overflow flags, types, PMCEID) or the hardware."""
        if self.access == part.VCPU_PMU_ACCESS_FREE:
            self.access = part.VCPU_PMU_ACCESS_GUEST_OWNED
            yield from cpu.kernel_work(self._load(cpu, "first-access"), "kvm pmu load")
        hw = self._hw()
        assert hw is not None, "a trapped access runs with the context loaded"
        if part.fgt_traps(name):
            return self._vreg_access(hw, name, value, el)
        spec = hw.resolve(hw.by_name.get(name), el, write=value is not None)
        if isinstance(spec, Fault):
            return spec
        if value is None:
            return hw.read_at(spec, el)
        hw.write(spec, value, el=el)
        self.update_state()
        return None

    def _vreg_access(self, hw: ArmPmu, name: str, value: int | None,
                     el: int) -> int | Fault | None:
        """A register FGT traps, kept by KVM: PMSELR_EL0 (for PMXEVTYPER_EL0) is the
        hardware's; a type written is also written, filtered, to the hardware."""
        for reg in ("PMSELR_EL0", "PMUSERENR_EL0"):  # the hardware's while loaded
            self.regs[reg] = hw.read(hw.by_name[reg])
        self._fold_overflows(hw)
        spec = self._resolve(self.specs.get(name), el, write=value is not None)
        if isinstance(spec, Fault):
            return spec
        if value is None:
            return read_value(spec, self._stored(spec))
        result = apply_write(spec, self._stored(spec), value & MASK64)
        if spec.role is Role.SELECTOR:
            assert result.store is not None
            self.evtype[spec.index] = result.store
            self._write_type(hw, spec)
        elif spec.target:  # PMOVSSET / PMOVSCLR
            self.regs[spec.target] = (self.regs[spec.target] & ~result.clear) | result.set
            self.update_state()
        return None

    def _write_type(self, hw: ArmPmu, spec: RegisterSpec) -> None:
        """The new type reaches the hardware now, through the filter (assumption: v8 stores
        the vreg and applies the filter at load; a type that waited for the next load would
        leave the guest's counter counting its previous event until then)."""
        idx = spec.index
        value = part.filtered_type(self.kvm, idx, self.evtype[idx], self.event_of(idx))
        hw.write(hw.by_name[type_name(idx)], value)

    # -- overflow ------------------------------------------------------------------------
    def _fold_overflows(self, hw: ArmPmu) -> None:
        """The hardware's guest overflow flags into the virtual PMOVSSET, cleared there, as
        ``kvm_pmu_put`` does (assumption: a trapped PMOVS access does it too; otherwise a
        guest polling PMOVSSET_EL0 with the interrupt off would not see an overflow until
        its vCPU is next put, which kvm-unit-tests' pmu-mem-access and pmu-sw-incr would
        fail)."""
        ovs = hw.read(hw.by_name["PMOVSSET_EL0"]) & self.guest_mask
        if ovs:
            self.regs["PMOVSSET_EL0"] |= ovs
            hw.write(hw.by_name["PMOVSCLR_EL0"], ovs)

    def handle_guest_irq(self, govf: int) -> None:
        """``kvm_pmu_handle_guest_irq`` from the host's PMU interrupt: the guest's flags
        cleared in the hardware and set in its virtual PMOVSSET; a kick if its interrupt
        should rise."""
        hw = self._hw()
        if hw is None:
            return
        hw.write(hw.by_name["PMOVSCLR_EL0"], govf)
        self.regs["PMOVSSET_EL0"] |= govf
        if self.overflow_status():
            self.vcpu.request(KVM_REQ_IRQ_PENDING)

    def overflow_status(self) -> int:
        """``kvm_pmu_part_overflow_status``: the virtual PMOVSSET under the hardware's
        PMINTENSET and PMCR_EL0.E while loaded (the vregs while put)."""
        hw = self._hw()
        if hw is None:
            return super().overflow_status()
        if not hw.regs["PMCR_EL0"] & PMCR_E:
            return 0
        return self.regs["PMOVSSET_EL0"] & hw.regs["PMINTENSET_EL1"] & self.valid_mask()

    # -- what the emulated PMU does that this one does not -------------------------------
    def handle_event(self, cpu: Pcpu) -> Gen:
        """KVM_REQ_RELOAD_PMU: nothing to reprogram (no perf events)."""
        yield from ()

    def peek_cycle_counter(self) -> int:
        """The guest's PMCCNTR_EL0: the hardware's while loaded, else the saved value."""
        hw = self._hw()
        if hw is None:
            return self.counter[CYCLE_IDX] & MASK64
        hw.sync()
        return int(hw.counters[CYCLE_IDX].value)
