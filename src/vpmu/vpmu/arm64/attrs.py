"""The vCPU PMU device attributes a VMM sets (group KVM_ARM_VCPU_PMU_V3_CTRL), with KVM's
ordering and error rules (arch/arm64/kvm/pmu-emul.c@v6.16 kvm_arm_pmu_v3_set_attr,
kvm_arm_pmu_v3_set_pmu, kvm_arm_pmu_v3_set_nr_counters, kvm_arm_pmu_v3_init,
kvm_arm_pmu_v3_enable; Documentation/virt/kvm/devices/vcpu.rst@v6.16).

A failure is a value (``Errno``), as the ioctl's return. The VM-wide state is ``KvmArch``
(``host_pmu.py``), the per-vCPU state ``VcpuPmuAttrs``. FIXED_COUNTERS_ONLY (attribute 5) is
the proposal "KVM: arm64: PMU: Use multiple host PMUs" (Akihiko Odaki, v8 10 Jul 2026, not
in mainline): an explicit opt-in, never a default.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpmu.arch.arm64.caps import PMUVER_V3, PMUVER_V3P5, ArmPmuCaps
from vpmu.vpmu.arm64.host_pmu import KvmArch, set_arm_pmu
from vpmu.vpmu.arm64.pmu_filter import KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY, EventFilter

if TYPE_CHECKING:
    from vpmu.host.perf.core import PerfSubsystem

PMUVER_IMP = PMUVER_V3
"""ID_AA64DFR0_EL1.PMUVer of PMUv3 (10-bit event numbers); from PMUv3p1 they are 16-bit."""
VGIC_NR_PRIVATE_IRQS, VGIC_NR_SGIS = 32, 16
"""INTIDs 16-31 are PPIs, 32 and up SPIs (irq_is_ppi / irq_is_spi)."""
VGIC_MAX_SPI = 1019


class PmuV3Attr(enum.IntEnum):
    """The attributes' ids (arch/arm64/include/uapi/asm/kvm.h)."""

    IRQ = 0
    INIT = 1
    FILTER = 2
    SET_PMU = 3
    SET_NR_COUNTERS = 4
    FIXED_COUNTERS_ONLY = 5
    """The proposal's id (v8); not in mainline."""


class Errno(enum.IntEnum):
    """The errors the attributes return, valued as Linux's errno numbers."""

    EPERM = 1
    ENXIO = 6
    EBUSY = 16
    ENODEV = 19
    EINVAL = 22

    def __repr__(self) -> str:
        return f"Errno.{self.name}"


@dataclass(eq=False)
class VcpuPmuAttrs:
    """What one vCPU keeps of its attributes (``struct kvm_pmu``'s irq_num and created)."""

    has_pmu: bool = True
    """The vCPU was initialised with feature KVM_ARM_VCPU_PMU_V3."""
    irq_num: int | None = None
    created: bool = False
    """KVM_ARM_VCPU_PMU_V3_INIT succeeded."""


def max_counters(kvm: KvmArch) -> int:
    """``kvm_arm_pmu_get_max_counters``: the VM's PMU's event counters (0 with
    fixed-counters-only: only the cycle counter; the guest's maximum when partitioned)."""
    if kvm.fixed_counters_only or kvm.host_caps is None:
        return 0
    if kvm.partitioned:  # the partitioned series: the driver's max_guest_counters
        return kvm.max_guest_counters
    return kvm.host_caps.n_counters


def nr_filter_events(host_pmuver: int) -> int:
    """``__kvm_pmu_event_mask(kvm_arm_pmu_get_pmuver_limit()) + 1``: the filter's event
    space, from the host's PMUVer (capped at PMUv3p5), not the guest's."""
    return 1 << (10 if min(host_pmuver, PMUVER_V3P5) == PMUVER_IMP else 16)


def set_attr(kvm: KvmArch, vcpu: VcpuPmuAttrs, perf: PerfSubsystem, attr: int,
             arg: object = None, *, irqchip_in_kernel: bool = True) -> Errno | None:
    """``kvm_arm_pmu_v3_set_attr``: None on success, else the errno. ENODEV without the
    PMU feature, EBUSY once this vCPU's PMU is created, ENXIO for an unknown attribute."""
    if not vcpu.has_pmu:
        return Errno.ENODEV
    if vcpu.created:
        return Errno.EBUSY
    match attr:
        case PmuV3Attr.IRQ:
            return _set_irq(kvm, vcpu, arg, irqchip_in_kernel)
        case PmuV3Attr.FILTER:
            return _set_filter(kvm, arg)
        case PmuV3Attr.SET_PMU:
            return _set_pmu(kvm, perf, arg)
        case PmuV3Attr.SET_NR_COUNTERS:
            return _set_nr_counters(kvm, arg)
        case PmuV3Attr.INIT:
            if irqchip_in_kernel and vcpu.irq_num is None:
                return Errno.ENXIO
            vcpu.created = True
            return None
        case PmuV3Attr.FIXED_COUNTERS_ONLY:
            return _set_fixed_counters_only(kvm, vcpu)
    return Errno.ENXIO


def get_attr(vcpu: VcpuPmuAttrs, attr: int, *, irqchip_in_kernel: bool = True,
             kvm: KvmArch | None = None) -> int | Errno:
    """``kvm_arm_pmu_v3_get_attr``: the IRQ (EINVAL without an in-kernel irqchip, ENODEV
    without a PMU, ENXIO if unset); the proposal's flag reads 0 when set; else ENXIO."""
    if attr == PmuV3Attr.IRQ:
        if not irqchip_in_kernel:
            return Errno.EINVAL
        if not vcpu.has_pmu:
            return Errno.ENODEV
        return Errno.ENXIO if vcpu.irq_num is None else vcpu.irq_num
    if attr == PmuV3Attr.FIXED_COUNTERS_ONLY and kvm is not None and kvm.fixed_counters_only:
        return 0
    return Errno.ENXIO


