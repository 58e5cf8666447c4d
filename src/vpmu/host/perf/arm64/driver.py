"""perf's Arm PMUv3 driver on one CPU (drivers/perf/arm_pmuv3.c@7d6904bf26b9 and
arm_pmu.c), over the PMUv3 system registers:

- **add / remove** (``armpmu_add`` -> ``armpmu_start`` -> ``armv8pmu_enable_event``): the
  counter is armed (``armpmu_event_set_period``), disabled (PMCNTENCLR), its type written
  (PMEVTYPER<n>_EL0, PMCCFILTR_EL0 for the cycle counter; a chained pair's low counter gets the
  event and the high one CHAIN counting at every EL), its interrupt enabled (PMINTENSET) and
  the counter enabled (PMCNTENSET) unless KVM defers it (below). Removing disables the
  counter and its interrupt, clears its overflow flag, then reads it.
- **Periods.** A counter holds -left of its event's period, at most half the counter's range
  (``max_period >> 1``); a counting event's period is that half range, so counting events
  interrupt too, every 2^31 events on a 32-bit counter. The cycle counter (and, from
  PMUv3p5, every event counter) is 64 bits wide with PMCR_EL0.LC/LP set at reset: a 32-bit
  event there is *biased* (bits 63:32 set) so it overflows where a 32-bit counter would.
- **Global enable** is PMCR_EL0.E (``armv8pmu_start`` / ``armv8pmu_stop``): set while any
  event is on the PMU.
- **Overflow** (``armv8pmu_handle_irq``): read PMOVSCLR_EL0 and write the bits back to clear
  them, stop the PMU, handle each overflowed event, start it again. The IRQ is the PMU's PPI
  (INTID 23), a normal interrupt: Linux takes it as a pseudo-NMI only with
  ``irqchip.gicv3_pseudo_nmi=1`` on a GICv3 with priority masking (``armpmu_request_irq``
  tries ``request_nmi`` first), which the model does not boot.
- **Guest / host** (``armv8pmu_set_event_filter``; arch/arm64/kvm/pmu.c
  ``kvm_set_pmu_events``, ``kvm_pmu_counter_deferred``, ``kvm_vcpu_pmu_restore_guest/host``;
  arch/arm64/kvm/hyp/nvhe/switch.c ``__pmu_switch_to_guest/host``). The host kernel runs at
  EL2 on a VHE host (``Host(vhe=True)``, the default, where every core has FEAT_VHE) and at EL1
  beside its guests on an nVHE one:
  - VHE: the filter separates the kernels (exclude_guest sets EXCLUDE_EL1, a host kernel
    event sets INCLUDE_EL2, exclude_host sets EXCLUDE_EL0); EL0 is shared, so while a vCPU
    is loaded KVM counts EL0 for the guest-only events and stops the host-only ones from
    counting it. Applied here at VM-entry and undone at VM-exit: no host EL0 code runs
    between vcpu_load and vcpu_put on that CPU, so the EL0 counts are the same.
  - nVHE: the hardware cannot tell the kernels apart (both EL1); an event that excludes the
    host is not enabled by the driver (deferred) and the world switch enables the guest-only
    counters and disables the host-only ones on entry, and the reverse on exit.
  Only events whose exclude_host and exclude_guest differ are switched (on VHE, not those
  that exclude EL0 anyway).

- **Partitioning** (the partitioned PMU series, "[PATCH v8 NN/21] KVM: arm64: ..." by Colton
  Lewis, 12 Jun 2026, not merged; ``configure_partition``): the module parameter
  ``arm_pmuv3.reserved_host_counters`` keeps the top counters for the host and lets a guest
  own [0, N - reserved) and the cycle counter (``max_guest_counters``). Counters are taken
  from ``cntr_mask`` high to low; KVM takes the guest's out of it while a guest owns them
  (``guest_counters``, ``vpmu.vpmu.arm64.partition``). The IRQ handler clears only the host's
  overflow flags and hands the guest's to KVM (``guest_irq``, "16/21"). While a guest owns
  counters PMCR_EL0.E is the guest's: the host's counters are EL2's (MDCR_EL2.HPMN), enabled
  by MDCR_EL2.HPME, which is what the driver's global enable and the handler's stop/start
  toggle then (assumption: the series' text does not show the driver's enable under a
  loaded guest; writing the guest's PMCR_EL0.E would start or stop the guest's counters).

The driver's pure parts (its constants, the generic event map, ``armv8pmu_set_event_filter``,
the bias rule, ``armv8pmu_reset``'s writes) are ``vpmu.linux.arm_pmuv3``, shared with the guest
Linux's driver (``vpmu.guest.linux.arm_pmuv3``); this module keeps the architecture's counter
numbering (the cycle counter is 31) and KVM's host/guest masks.

Not modelled: the user-access sysctl (``perf_user_access``, ``config1`` bit 1, PMUSERENR
written 0 at every start), exclude_idle (-EPERM), the PMU's cache-event maps
(``PERF_TYPE_HW_CACHE``), FEAT_PMUv3_ICNTR, the threshold fields of PMEVTYPER (PMUv3p8).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.arm64.caps import CYCLE_IDX, PMUVER_V3P1, ArmPmuCaps
from vpmu.arch.arm64.parts import pmu_name
from vpmu.arch.arm64.sysregs import counter_name, type_name
from vpmu.host.perf.arm64.assign import ARMPMU_EVT_64BIT, event_constraint, schedule
from vpmu.host.perf.arm64.events_map import hw_event_config, sysfs_events
from vpmu.host.perf.constraint import Constraint
from vpmu.host.perf.event import PerfEvent
from vpmu.hw.arm64.cpu import PMU_PPI, ArmCpu
from vpmu.linux.arm_pmuv3 import (
    ARMV8_PMU_EVTYPE_EVENT,
    ARMV8_PMU_EXCLUDE_EL0,
    ARMV8_PMU_INCLUDE_EL2,
    ARMV8_PMU_OVSR_MASK,
    ARMV8_PMU_PMCR_E,
    ARMV8_PMU_PMCR_MASK,
    BIAS,
    event_filter,
    needs_bias,
    reset_writes,
)

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.perf.attr import PerfEventAttr
    from vpmu.host.perf.lbr import HostLbrOps



def vhe_host(cpu: Pcpu) -> bool:
    """The host kernel runs at EL2: asked for (``Host.vhe``) and possible on every core.
    FEAT_VHE is mandatory from Armv8.1, as FEAT_PMUv3p1 is: a PMUv3 (v8.0) core such as the
    A53 or the A72 has neither, so an RK3399 always boots nVHE (assumption: PMUVer stands for
    ID_AA64MMFR1_EL1.VH, which the presets do not declare)."""
    capable = all(isinstance(cl.preset.caps, ArmPmuCaps) and cl.preset.caps.pmuver >= PMUVER_V3P1
                  for cl in cpu.host.host_preset.clusters)
    return cpu.host.vhe and capable


class ArmPerfDriver:
    """The per-CPU arm_pmuv3 driver state (``struct pmu_hw_events`` and KVM's per-CPU
    ``kvm_pmu_events`` masks, which the driver maintains)."""

    pmu_type: int | None = None
    """arm_pmu registers with type -1: perf gives it a dynamic id."""
    pmi_vector: int | None = PMU_PPI
    """The PMU interrupt arrives as an IRQ on this vector, not as an NMI."""

    def __init__(self, cpu: Pcpu) -> None:
        hw = cpu.hw
        if not isinstance(hw, ArmCpu):
            raise ValueError(f"ArmPerfDriver needs an Arm CPU, not {hw!r}")
        self.hw = hw
        self.pmu = hw.arm_pmu
        self.caps: ArmPmuCaps = self.pmu.caps
        self.vhe = vhe_host(cpu)
        """The host kernel runs at EL2 (VHE) rather than at EL1 (nVHE)."""
        self.pmu.kernel_el = 2 if self.vhe else 1  # where the booted kernel runs
        self.pmu_name = pmu_name(self.caps.implementer, self.caps.part)
        self.sysfs_events: Mapping[str, int] = sysfs_events(self.caps)
        self.events: dict[int, PerfEvent] = {}
        self.guest = False
        self.suspended = False
        """Never set: arm64 has no mediated vPMU to hand the PMU to."""
        self.lbr: HostLbrOps | None = None
        """No branch record stack (BRBE is not modelled)."""
        self.events_host = 0
        """Counters of host-only events (exclude_guest, not exclude_host): kvm_pmu_events."""
        self.events_guest = 0
        """Counters of guest-only events (exclude_host, not exclude_guest)."""
        self._stopped_for_irq = False
        self.hw_cntr_impl = self.caps.counter_mask
        """The counters the PMU implements (``hw_cntr_impl``)."""
        self.partitioned = False
        """``arm_pmuv3.reserved_host_counters`` >= 0 on a VHE host (``configure_partition``)."""
        self.max_guest_counters = 0
        """A guest may own event counters [0, max_guest_counters) and the cycle counter."""
        self.guest_counters = 0
        """The counters a loaded guest owns now: outside ``cntr_mask``."""
        self.host_squeezed = False
        """The guest's reservation moved host events (put reschedules only then)."""
        self.guest_irq: Callable[[int], None] | None = None
        """``kvm_pmu_handle_guest_irq`` of the vCPU loaded here, given the guest's overflow
        flags."""
        self._guest_ovf = 0

    def __repr__(self) -> str:
        return f"ArmPerfDriver(pmu={self.pmu_name!r}, vhe={self.vhe})"

    # -- registers -----------------------------------------------------------------------
    def _write(self, name: str, value: int) -> None:
        self.pmu.write(self.pmu.by_name[name], value)

    def _read(self, name: str) -> int:
        return self.pmu.read(self.pmu.by_name[name])

    def _pmcr_write(self, value: int) -> None:
        self._write("PMCR_EL0", value & ARMV8_PMU_PMCR_MASK)

    # -- the event's encoding ------------------------------------------------------------
    @staticmethod
    def is_64bit(event: PerfEvent) -> bool:
        """``armv8pmu_event_is_64bit``: the event asked for a 64-bit counter."""
        return bool(event.hw_config & ARMPMU_EVT_64BIT)

    def is_chained(self, event: PerfEvent) -> bool:
        """``armv8pmu_event_is_chained``: a 64-bit event on 32-bit event counters."""
        return self.is_64bit(event) and not self.caps.long_event_counters and \
            event.hw_idx != CYCLE_IDX

    def _cnten_mask(self, event: PerfEvent) -> int:
        idx = event.hw_idx
        assert idx is not None
        return 1 << idx | (1 << (idx - 1) if self.is_chained(event) else 0)

    def _max_period(self, event: PerfEvent) -> int:
        return (1 << 64) - 1 if self.is_64bit(event) else (1 << 32) - 1

    def _needs_bias(self, event: PerfEvent) -> bool:
        return needs_bias(is_64bit=self.is_64bit(event),
                          long_event_counters=self.caps.long_event_counters,
                          cycle_counter=event.hw_idx == CYCLE_IDX)

    def config_base(self, attr: PerfEventAttr) -> int:
        """``armv8pmu_set_event_filter``: the filter bits of the event's type (a VHE host
        kernel is in hyp mode)."""
        return event_filter(hyp_mode=self.vhe, exclude_user=attr.exclude_user,
                            exclude_kernel=attr.exclude_kernel, exclude_hv=attr.exclude_hv,
                            exclude_host=attr.exclude_host, exclude_guest=attr.exclude_guest)

    def evtype(self, event: PerfEvent) -> int:
        """The type the event's (low) counter holds now: event and filter, with EL0 flipped
        while a guest runs on a VHE host (``kvm_vcpu_pmu_enable_el0`` / ``disable_el0``)."""
        value = (event.hw_config & ARMV8_PMU_EVTYPE_EVENT) | self.config_base(event.attr)
        if self.vhe and self.guest:
            mask = self._cnten_mask(event)
            if mask & self.events_guest:
                value &= ~ARMV8_PMU_EXCLUDE_EL0
            if mask & self.events_host:
                value |= ARMV8_PMU_EXCLUDE_EL0
        return value

    def _write_event_type(self, event: PerfEvent) -> None:
        idx = event.hw_idx
        assert idx is not None
        if self.is_chained(event):
            self._write(type_name(idx - 1), self.evtype(event))
            self._write(type_name(idx), arm_ev.CHAIN | ARMV8_PMU_INCLUDE_EL2)
        else:
            self._write(type_name(idx), self.evtype(event))

    # -- KVM's host/guest masks ------------------------------------------------------------
    def _switch_needed(self, attr: PerfEventAttr) -> bool:
        """``kvm_pmu_switch_needed``."""
        if self.vhe and attr.exclude_user:
            return False
        return attr.exclude_host != attr.exclude_guest

    def _deferred(self, attr: PerfEventAttr) -> bool:
        """``kvm_pmu_counter_deferred``: the world switch, not the driver, enables it."""
        return not self.vhe and attr.exclude_host

    def _enable_now(self, mask: int, attr: PerfEventAttr) -> bool:
        """Whether the counters should be enabled now: as the driver leaves them, or, inside
        an nVHE guest, as ``__pmu_switch_to_guest`` left them."""
        if not self.vhe and self.guest:
            if mask & self.events_host:
                return False
            if mask & self.events_guest:
                return True
        return not self._deferred(attr)

    # -- programming ---------------------------------------------------------------------
    def add(self, event: PerfEvent, idx: int) -> None:
        """``armpmu_add``: take counter ``idx``, arm it, enable the event, then the PMU."""
        with self.pmu.batch():
            self.events[idx] = event
            event.hw_idx = idx
            self.arm(event)
            attr, mask = event.attr, self._cnten_mask(event)
            self._disable_event_counter(mask)
            self._write_event_type(event)
            self._write("PMINTENSET_EL1", 1 << idx)
            if self._switch_needed(attr):
                self.events_host |= 0 if attr.exclude_host else mask
                self.events_guest |= 0 if attr.exclude_guest else mask
            if self._enable_now(mask, attr):
                self._write("PMCNTENSET_EL0", mask)
            self.load_global()

    def _clr_pmu_events(self, mask: int) -> None:
        """``kvm_clr_pmu_events``."""
        self.events_host &= ~mask
        self.events_guest &= ~mask

    def _disable_event_counter(self, mask: int) -> None:
        """``armv8pmu_disable_event_counter``: forget the counters' host/guest masks and
        disable them. Upstream skips the disable of a deferred counter (nVHE, exclude_host),
        whose enable the world switch owns: there perf only runs after
        ``__pmu_switch_to_host`` has disabled it. Here host perf work may run while
        ``guest`` is set (an interrupt's handler inside a guest run), so the disable is
        always written: one MSR more per deferred event removed than upstream."""
        self._clr_pmu_events(mask)
        self._write("PMCNTENCLR_EL0", mask)

    def remove(self, event: PerfEvent) -> None:
        """``armpmu_del``: disable the counter and its interrupt, clear its overflow flag,
        fold the count in, release the counter(s)."""
        idx = event.hw_idx
        assert idx is not None
        with self.pmu.batch():
            self._disable_event_counter(self._cnten_mask(event))
            self._write("PMINTENCLR_EL1", 1 << idx)
            self._write("PMOVSCLR_EL0", 1 << idx)
            self.read(event)
            del self.events[idx]
            event.hw_idx = None
            self.load_global()

    def arm(self, event: PerfEvent) -> None:
        """``armpmu_event_set_period``: the counter starts at -left, left at most half the
        counter's range (a counting event: exactly that)."""
        idx = event.hw_idx
        assert idx is not None
        max_period = self._max_period(event)
        left = event.period_left if event.period_left > 0 else max_period >> 1
        value = -min(left, max_period >> 1) & max_period
        event.prev_raw = value
        if self._needs_bias(event):
            value |= BIAS
        if self.is_chained(event):
            self._write(counter_name(idx), value >> 32)
            self._write(counter_name(idx - 1), value & 0xFFFF_FFFF)
        else:
            self._write(counter_name(idx), value)

    def read(self, event: PerfEvent) -> int:
        """``armpmu_event_update``: fold the counter's progress into the event; the delta."""
        idx = event.hw_idx
        assert idx is not None
        value = self._read(counter_name(idx))
        if self.is_chained(event):
            value = value << 32 | self._read(counter_name(idx - 1))
        if self._needs_bias(event):
            value &= ~BIAS
        delta = (value - event.prev_raw) & self._max_period(event)
        event.prev_raw = value
        event.count += delta
        event.period_left -= delta
        return delta

    # -- partitioning --------------------------------------------------------------------
    def configure_partition(self, reserved_host_counters: int) -> None:
        """``arm_pmuv3.reserved_host_counters`` at boot ("[PATCH v8 07/21]"): 0..N, on a VHE
        host; the guest may own the rest."""
        n = self.caps.n_counters
        if not self.vhe:
            raise ValueError("arm_pmuv3.reserved_host_counters needs a VHE host "
                             "(has_vhe(): the host kernel at EL2)")
        if not 0 <= reserved_host_counters <= n:
            raise ValueError(f"arm_pmuv3.reserved_host_counters must be 0-{n} (PMCR_EL0.N), "
                             f"not {reserved_host_counters!r} (-EINVAL)")
        self.partitioned = True
        self.max_guest_counters = n - reserved_host_counters

    @property
    def cntr_mask(self) -> int:
        """The counters host perf may take now: the implemented ones but the guest's."""
        return self.hw_cntr_impl & ~self.guest_counters

    def _set_enable(self, on: bool) -> None:
        """The host's counters' global enable: PMCR_EL0.E, or MDCR_EL2.HPME while a guest
        owns PMCR_EL0.E (the module docstring's assumption)."""
        if self.guest_counters:
            if self.pmu.hpme != on:
                self.pmu.set_mdcr(hpmn=self.pmu.hpmn, hpme=on)
            return
        pmcr = self._read("PMCR_EL0")
        want = pmcr | ARMV8_PMU_PMCR_E if on else pmcr & ~ARMV8_PMU_PMCR_E
        if want != pmcr:
            self._pmcr_write(want)

    # -- global control, guest switch, interrupt ------------------------------------------
    def load_global(self) -> None:
        """``armpmu_enable`` / ``armpmu_disable``: PMCR_EL0.E set while events are on."""
        self._set_enable(bool(self.events))

    def set_guest(self, guest: bool) -> None:
        """VM-entry / VM-exit: VHE flips the EL0 filter of switched events, nVHE their
        enables (``__pmu_switch_to_guest`` / ``__pmu_switch_to_host``)."""
        if guest == self.guest:
            return
        self.guest = guest
        with self.pmu.batch():
            if self.vhe:
                for event in self.events.values():
                    if self._cnten_mask(event) & (self.events_host | self.events_guest):
                        self._write_event_type(event)
                return
            off, on = ((self.events_host, self.events_guest) if guest
                       else (self.events_guest, self.events_host))
            if off:
                self._write("PMCNTENCLR_EL0", off)
            if on:
                self._write("PMCNTENSET_EL0", on)

    def counts_in_host(self, counters: int) -> int:
        """The subset of ``counters`` enabled now (PMCR_EL0.E and PMCNTENSET)."""
        if not self._read("PMCR_EL0") & ARMV8_PMU_PMCR_E:
            return 0
        return counters & self._read("PMCNTENSET_EL0")

    def status(self) -> int:
        """``armv8pmu_getreset_flags``: read PMOVSCLR_EL0 and clear what it says; then stop
        the PMU while the overflows are handled. Partitioned (``armv8pmu_getovf_flags``):
        only the host's flags are cleared and handled; a loaded guest's are kept for
        ``pmi_done`` to hand to KVM."""
        ovs = self._read("PMOVSCLR_EL0") & ARMV8_PMU_OVSR_MASK
        if self.partitioned:
            ovs &= self._read("PMINTENSET_EL1")
            self._guest_ovf = ovs & self.guest_counters
            ovs &= ~self.guest_counters
        self._write("PMOVSCLR_EL0", ovs)
        self._stopped_for_irq = bool(ovs)
        if ovs:
            self._set_enable(False)
        return ovs

    def ack(self, bits: int) -> None:
        """Nothing: the handler cleared the flags it read before handling them."""

    def cpu_init(self) -> None:
        """``armv8pmu_reset``: counters, interrupts and flags off, PMCR_EL0 = P | C | LC
        (| LP with PMUv3p5's long event counters); the PPI enabled (``armpmu_request_irq``)."""
        with self.pmu.batch():
            for name, value in reset_writes(long_event_counters=self.caps.long_event_counters):
                self._write(name, value)
        self.pmu.irq.enabled = True

    def pmi_done(self) -> None:
        """The guest's overflow flags to KVM (``kvm_pmu_handle_guest_irq``, partitioned),
        then ``armv8pmu_start`` at the end of the handler: PMCR_EL0.E again."""
        govf, self._guest_ovf = self._guest_ovf, 0
        if govf and self.guest_irq is not None:
            self.guest_irq(govf)
        if self._stopped_for_irq:
            self._stopped_for_irq = False
            self._set_enable(True)

    def clear_dirty(self) -> int:
        """Nothing: arm64 has no perf_clear_dirty_counters (user access is off)."""
        return 0

    def raw_config(self, config: int, config1: int = 0) -> int:
        """The event (config bits 15:0) and ARMPMU_EVT_64BIT from ``config1`` bit 0."""
        return (config & ARMV8_PMU_EVTYPE_EVENT) | (ARMPMU_EVT_64BIT if config1 & 1 else 0)

    def event_constraint(self, config: int) -> Constraint:
        """``armv8pmu_get_event_idx``'s choices for this event (``assign``)."""
        return event_constraint(self.caps, config)

    def schedule(self, constraints: Sequence[Constraint],
                 previous: Sequence[int | None]) -> list[int] | None:
        """Counters for the events, in perf's order (``assign.schedule``), from
        ``cntr_mask``."""
        return schedule(constraints, previous, self.guest_counters, self.partitioned)

    def hw_config(self, hw_id: int) -> int | None:
        """``__armv8_pmuv3_map_event`` for a generic event on this PMU."""
        return hw_event_config(self.caps, hw_id)


if TYPE_CHECKING:
    from vpmu.host.perf.driver import PerfDriver

    def _implements(cpu: Pcpu) -> PerfDriver:
        return ArmPerfDriver(cpu)  # the driver satisfies perf's protocol (mypy checks)
