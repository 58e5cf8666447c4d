"""The KVM part of the Arm presets' cost tables: what KVM/arm64's own work costs per exit.

``KvmCosts`` keeps x86's field names; on arm64 each means this step of KVM/arm64's run loop
(arch/arm64/kvm/arm.c, handle_exit.c and hyp/ at v6.12):

- ``vmx_transition_cycles``: the world switch round trip: the guest's exception to EL2, the
  guest context saved and the host's restored, and back again at the next entry
  (``__kvm_vcpu_run``, its fast path ``fixup_guest_exit`` included). On a VHE host (the
  kernel at EL2) the guest's EL1 registers stay loaded between vcpu_load and vcpu_put; on
  an nVHE host (the kernel at EL1) every exit switches the whole EL1 context through a
  hyp call, so the round trip is dearer.
- ``full_exit_cycles``: leaving ``kvm_arch_vcpu_ioctl_run``'s inner loop and coming back:
  ``handle_exit``'s dispatch, the vGIC, timer and PMU sync/flush, the request, preemption
  and signal checks. Paid by every exit ``fixup_guest_exit`` does not complete.
- ``exit_handler_cycles``: each exit class's handler (``kvm.EXIT_REASONS["arm64"]``):
  SYS64 is ``kvm_handle_sys_reg`` / ``emulate_sys_reg``'s dispatch besides the PMU
  register emulation (the vPMU's own work).
- ``inject_cycles``: one vGIC list-register injection (``kvm_vgic_inject_irq`` and the
  flush that writes the list register).
- ``pmc_reprogram_cycles``: ``kvm_pmu_create_perf_event``'s bookkeeping per counter,
  besides the perf calls.
- ``hrtimer_cycles``: the guest's arch-timer emulation interrupt (``kvm_timer``'s background
  hrtimer, ``kvm_bg_timer_expire``), besides the interrupt entry/exit.
- ``mediated_switch_cycles``: a partitioned PMU's load or put (the partitioned PMU series,
  not merged) besides its register accesses.

The world switch differs between VHE presets (``arm-n1``, ``arm-a520``, ``arm-a720``:
Armv8.1 and later, where the host kernel runs at EL2) and nVHE ones (``arm-a53``,
``arm-a72``: Armv8.0 cores, which have no VHE, so the host boots nVHE, as RK3399 does; see
``Host(vhe=...)``). One number is fitted: the VHE exit path (transition, full exit,
handlers) is the estimated shape below scaled to a plain HVC round trip on Neoverse N1
(``PLAIN_HVC_FITTED``, benchmarks/calibrate.py); the other VHE presets borrow it, and the nVHE
world switch adds its EL1 context to the scaled VHE one. The rest are estimates
(``sources.py`` says why each is what it is).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from vpmu.costs.arm64.host import MRS_CYCLES, MSR_CYCLES
from vpmu.costs.kvm import KvmCosts, scale_exit_path

VHE_PRESETS = frozenset({"arm-n1", "arm-a520", "arm-a720"})
"""The Arm presets whose cores have VHE (Armv8.1+): their host kernel runs at EL2."""

VHE_TRANSITION_CYCLES = 1_000
"""The estimated VHE world switch round trip, before the exit path is scaled to the fit
(sources.py: kvm.vmx_transition_cycles)."""
NVHE_EL1_SYSREGS = 25
"""The EL1 system registers an nVHE world switch saves and restores on every exit and entry
(``__sysreg_save_el1_state`` / ``__sysreg_restore_el1_state``, with SP_EL1, ELR_EL1 and
SPSR_EL1), each direction for the guest and the host."""
NVHE_HYP_CALL_CYCLES = 500
"""The nVHE extras besides the EL1 registers: the host's HVC into EL2 and the ERET back,
stage-2 (VTTBR_EL2) and trap (HCR/CPTR/MDCR_EL2) switching, the timer's and the PMU's
(``__pmu_switch_to_guest/host``) per-entry work."""
NVHE_EXTRA_CYCLES = 2 * NVHE_EL1_SYSREGS * (MRS_CYCLES + MSR_CYCLES) + NVHE_HYP_CALL_CYCLES
"""What an nVHE world switch round trip adds to the VHE one: the EL1 context switched both
ways (each register read from one context and written with the other's, on exit and again
on entry: 2 x 25 MRS + 2 x 25 MSR), plus the hyp call: 2,000."""

FULL_EXIT_CYCLES = 800
EXIT_HANDLER_CYCLES: Mapping[str, int] = MappingProxyType({
    "IRQ": 100, "SYS64": 300, "WFx": 500, "HVC64": 300})
INJECT_CYCLES = 600
PMC_REPROGRAM_CYCLES = 150
HRTIMER_CYCLES = 800
MEDIATED_SWITCH_CYCLES = 150


PLAIN_HVC_FITTED = 880
"""The plain HVC exit round trip (cycles) the VHE exit path is scaled to, as
benchmarks/calibrate.py fits it to Neoverse N1's 292 ns at the preset's 3.0 GHz (sources.py);
every Arm preset takes it (none other has a figure)."""


def kvm_table(preset: str, plain_hvc: int = PLAIN_HVC_FITTED, *,
              vhe: bool | None = None) -> KvmCosts:
    """One Arm preset's KVM table: the estimated VHE shape scaled to the fitted plain HVC
    round trip (or to ``plain_hvc``, as a refit asks); an nVHE host (``vhe``: the preset's
    own mode unless given) adds its EL1 context switch and hyp call to the scaled world
    switch."""
    estimate = KvmCosts(
        vmx_transition_cycles=VHE_TRANSITION_CYCLES, full_exit_cycles=FULL_EXIT_CYCLES,
        exit_handler_cycles=EXIT_HANDLER_CYCLES, inject_cycles=INJECT_CYCLES,
        pmc_reprogram_cycles=PMC_REPROGRAM_CYCLES, hrtimer_cycles=HRTIMER_CYCLES,
        mediated_switch_cycles=MEDIATED_SWITCH_CYCLES, arch="arm64")
    table = scale_exit_path(estimate, plain_hvc, "HVC64")
    if (preset in VHE_PRESETS) if vhe is None else vhe:
        return table
    return replace(table, vmx_transition_cycles=table.vmx_transition_cycles + NVHE_EXTRA_CYCLES)
