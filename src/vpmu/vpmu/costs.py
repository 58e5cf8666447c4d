"""The hypervisor's cost table: what KVM's own work costs per VM-exit, per CPU preset.

The host table (``vpmu.host.costs``) prices host-kernel work; this one prices KVM's: the
VM-exit/VM-entry transition, leaving the fastpath loop for a full exit, each exit reason's
handler, event injection and the PMU request's per-counter bookkeeping. Together they are the
preset's cost table. Every value has an entry in ``KVM_COST_SOURCES``; the ones fitted to
seed 001 say so, with the figure. docs/costs.md lists them and a test checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from vpmu.arch.presets import PRESETS

EXIT_REASONS = ("EXCEPTION_NMI", "EXTERNAL_INTERRUPT", "NMI_WINDOW", "CPUID", "HLT", "RDPMC",
                "MSR_READ", "MSR_WRITE")
"""The VMX exit reasons the model produces (names as KVM's trace prints them); SVM exits are
reported under the same names."""


@dataclass(frozen=True, slots=True)
class KvmCosts:
    """KVM's per-exit costs on one preset, in core cycles."""

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

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            values = value.values() if isinstance(value, Mapping) else [value]
            for v in values:
                if type(v) is not int or v <= 0:
                    raise ValueError(f"{f.name} must hold positive ints, not {v!r}")
        missing = set(EXIT_REASONS) - set(self.exit_handler_cycles)
        if missing:
            raise ValueError(f"exit_handler_cycles must price {sorted(missing)}")
        object.__setattr__(self, "exit_handler_cycles",
                           MappingProxyType({r: self.exit_handler_cycles[r]
                                             for r in EXIT_REASONS}))

    def exit_cycles(self, reason: str, *, fastpath: bool = False) -> int:
        """The round trip of one exit of ``reason``, without the vPMU's work."""
        full = 0 if fastpath else self.full_exit_cycles
        return self.vmx_transition_cycles + full + self.exit_handler_cycles[reason]


# Seed-001 fit (docs/calibration.md): the transition is the one value fitted to the guest
# PMI handler latency with is_paused (32,929.3 ns on ICX); the rest are estimates.
_TRANSITION = 2_600
_FULL_EXIT = 800
_HANDLERS = {"EXCEPTION_NMI": 300, "EXTERNAL_INTERRUPT": 200, "NMI_WINDOW": 200, "CPUID": 300,
             "HLT": 500,
             "RDPMC": 300, "MSR_READ": 300, "MSR_WRITE": 300}

_MEDIATED_SWITCH = 100

_PLAIN_CPUID = _TRANSITION + _FULL_EXIT + _HANDLERS["CPUID"]
"""The seed-001 table's plain CPUID exit round trip (3,700 cycles)."""

# Mediated-vPMU fit (docs/calibration.md): the parts the v6 series measured (EMR, Turin) run
# a 2025 kernel, not seed 001's; their exit path is the table above scaled so that a plain
# CPUID round trip takes the value benchmarks/fit_mediated.py fits to the v6 34/44 figures
# (the MSR prices stay the host table's).
V6_PLAIN_CPUID = {"intel-emr": 370, "amd-zen5": 1_950}


def _exit_path(plain_cpuid: int) -> dict[str, Any]:
    """Transition, full exit and handlers scaled to a plain CPUID round trip, rounded to 10."""
    def scale(cycles: int) -> int:
        return max(int(round(cycles * plain_cpuid / _PLAIN_CPUID, -1)), 10)
    return {"vmx_transition_cycles": scale(_TRANSITION), "full_exit_cycles": scale(_FULL_EXIT),
            "exit_handler_cycles": {r: scale(c) for r, c in _HANDLERS.items()}}


def _table(preset: str) -> KvmCosts:
    path = _exit_path(V6_PLAIN_CPUID[preset]) if preset in V6_PLAIN_CPUID else {
        "vmx_transition_cycles": _TRANSITION, "full_exit_cycles": _FULL_EXIT,
        "exit_handler_cycles": _HANDLERS}
    return KvmCosts(**path, inject_cycles=300, pmc_reprogram_cycles=150, hrtimer_cycles=800,
                    mediated_switch_cycles=_MEDIATED_SWITCH)


KVM_COSTS: Mapping[str, KvmCosts] = MappingProxyType({name: _table(name) for name in PRESETS})
"""KVM's costs for every built-in preset."""


def kvm_costs(preset_name: str) -> KvmCosts:
    """The KVM cost table of a preset; the error lists the valid names."""
    try:
        return KVM_COSTS[preset_name]
    except KeyError:
        raise ValueError(f"preset must be one of {sorted(KVM_COSTS)}, "
                         f"not {preset_name!r}") from None


KVM_COST_SOURCES: Mapping[str, str] = MappingProxyType({
    "vmx_transition_cycles":
        "reference/kvm_x86_vpmu.md 5: a plain CPUID exit round trip is ~1.0-1.5k cycles on "
        "SPR-class parts [mem]; fitted here (benchmarks/fit_seed001.py, sweep 1,800-3,000 in "
        "steps of 400, nearest at 2,600) to seed 001's guest PMI handler latency with "
        "is_paused (32,929.3 ns, ICX, docs/calibration.md). That is above the [mem] range: "
        "the 2021 ICX kernel ran with more mitigations, and the fit absorbs whatever the "
        "model leaves out of the handler's exits. The same value on every preset but "
        "intel-emr and amd-zen5, whose exit path (this, full exit, handlers) is the table "
        "scaled to a plain CPUID round trip that benchmarks/fit_mediated.py fits to "
        "reference/kvm_x86_vpmu.md 5's mediated CPUID figures (v6 34/44: EMR 4k/3k, Turin "
        "6.2k/5.3k): EMR 370, Turin 1,950. EMR's is below the [mem] 1.0-1.5k: the load/put "
        "MSR prices leave no more (docs/calibration.md).",
    "full_exit_cycles":
        "estimate: vmx_handle_exit's dispatch plus vcpu_enter_guest's exit and re-entry path "
        "(guest_state_exit/enter_irqoff, request and preemption checks) are a few hundred "
        "instructions: 800 on every preset.",
    "exit_handler_cycles":
        "estimate: the handlers besides the vPMU's work: MSR and RDPMC emulation "
        "(kvm_emulate_rdmsr/wrmsr, kvm_skip_emulated_instruction) ~300, CPUID ~300, "
        "EXTERNAL_INTERRUPT's handle_external_interrupt_irqoff ~200 (the host handler itself "
        "is the host's irq cost), EXCEPTION_NMI ~300, NMI_WINDOW ~200 (clear the window, "
        "inject the latched NMI), HLT ~500 (kvm_vcpu_halt setup).",
    "inject_cycles":
        "estimate: kvm_inject_nmi / inject_pending_event writing the VMCS entry fields, 300.",
    "pmc_reprogram_cycles":
        "estimate: reprogram_counter's own work per counter (eventsel decode, "
        "pmc_event_is_allowed with the filter's bsearch, state updates), 150.",
    "mediated_switch_cycles":
        "estimate: kvm_mediated_pmu_load/put walk the guest's counters (a few instructions "
        "each besides the MSR accesses, which are priced separately) and perf_load/"
        "put_guest_context take the context lock and find no event to move: 100.",
    "hrtimer_cycles":
        "estimate: hrtimer_interrupt plus apic_timer_fn (kvm_apic_inject_pending_timer, "
        "kick), 800, besides the interrupt entry/exit.",
})
"""Where every ``KvmCosts`` field comes from."""
