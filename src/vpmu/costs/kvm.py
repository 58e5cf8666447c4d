"""What KVM's own work costs per VM-exit on one CPU preset: the ``kvm`` part of a preset's cost
table.

The host part prices host-kernel work; this one prices KVM's: the VM-exit/VM-entry transition,
leaving the fastpath loop for a full exit, each exit reason's handler, event injection and the
PMU request's per-counter bookkeeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from vpmu.costs.values import NOT_A_NUMBER, numbers

EXIT_REASONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "x86": ("EXCEPTION_NMI", "EXTERNAL_INTERRUPT", "NMI_WINDOW", "CPUID", "HLT", "RDPMC",
            "MSR_READ", "MSR_WRITE"),
    "arm64": ("IRQ", "SYS64", "WFx", "HVC64"),
})
"""The exit reasons the model produces, per architecture, named as KVM's trace prints them.
x86 uses the VMX names (arch/x86/include/uapi/asm/vmx.h); SVM exits are reported under the
same names, so x86 keeps one vocabulary. arm64 uses the exit classes of the ``kvm_exit``
tracepoint (arch/arm64/kvm/trace_arm.h): an exception class as ``kvm_arm_exception_class``
prints it (the ESR_ELx_EC_* names of arch/arm64/include/asm/esr.h), or ``IRQ`` when a
physical interrupt ended the guest's run (ARM_EXCEPTION_IRQ, as ``kvm_arm_exception_type``
in arch/arm64/include/asm/kvm_asm.h prints it):

- ``IRQ``: an interrupt exit; the host's handler runs once KVM re-enables interrupts;
- ``SYS64``: a trapped MSR/MRS/SYS instruction (EC 0x18), here the guest's PMU system
  registers under MDCR_EL2.TPM/TPMCR, handled by kvm_handle_sys_reg;
- ``WFx``: a trapped WFI or WFE (EC 0x01), the guest idling (kvm_handle_wfx);
- ``HVC64``: an HVC from AArch64 (EC 0x16), a PSCI or other SMCCC call (kvm_handle_hvc).

An architecture adds its entry here."""


@dataclass(frozen=True, slots=True)
class KvmCosts:
    """KVM's per-exit costs on one preset, in core cycles.

    The field names are x86's; on arm64 each means the same step of KVM/arm64's run loop
    (``vpmu.costs.arm64.kvm`` gives the mapping)."""

    vmx_transition_cycles: int
    """One VM-exit plus one VM-entry: the hardware transitions, vmx_vcpu_run's register
    save/restore and the speculation barriers. Every exit pays it."""
    full_exit_cycles: int
    """Leaving the fastpath loop: vmx_handle_exit's dispatch and vcpu_enter_guest's way out and
    back in (guest_state_exit/enter, request check, preemption and signal checks). Paid by
    every exit the fastpath does not complete."""
    exit_handler_cycles: Mapping[str, int]
    """Each reason's handler, besides the vPMU's own work and the perf calls it makes."""
    inject_cycles: int
    """Injecting an NMI or interrupt at entry (kvm_inject_nmi / inject_pending_event)."""
    pmc_reprogram_cycles: int
    """kvm_pmu_handle_event's bookkeeping per counter it reprograms (filter check, state),
    besides the perf calls."""
    hrtimer_cycles: int
    """The host hrtimer interrupt that emulates a guest LAPIC timer (apic_timer_fn), besides
    the interrupt entry/exit."""
    mediated_switch_cycles: int
    """A mediated vPMU's load or put besides its MSR accesses: kvm_mediated_pmu_load/put's
    loops and perf_load/put_guest_context with no host event to move."""
    arch: str = field(default="x86", kw_only=True, metadata=NOT_A_NUMBER)
    """Whose exit reasons ``exit_handler_cycles`` prices (a key of ``EXIT_REASONS``)."""

    def __post_init__(self) -> None:
        for name, _key, v in numbers(self):
            if type(v) is not int or v <= 0:
                raise ValueError(f"{name} must hold positive ints, not {v!r}")
        reasons = self.exit_reasons
        missing = set(reasons) - set(self.exit_handler_cycles)
        if missing:
            raise ValueError(f"exit_handler_cycles must price {sorted(missing)}")
        object.__setattr__(self, "exit_handler_cycles",
                           MappingProxyType({r: self.exit_handler_cycles[r] for r in reasons}))

    @property
    def exit_reasons(self) -> tuple[str, ...]:
        """The exit reasons this table prices, in the architecture's order."""
        try:
            return EXIT_REASONS[self.arch]
        except KeyError:
            raise ValueError(f"arch must be one of {sorted(EXIT_REASONS)}, "
                             f"not {self.arch!r}") from None

    def exit_cycles(self, reason: str, *, fastpath: bool = False) -> int:
        """The round trip of one exit of ``reason``, without the vPMU's work."""
        full = 0 if fastpath else self.full_exit_cycles
        return self.vmx_transition_cycles + full + self.exit_handler_cycles[reason]


def scale_exit_path(costs: KvmCosts, round_trip: int, reason: str) -> KvmCosts:
    """``costs`` with its exit path (the transition, the full exit and every handler) scaled
    so that a round trip of ``reason`` takes about ``round_trip`` cycles: how a generation
    whose one published figure is a plain exit round trip gets its table from a measured
    table's shape. Each number is rounded to 10 and kept at least 10, so the scaled round trip
    can differ from ``round_trip`` by the rounding (the fit runs the model, not this sum)."""
    factor = round_trip / costs.exit_cycles(reason)

    def scale(cycles: int) -> int:
        return max(int(round(cycles * factor, -1)), 10)
    return replace(costs, vmx_transition_cycles=scale(costs.vmx_transition_cycles),
                   full_exit_cycles=scale(costs.full_exit_cycles),
                   exit_handler_cycles={r: scale(c) for r, c in costs.exit_handler_cycles.items()})
