"""The guest's trapped PMU register accesses (arch/arm64/kvm/sys_regs.c@v6.16 access_pm*
and ``kvm_pmu_handle_pmcr``), and the vCPU lifecycle of the arm64 vPMU.

Every access first meets the rules the hardware shares (``access_fault``: a read of
PMSWINC_EL0, the EL0 gates of PMUSERENR_EL0, a counter index at or above N other than 31,
directly or through PMSELR_EL0.SEL), then the register's declaration (masks, RAZ/WI of
unimplemented counters, ACTION bits), then what KVM does about it: recreate an event,
reprogram enables, count a software increment, or request KVM_REQ_RELOAD_PMU (here the
neutral KVM_REQ_PMU, whose handler is ``kvm_vcpu_reload_pmu``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.arm64.caps import CYCLE_IDX
from vpmu.arch.arm64.sysregs import access_fault
from vpmu.arch.faults import Fault
from vpmu.arch.regs import RegisterSpec, Role, apply_write, read_value
from vpmu.vpmu.arm64.access import ArmVcpuHandle
from vpmu.vpmu.arm64.attrs import Errno, VcpuPmuAttrs, guest_caps, pmu_v3_enable
from vpmu.vpmu.arm64.host_pmu import KvmArch, pmu_for_cpu
from vpmu.vpmu.arm64.pmu import MASK64, KvmPmu
from vpmu.vpmu.arm64.sysregs import PMCR_C, PMCR_E, PMCR_P, fixup_pmcr, kvm_sysregs
from vpmu.vpmu.arm64.vmm import AttrRefused, VmmPmuConfig, configure_vcpu
from vpmu.vpmu.lifecycle import KVM_REQ_PMU, Gen, NoGuestContext

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.perf.event import PmuIdentity

PMCR_N_SHIFT = 11


class KvmArmPmu(KvmPmu, NoGuestContext):
    """One vCPU's arm64 vPMU as pmu-emul.c: the trapped register file and the lifecycle."""

    def __init__(self, vcpu: ArmVcpuHandle, kvm: KvmArch,
                 config: VmmPmuConfig | None = None) -> None:
        super().__init__(vcpu, kvm)
        self.specs: dict[str, RegisterSpec] = kvm_sysregs(self.caps)
        self.config = config or VmmPmuConfig()
        self.attrs = VcpuPmuAttrs()
        self.created = False
        """KVM_ARM_VCPU_INIT has run (the VM's host PMU is known)."""
        self.setup_error: AttrRefused | None = None
        """The attribute the VMM's setup failed on, if any (the vCPU never runs)."""
        self.user_writes: list[tuple[str, int]] = []
        """KVM_SET_ONE_REG writes the VMM makes after the vCPU's init."""

    def __repr__(self) -> str:
        return f"KvmArmPmu(vcpu={self.vcpu.index})"

    # -- KVM_ARM_VCPU_INIT ---------------------------------------------------------------
    def vcpu_init(self, cpu: int) -> None:
        """KVM_ARM_VCPU_INIT on ``cpu`` (the VM's default PMU, at the first vCPU's init),
        then the VMM's attributes (``vmm.configure_vcpu``); the guest PMU is the VM's."""
        if self.created:
            return
        self.created = True
        self.setup_error = configure_vcpu(self.kvm, self.attrs, self.vcpu.perf, self.config,
                                          cpu)
        caps = guest_caps(self.kvm)
        if caps is not None and caps != self.caps:
            self.caps, self.specs = caps, kvm_sysregs(caps)
            self.reset_regs()
        for name, value in self.user_writes:
            self.set_one_reg(name, value)

    def set_one_reg(self, name: str, value: int) -> None:
        """KVM_SET_ONE_REG of a PMU bitmap (sys_regs.c@v6.16 set_pmreg): the value masked
        to the implemented counters (``kvm_pmu_accessible_counter_mask``), whichever of
        the SET / CLR views is named. Before the vCPU's init it waits for it."""
        if not self.created:
            self.user_writes.append((name, value))
            return
        target = self.specs[name].target or self.specs[name].storage
        self.regs[target] = value & self.valid_mask()

    def first_run(self) -> Errno | None:
        """``kvm_arm_pmu_v3_enable`` at the vCPU's first KVM_RUN."""
        return pmu_v3_enable(self.kvm, self.attrs)

    def vcpu_load(self, cpu: int) -> bool:
        """kvm_arch_vcpu_load: True if ``cpu`` is outside the VM's supported CPUs
        (ON_UNSUPPORTED_CPU). With fixed-counters-only, a new CPU on another PMU asks for
        KVM_REQ_RELOAD_PMU (``kvm_vcpu_load_pmu``), which recreates the cycle counter's
        event there."""
        if self.kvm.fixed_counters_only:
            pmu = pmu_for_cpu(self.vcpu.perf, cpu)
            if self.loaded_pmu is not None and pmu != self.loaded_pmu:
                self.vcpu.request(KVM_REQ_PMU)
            self.loaded_pmu = pmu
        cpus = self.kvm.supported_cpus
        return cpus is not None and cpu not in cpus

    def counting_pmu(self, cpu: int) -> PmuIdentity | None:
        """The host PMU whose events count this vCPU's counters while it runs on ``cpu``:
        the VM's, if it covers ``cpu`` (elsewhere perf never schedules them: they freeze);
        with fixed-counters-only, ``cpu``'s own (the cycle counter's event follows the vCPU
        at its next entry)."""
        if self.kvm.fixed_counters_only:
            return pmu_for_cpu(self.vcpu.perf, cpu)
        pmu = self.kvm.arm_pmu
        return pmu if pmu is not None and cpu in pmu.cpus else None

    def counting_pmu_name(self, cpu: int) -> tuple[str, bool]:
        """``counting_pmu``'s name and whether there is one; when none covers ``cpu``, the
        VM's PMU's name ("" before one is chosen)."""
        pmu = self.counting_pmu(cpu)
        if pmu is not None:
            return str(pmu.name), True
        vm_pmu = self.kvm.arm_pmu
        return ("" if vm_pmu is None else str(vm_pmu.name)), False

    def peek_cycle_counter(self) -> int:
        """The cycle counter's shadow plus its perf event's count, read without KVM's cost;
        -1 while it has no event."""
        event = self.pmc[CYCLE_IDX].perf_event
        if event is None:
            return -1
        count, _, _ = self.vcpu.perf.read(event)
        return (self.counter[CYCLE_IDX] + count) & MASK64

    # -- the trapped access --------------------------------------------------------------
    def traps(self, name: str) -> bool:
        """Every PMU register access traps (MDCR_EL2.TPM / TPMCR)."""
        return True

    def access_sys_reg(self, cpu: Pcpu, name: str, value: int | None, el: int) -> Gen:
        """One trapped MRS (``value`` None) or MSR: UNDEF, the value read, or None."""
        spec = self._resolve(self.specs.get(name), el, write=value is not None)
        if isinstance(spec, Fault):
            return spec
        if value is None:
            return (yield from self._read(cpu, spec))
        yield from self._write(cpu, spec, value & (1 << 64) - 1)
        return None

    def _resolve(self, spec: RegisterSpec | None, el: int, *,
                 write: bool) -> RegisterSpec | Fault:
        """The register reached, through PMSELR_EL0.SEL for PMXEVTYPER / PMXEVCNTR (31:
        PMCCFILTR / PMCCNTR, as access_pmu_evtyper and access_pmu_evcntr do)."""
        if spec is None:
            return Fault.UNDEF  # a counter's register above N: pmu_counter_idx_valid
        sel = self.regs["PMSELR_EL0"] & 0x1F
        fault = access_fault(spec, self.caps, el=el, userenr=self.regs["PMUSERENR_EL0"],
                             sel=sel, write=write)
        if fault is not None:
            return fault
        if spec.role is not Role.INDIRECT:
            return spec
        if sel == CYCLE_IDX:
            return self.specs["PMCCNTR_EL0" if spec.storage == "PMEVCNTR" else "PMCCFILTR_EL0"]
        return self.specs[f"{spec.storage}{sel}_EL0"]

    def _stored(self, spec: RegisterSpec) -> int:
        if spec.role is Role.SELECTOR:
            return self.evtype[spec.index]
        if spec.name == "PMCR_EL0":  # kvm_vcpu_read_pmcr: N is the VM's
            return self.regs["PMCR_EL0"] | self.caps.n_counters << PMCR_N_SHIFT
        if spec.name.startswith("PMCEID"):
            return spec.reset
        return self.regs.get(spec.target or spec.storage, 0)

    def _read(self, cpu: Pcpu, spec: RegisterSpec) -> Gen:
        if spec.role is Role.COUNTER:
            return (yield from self.get_value(cpu, spec.index))
        return read_value(spec, self._stored(spec))

    def _write(self, cpu: Pcpu, spec: RegisterSpec, value: int) -> Gen:
        result = apply_write(spec, self._stored(spec), value)
        if spec.role is Role.COUNTER:  # access_pmu_evcntr / access_pmu_cycles
            stored = result.store if result.store is not None else value
            yield from self.set_value(cpu, spec.index, stored)
        elif spec.role is Role.SELECTOR:  # kvm_pmu_set_counter_event_type
            assert result.store is not None
            self.evtype[spec.index] = result.store
            yield from self.create_perf_event(cpu, spec.index)
        elif spec.name == "PMCR_EL0":
            yield from self._handle_pmcr(cpu, result.store or 0, result.action)
        elif spec.name == "PMSWINC_EL0":
            self.counter_increment(result.action, arm_ev.SW_INCR)
        elif spec.target:
            yield from self._write_bitmap(cpu, spec.target, result.set, result.clear)
        elif result.store is not None:
            self.regs[spec.storage] = result.store

    def _write_bitmap(self, cpu: Pcpu, target: str, set_: int, clear: int) -> Gen:
        """A SET/CLR pair, masked to the implemented counters by its declaration; a
        PMCNTEN write reprograms the counters it names (access_pmcnten)."""
        self.regs[target] = (self.regs[target] & ~clear) | set_
        if target == "PMCNTENSET_EL0":
            yield from self.reprogram_counter_mask(cpu, set_ | clear)

    def _handle_pmcr(self, cpu: Pcpu, value: int, action: int) -> Gen:
        """``kvm_pmu_handle_pmcr``: LC/LP fixed up, an E toggle requests
        KVM_REQ_RELOAD_PMU, C zeroes the cycle counter and P every event counter (all 64
        bits), each recreating its event; P and C are not stored."""
        old = self.regs["PMCR_EL0"]
        new = fixup_pmcr(self.caps, value)
        if (old ^ new) & PMCR_E:
            self.vcpu.request(KVM_REQ_PMU)
        self.regs["PMCR_EL0"] = new
        if action & PMCR_C:
            yield from self.set_value(cpu, CYCLE_IDX, 0)
        if action & PMCR_P:
            for idx in self.valid_idx():
                if idx != CYCLE_IDX:
                    yield from self.set_value(cpu, idx, 0)

    # -- the lifecycle KVM's common code calls -------------------------------------------
    def handle_event(self, cpu: Pcpu) -> Gen:
        """KVM_REQ_RELOAD_PMU: ``kvm_vcpu_reload_pmu``; with fixed-counters-only the cycle
        counter's event moves to the current CPU's PMU first, its count folded into the
        shadow (``kvm_pmc_enable_perf_event``), so the guest's value is continuous."""
        ev = self.pmc[CYCLE_IDX].perf_event
        if ev is not None and ev.pmu is not None and ev.pmu != self.event_pmu():
            yield from self.create_perf_event(cpu, CYCLE_IDX)
        yield from self.reload(cpu)

    def deliver_pmi(self, cpu: Pcpu) -> Gen:
        """Not used on arm64: the interrupt is a vGIC level (``update_state``)."""
        yield from ()
        return False

    def instruction_retired(self) -> None:
        """arm64 KVM counts no emulated instruction on the guest's counters."""

    def sched_in(self, cpu: Pcpu) -> int:
        """kvm_arch_vcpu_load: nothing of the emulated PMU's (its events follow the
        thread)."""
        return 0

    def at_exit(self, cpu: Pcpu, point: str) -> Gen:
        """``kvm_pmu_sync_hwstate`` right after the exit."""
        if point == "vm-exit":
            self.update_state()
        yield from ()

    def flush_hwstate(self) -> None:
        """``kvm_pmu_flush_hwstate`` before entry."""
        self.update_state()
