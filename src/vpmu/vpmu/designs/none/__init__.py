"""``none``: a VM without a vPMU (KVM's ``enable_pmu=0`` or a PMU-less CPU model).

CPUID.0xA reads 0 (and PDCM is clear, so PERF_CAPABILITIES is absent; on AMD the PerfCtrCore
and PerfMonV2 bits are clear); every PMU MSR and RDPMC exits and takes #GP, except the P6/K7
counter MSRs, which KVM accepts without effect (reads 0, writes dropped: the machine's
``_inert`` MSRs). The virtual LAPIC's LVTPC still exists: it belongs to the APIC, not the PMU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from vpmu.arch.faults import Fault
from vpmu.arch.x86.caps import X86PmuCaps
from vpmu.vpmu.design import Gen, NoGuestContext, coerce_options
from vpmu.vpmu.designs.none.entry import ENTRY
from vpmu.vpmu.x86.access import X86VcpuHandle

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu


class NoPmuVcpu(NoGuestContext):
    """A vCPU with no PMU: every access faults, nothing is ever requested."""

    def __repr__(self) -> str:
        return "NoPmuVcpu()"

    def is_valid_msr(self, addr: int) -> bool:
        """No PMU MSR exists."""
        return False

    def intercepts_msr(self, addr: int) -> bool:
        """Every MSR KVM does not pass through exits."""
        return True

    def intercepts_rdpmc(self) -> bool:
        """RDPMC always exits."""
        return True

    def get_msr(self, cpu: Pcpu, addr: int) -> Gen:
        """kvm_get_msr_common's default: #GP."""
        yield from ()
        return Fault.GP

    def set_msr(self, cpu: Pcpu, addr: int, value: int) -> Gen:
        """kvm_set_msr_common's default: #GP."""
        yield from ()
        return Fault.GP

    def rdpmc(self, cpu: Pcpu, ecx: int) -> Gen:
        """kvm_pmu_rdpmc with no counters: #GP."""
        yield from ()
        return Fault.GP

    def handle_event(self, cpu: Pcpu) -> Gen:
        """Nothing to reprogram."""
        yield from ()
        return None

    def deliver_pmi(self, cpu: Pcpu) -> Gen:
        """Never asked: no counter can overflow."""
        yield from ()
        return False

    def instruction_retired(self) -> None:
        """No counter counts instructions."""

    def sched_in(self, cpu: Pcpu) -> int:
        """No perf events to clean up."""
        return 0


class NoPmu:
    """The ``none`` design."""

    name = "none"
    defaults: Mapping[str, object] = ENTRY.defaults

    def __init__(self, options: Mapping[str, str]) -> None:
        self.options = coerce_options(self.name, self.defaults, tuple(options.items()))

    def __repr__(self) -> str:
        return "NoPmu()"

    def guest_caps(self, host: X86PmuCaps) -> X86PmuCaps:
        """No architectural PMU is enumerated."""
        return host.replace(version=0, n_gp=0, n_fixed=0, ebx_length=0, fixed_mask=0,
                            pdcm=False, fw_write=False, lbr_format=0, pebs_format=0,
                            perf_cap_extra=0, perfctr_core=False, perfmon_v2=False)

    def create_vcpu(self, vcpu: X86VcpuHandle) -> NoPmuVcpu:
        """Nothing to initialise."""
        return NoPmuVcpu()
