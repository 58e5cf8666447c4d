"""KVM's side of the partitioned PMU: the series "KVM: arm64: Implement a Partitioned PMU"
(Colton Lewis, v8 "[PATCH v8 NN/21]", 12 Jun 2026; v9 24 Sep 2026; not merged), whose
pmu-part.c this module follows at v8.

The host's arm_pmuv3 driver lets a guest own event counters [0, max_guest_counters) and the
cycle counter (``ArmPerfDriver.configure_partition``). A vCPU's PMU starts FREE: every PMU
register access traps, as with the emulated PMU. Its first trapped access makes it
GUEST_OWNED ("15/21"): from then on, at every vcpu_load KVM reserves the guest's counters on
that CPU, squeezing host events out of them (``set_guest_counters``, "14/21"), applies the
VM's event filter while writing the guest's types (``apply_event_filter``, "12/21") and loads
the guest's registers into the hardware (``load``, "11/21"); at vcpu_put it saves them and
gives the counters back (``put``). With FEAT_FGT the guest then reaches its counters, their
enables, PMCR_EL0, PMSELR_EL0 and PMUSERENR_EL0 without an exit; the overflow flags, the
types and PMCEID still trap (``FGT_TRAPPED``, "08/21"). MDCR_EL2.HPMN becomes the VM's N.
Without FEAT_FGT every access still traps and the handler reaches the hardware directly.
The host PMU interrupt hands the guest's overflow flags to KVM (``handle_guest_irq``), which
keeps them in the vCPU's PMOVSSET_EL0 (always virtual) and raises the vGIC's level.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpmu.arch.arm64.caps import CYCLE_IDX, PMUVER_V3P7, ArmPmuCaps
from vpmu.arch.arm64.sysregs import counter_name, type_name
from vpmu.arch.regs import set_bits
from vpmu.host.perf.arm64.driver import ArmPerfDriver
from vpmu.hw.arm64.cpu import ArmCpu
from vpmu.hw.arm64.pmu import ArmPmu
from vpmu.linux.arm_pmuv3 import ARMV8_PMU_INCLUDE_EL2
from vpmu.vpmu.arm64.attrs import Errno
from vpmu.vpmu.arm64.host_pmu import KvmArch
from vpmu.vpmu.arm64.sysregs import EXCLUDE_EL0, EXCLUDE_EL1, PMCR_C, PMCR_P

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.perf.core import PerfSubsystem

VCPU_PMU_ACCESS_FREE, VCPU_PMU_ACCESS_GUEST_OWNED = "free", "guest-owned"
"""``enum vcpu_pmu_register_access``."""
FGT_TRAPPED = frozenset({"PMOVSSET_EL0", "PMOVSCLR_EL0", "PMCCFILTR_EL0", "PMXEVTYPER_EL0",
                         "PMCEID0_EL0", "PMCEID1_EL0"})
"""The registers HDFGRTR_EL2 / HDFGWTR_EL2 still trap ("08/21"), besides every
PMEVTYPER<n>_EL0 (``fgt_traps``); the FGT bit of PMEVTYPER<n>_EL0 covers PMXEVTYPER_EL0
(assumption: as the Arm ARM's HDFGRTR_EL2.PMEVTYPERn_EL0)."""
ARMV8_PMU_PMCR_MASK = 0xFF
"""The writable PMCR_EL0 bits Linux keeps (E, P, C, D, X, DP, LC, LP)."""


def fgt_traps(name: str) -> bool:
    """Whether FGT keeps trapping a guest access to ``name`` under partitioning."""
    return name in FGT_TRAPPED or name.startswith("PMEVTYPER")


def has_fgt(caps: ArmPmuCaps) -> bool:
    """FEAT_FGT (mandatory from Armv8.6), inferred from FEAT_PMUv3p7 (Armv8.7): the presets
    do not declare ID_AA64MMFR0_EL1.FGT (assumption, as VHE is inferred from PMUv3p1).
    Neoverse N1 (Armv8.2) has none: its partitioned guest still traps every access."""
    return caps.pmuver >= PMUVER_V3P7


def guest_counter_mask(max_guest_counters: int) -> int:
    """``kvm_pmu_guest_counter_mask``: the driver's maximum, not the VM's N, and the cycle
    counter."""
    return (1 << max_guest_counters) - 1 | 1 << CYCLE_IDX


def enable_partition(kvm: KvmArch, perf: PerfSubsystem, enable: bool) -> Errno | None:
    """KVM_ARM_VCPU_PMU_V3_ENABLE_PARTITION ("18/21"; id 5, the id of the fixed-counters-only
    proposal too, so no kernel has both): EPERM unless the host is VHE and its driver is
    partitioned, EBUSY once the VM ran; N is clamped to the guest's maximum."""
    drivers = [d for d in perf.drivers if isinstance(d, ArmPerfDriver)]
    if not drivers or not all(d.vhe and d.partitioned for d in drivers):
        return Errno.EPERM
    if kvm.ran_once:
        return Errno.EBUSY
    kvm.partitioned = enable
    if enable:
        kvm.max_guest_counters = min(d.max_guest_counters for d in drivers)
        if kvm.nr_pmu_counters is not None:
            kvm.nr_pmu_counters = min(kvm.nr_pmu_counters, kvm.max_guest_counters)
    return None


@dataclass(frozen=True, slots=True)
class Squeeze:
    """What a reservation did to host perf on one CPU."""

    cycles: int
    moved: int = 0
    lost: int = 0
    pinned: int = 0


def set_guest_counters(perf: PerfSubsystem, cpu: Pcpu, guest: int) -> Squeeze:
    """``kvm_pmu_set_guest_counters``: the driver's ``cntr_mask`` loses ``guest``'s counters
    (or gets them back with 0). Host events on them are moved by a reschedule
    (``perf_pmu_resched_update``); giving back reschedules only if the reservation moved
    some (``host_squeezed``)."""
    drv = perf.drivers[cpu.index]
    assert isinstance(drv, ArmPerfDriver), "a partitioned PMU is an Arm PMU"
    used = sum(1 << idx for idx in drv.events)
    if guest and used & guest:
        on_guest = [ev for idx, ev in drv.events.items() if guest >> idx & 1]
        drv.host_squeezed = True

        def update() -> None:
            drv.guest_counters = guest
        cycles, lost = perf.resched_update(cpu, update)
        pinned = sum(1 for ev in on_guest if ev.attr.pinned)
        return Squeeze(cycles, len(on_guest), len(lost), pinned)
    if not guest and drv.host_squeezed:
        drv.host_squeezed = False

        def release() -> None:
            drv.guest_counters = 0
        cycles, _ = perf.resched_update(cpu, release)
        return Squeeze(cycles)
    drv.guest_counters = guest
    return Squeeze(0)


def arm_pmu_of(cpu: Pcpu) -> ArmPmu:
    """The PMUv3 of ``cpu`` (a partitioned PMU is an Arm PMU)."""
    hw = cpu.hw
    assert isinstance(hw, ArmCpu), "a partitioned PMU is an Arm PMU"
    return hw.arm_pmu


class RegTally:
    """PMU system-register accesses KVM makes at EL2 on one CPU, priced at the host's MRS /
    MSR latency and counted by register (what a load or a put did)."""

    def __init__(self, cpu: Pcpu, traffic: Counter[str]) -> None:
        self.pmu = arm_pmu_of(cpu)
        self.costs = cpu.costs.instruction_cycles
        self.traffic = traffic
        self.cycles = 0

    def rd(self, name: str) -> int:
        """MRS at EL2."""
        self.traffic[f"mrs {name}"] += 1
        self.cycles += self.costs["mrs"]
        return self.pmu.read(self.pmu.by_name[name])

    def wr(self, name: str, value: int) -> None:
        """MSR at EL2."""
        self.traffic[f"msr {name}"] += 1
        self.cycles += self.costs["msr"]
        self.pmu.write(self.pmu.by_name[name], value)

    def mdcr(self, hpmn: int, hpme: bool) -> None:
        """MSR MDCR_EL2 (HPMN, HPME)."""
        self.traffic["msr MDCR_EL2"] += 1
        self.cycles += self.costs["msr"]
        self.pmu.set_mdcr(hpmn=hpmn, hpme=hpme)


def filtered_type(kvm: KvmArch, idx: int, evtyper: int, event: int) -> int:
    """``kvm_pmu_apply_event_filter``'s value for one counter: INCLUDE_EL2 cleared (the guest
    has no EL2), and a denied event made to count nowhere (EXCLUDE_EL0 | EXCLUDE_EL1): it
    is written but never counts. ``event`` -1: a counter above the VM's N (no filter)."""
    value = evtyper & ~ARMV8_PMU_INCLUDE_EL2
    flt = kvm.pmu_filter
    if flt is not None and event >= 0 and not flt.allows(event):
        value |= EXCLUDE_EL0 | EXCLUDE_EL1
    return value


@dataclass(eq=False)
class GuestPmuState:
    """The guest's PMU registers while the context is put (KVM's vregs)."""

    counters: dict[int, int]
    types: dict[int, int]
    regs: dict[str, int]


def load(kvm: KvmArch, state: GuestPmuState, events: dict[int, int], mask: int, nr: int,
         t: RegTally) -> None:
    """``kvm_pmu_load`` after the reservation: the filtered types, the counters, PMSELR,
    PMUSERENR, PMCR's stateful bits, the overflow flags cleared (PMOVS stays virtual), the
    enables; then MDCR_EL2: HPMN the VM's N, HPME for the host's counters. ``events``: each
    counter's event number (for the filter)."""
    for idx in set_bits(mask):
        t.wr(type_name(idx), filtered_type(kvm, idx, state.types.get(idx, 0),
                                          events.get(idx, -1)))
    for idx in set_bits(mask):
        t.wr(counter_name(idx), state.counters.get(idx, 0))
    r = state.regs
    t.wr("PMSELR_EL0", r["PMSELR_EL0"])
    t.wr("PMUSERENR_EL0", r["PMUSERENR_EL0"])
    t.wr("PMCR_EL0", r["PMCR_EL0"] & ARMV8_PMU_PMCR_MASK & ~(PMCR_P | PMCR_C))
    t.wr("PMOVSCLR_EL0", mask)
    t.wr("PMCNTENSET_EL0", r["PMCNTENSET_EL0"] & mask)
    t.wr("PMCNTENCLR_EL0", ~r["PMCNTENSET_EL0"] & mask)
    t.wr("PMINTENSET_EL1", r["PMINTENSET_EL1"] & mask)
    t.wr("PMINTENCLR_EL1", ~r["PMINTENSET_EL1"] & mask)
    t.mdcr(nr, True)


def put(state: GuestPmuState, mask: int, n_host: int, t: RegTally) -> None:
    """``kvm_pmu_put`` before the counters go back: the counters, PMSELR, PMUSERENR, PMCR and
    the enables saved; the hardware's overflow flags folded into the virtual PMOVSSET and
    cleared; the guest's counters and interrupts disabled; MDCR_EL2.HPMN back to N."""
    for idx in set_bits(mask):
        state.counters[idx] = t.rd(counter_name(idx))
    r = state.regs
    r["PMSELR_EL0"] = t.rd("PMSELR_EL0")
    r["PMUSERENR_EL0"] = t.rd("PMUSERENR_EL0")
    r["PMCR_EL0"] = t.rd("PMCR_EL0") & ARMV8_PMU_PMCR_MASK
    r["PMCNTENSET_EL0"] = t.rd("PMCNTENSET_EL0") & mask
    r["PMINTENSET_EL1"] = t.rd("PMINTENSET_EL1") & mask
    ovs = t.rd("PMOVSSET_EL0") & mask
    r["PMOVSSET_EL0"] |= ovs
    t.wr("PMOVSCLR_EL0", ovs)
    t.wr("PMCNTENCLR_EL0", mask)
    t.wr("PMINTENCLR_EL1", mask)
    t.mdcr(n_host, False)