def has_attr(vcpu: VcpuPmuAttrs, attr: int) -> Errno | None:
    """``kvm_arm_pmu_v3_has_attr``: attributes 0-4 (and the proposal's 5) with a PMU."""
    if attr in tuple(PmuV3Attr) and vcpu.has_pmu:
        return None
    return Errno.ENXIO


def _set_irq(kvm: KvmArch, vcpu: VcpuPmuAttrs, irq: object, in_kernel: bool) -> Errno | None:
    """A PPI, the same on every vCPU, or an SPI no other vCPU uses (pmu_irq_is_valid)."""
    if not in_kernel or not isinstance(irq, int):
        return Errno.EINVAL
    ppi = VGIC_NR_SGIS <= irq < VGIC_NR_PRIVATE_IRQS
    if not (ppi or VGIC_NR_PRIVATE_IRQS <= irq <= VGIC_MAX_SPI):
        return Errno.EINVAL
    others = [v.irq_num for v in kvm.vcpus if v is not vcpu and v.irq_num is not None]
    if any((o != irq) if ppi else (o == irq) for o in others):
        return Errno.EINVAL
    if vcpu.irq_num is not None:
        return Errno.EBUSY
    vcpu.irq_num = irq
    return None


def _set_filter(kvm: KvmArch, arg: object) -> Errno | None:
    """The range must fit the host PMUVer's event space and the action be ALLOW or DENY
    (EINVAL), before the VM ran (EBUSY); the first filter sets the default."""
    if not isinstance(arg, EventFilter):
        return Errno.EINVAL
    nr_events = nr_filter_events(kvm.host_pmuver)
    if arg.base_event + arg.nevents > nr_events or \
            arg.action not in (KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY):
        return Errno.EINVAL
    if kvm.ran_once:
        return Errno.EBUSY
    if kvm.fixed_counters_only:  # the proposal: no filter with fixed-counters-only
        return Errno.EBUSY
    kvm.pmu_filter = arg.apply(kvm.pmu_filter, nr_events)
    return None


def _set_pmu(kvm: KvmArch, perf: PerfSubsystem, pmu_id: object) -> Errno | None:
    """``kvm_arm_pmu_v3_set_pmu``: the PMU with that perf type (ENXIO if none); EBUSY once
    the VM ran, or with a filter and a different PMU, or (the proposal) with
    fixed-counters-only. N resets to its maximum; supported_cpus := its CPUs."""
    pmu = next((p for p in perf.pmus if p.type == pmu_id), None)
    if pmu is None:
        return Errno.ENXIO
    if kvm.ran_once or (kvm.pmu_filter is not None and kvm.arm_pmu != pmu) \
            or kvm.fixed_counters_only:
        return Errno.EBUSY
    set_arm_pmu(kvm, perf, pmu)
    kvm.supported_cpus = pmu.cpus
    kvm.explicit = True
    return None


def _set_nr_counters(kvm: KvmArch, n: object) -> Errno | None:
    """``kvm_arm_pmu_v3_set_nr_counters``: EINVAL without a PMU (the default one counts) or
    above its maximum."""
    if kvm.arm_pmu is None and not kvm.fixed_counters_only:
        return Errno.EINVAL
    if not isinstance(n, int) or not 0 <= n <= max_counters(kvm):
        return Errno.EINVAL
    kvm.nr_pmu_counters = n
    return None


def _set_fixed_counters_only(kvm: KvmArch, vcpu: VcpuPmuAttrs) -> Errno | None:
    """The proposal (v8): EBUSY once a vCPU ran, this vCPU's PMU is created, a filter
    exists or SET_PMU was used; N becomes 0, PMCEID reads 0, supported_cpus stays all."""
    if kvm.ran_once or vcpu.created or kvm.pmu_filter is not None or kvm.explicit:
        return Errno.EBUSY
    kvm.fixed_counters_only = True
    kvm.nr_pmu_counters = 0
    return None


def pmu_v3_enable(kvm: KvmArch, vcpu: VcpuPmuAttrs, *,
                  irqchip_in_kernel: bool = True) -> Errno | None:
    """``kvm_arm_pmu_v3_enable`` at the first KVM_RUN: EINVAL unless the PMU was created
    and, with an in-kernel irqchip, its IRQ set. The VM's configuration freezes."""
    if not vcpu.has_pmu:
        return None
    if not vcpu.created or (irqchip_in_kernel and vcpu.irq_num is None):
        return Errno.EINVAL
    kvm.ran_once = True
    return None


def guest_caps(kvm: KvmArch) -> ArmPmuCaps | None:
    """The guest PMU the VM's configuration gives: the VM's PMU's caps with N =
    ``nr_pmu_counters``, PMCEID under the filter, none with fixed-counters-only."""
    caps = kvm.guest_caps
    if caps is None:
        return None
    n = kvm.nr_pmu_counters if kvm.nr_pmu_counters is not None else caps.n_counters
    events = frozenset() if kvm.fixed_counters_only else caps.events
    if kvm.pmu_filter is not None:
        events = frozenset(e for e in events if kvm.pmu_filter.allows(e))
    return caps.replace(n_counters=n, events=events)
