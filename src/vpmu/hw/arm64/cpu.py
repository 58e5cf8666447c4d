"""A logical Arm CPU: its PMU, its exception level, and the MRS / MSR instructions that reach
the PMU's system registers by name (the register port's ``Mrs(name)`` / ``Msr(name, value)``).

The CPU's ``cpl`` is the model's ring: RING_KERNEL is EL1 (EL2 for a VHE kernel: the PMU's
``kernel_el``), RING_USER is EL0. A name that is not a PMU register, or an access the PMU
refuses, is UNDEFINED (``Fault.UNDEF``): the instruction takes its latency and does not retire
(as an x86 instruction that faults).

Besides the PMU's registers, MRS reads the two registers a PMU test probes with (kvm-unit-tests
arm/pmu.c ``pmu_probe`` and ``current_level``): ID_AA64DFR0_EL1 (PMUVer, bits 11:8, from the
preset; DebugVer, bits 3:0, 0x6 = Armv8 debug; every other field 0, not modelled) and CurrentEL
(the EL at bits 3:2). Both are read-only and UNDEFINED at EL0 (Arm ARM D23.2, "ID_AA64DFR0_EL1"
and C5.2 "CurrentEL": EL0 access is UNDEFINED; Linux's EL0 ID-register emulation is the
kernel's, not the CPU's).

MRS also reads the generic timer's CNTFRQ_EL0 (the preset's ``tsc_mhz`` in Hz) and CNTVCT_EL0
(the time in those ticks since the run began, as x86's RDTSC): the guest kernel's clock
(sched_clock, perf_clock). Both read-only, and readable at EL0 (assumption: Linux sets
CNTKCTL_EL1.EL0VCTEN for the vDSO; CNTKCTL_EL1 is not modelled).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from vpmu.arch.arm64.sysregs import counter_name
from vpmu.arch.faults import Fault
from vpmu.arch.presets import CpuPreset
from vpmu.hw.arm64.pmu import ArmPmu
from vpmu.hw.core import CpuCore, DeliverFn
from vpmu.hw.counting import RING_KERNEL
from vpmu.sim import Environment, Event, ps_to_cycles

INSTRUCTIONS = ("mrs", "msr")
"""The instructions whose latency the cost table gives."""
PMU_PPI = 23
ID_AA64DFR0_DEBUGVER_V8 = 0x6
"""ID_AA64DFR0_EL1.DebugVer of an Armv8.0 debug architecture (the lowest AArch64 value)."""
PROBE_REGISTERS = frozenset({"ID_AA64DFR0_EL1", "CurrentEL"})
"""The non-PMU registers MRS reads (see the module docstring)."""
TIMER_REGISTERS = frozenset({"CNTFRQ_EL0", "CNTVCT_EL0"})
"""The generic timer's registers MRS reads (see the module docstring)."""


class ArmCpu(CpuCore):
    """One Arm core with PMUv3."""

    def __init__(self, preset: CpuPreset, env: Environment, deliver: DeliverFn,
                 instruction_cycles: Mapping[str, int], *, kernel_el: int = 1) -> None:
        self.arm_pmu = ArmPmu(preset, env, lambda: deliver(PMU_PPI, False), kernel_el=kernel_el)
        """``pmu`` as the Arm PMU it is (a second name, as ``X86Cpu.x86_pmu``)."""
        super().__init__(preset, env, self.arm_pmu, INSTRUCTIONS, instruction_cycles)

    def __repr__(self) -> str:
        return f"ArmCpu(preset={self.preset.name!r})"

    @property
    def el(self) -> int:
        """The exception level executing: 0 at the user ring, else the kernel's (a guest's
        kernel is at EL1 whatever the host's)."""
        if self.cpl != RING_KERNEL:
            return 0
        return 1 if self.arm_pmu.guest else self.arm_pmu.kernel_el

    def mrs(self, name: str) -> Generator[Event, Any, int | Fault]:
        """MRS: the register's value as the instruction executes, or UNDEFINED."""
        pmu = self.arm_pmu
        value: int | Fault
        if name in PROBE_REGISTERS:
            value = self._probe_register(name)
        elif name in TIMER_REGISTERS:
            value = self._timer_register(name)
        else:
            el = self.el
            spec = pmu.resolve(pmu.by_name.get(name), el, write=False)
            value = spec if isinstance(spec, Fault) else pmu.read_at(spec, el)
        yield from self._retire("mrs", faulted=isinstance(value, Fault))
        return value

    def msr(self, name: str, value: int) -> Generator[Event, Any, Fault | None]:
        """MSR: the write lands after the instruction retires (as x86's WRMSR), or
        UNDEFINED."""
        pmu, el = self.arm_pmu, self.el
        spec = pmu.resolve(pmu.by_name.get(name), el, write=True)
        if not 0 <= value < 1 << 64:
            spec = Fault.UNDEF
        yield from self._retire("msr", faulted=isinstance(spec, Fault))
        if isinstance(spec, Fault):
            return spec
        pmu.write(spec, value, el=el)
        return None

    def _probe_register(self, name: str) -> int | Fault:
        """ID_AA64DFR0_EL1 or CurrentEL at the current EL (UNDEFINED at EL0)."""
        if self.el == 0:
            return Fault.UNDEF
        if name == "CurrentEL":
            return self.el << 2
        return self.arm_pmu.caps.pmuver << 8 | ID_AA64DFR0_DEBUGVER_V8

    def _timer_register(self, name: str) -> int:
        """CNTFRQ_EL0 (Hz) or CNTVCT_EL0 (ticks at that frequency since time 0)."""
        mhz = self.preset.tsc_mhz
        if name == "CNTFRQ_EL0":
            return mhz * 1_000_000
        return ps_to_cycles(self.env.now_ps, mhz)

    def end_of_interrupt(self) -> None:
        """The PMU interrupt's handler returned: the GIC signals it again if still asserted."""
        self.arm_pmu.irq.eoi()

    def user_read(self, index: int) -> Generator[Event, Any, int | Fault]:
        """An EL0 read of counter ``index`` (MRS PMEVCNTR<n>_EL0, or PMCCNTR_EL0 at 31)."""
        return self.mrs(counter_name(index))

    def user_read_origin(self, index: int) -> str:
        """The origin tag of the counter ``user_read(index)`` reads."""
        c = self.arm_pmu.counters.get(index)
        return c.origin if c is not None else ""
