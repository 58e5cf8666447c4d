"""The arm64 PMU event filter (KVM_ARM_VCPU_PMU_V3_FILTER, ``struct kvm_pmu_event_filter``
of arch/arm64/include/uapi/asm/kvm.h; arch/arm64/kvm/pmu-emul.c@v6.16).

A VM-wide bitmap of allowed event numbers. The first filter sets the default: an ALLOW
range first means everything else is denied, a DENY range first means everything else is
allowed; later ranges set or clear their bits. It is checked when a counter's perf event is
created (a denied event gets none: the counter does not count) and narrows PMCEID0/1.
SW_INCR and CHAIN are counted in software before the check: filtering them has no effect on
counting (only PMCEID shows it).
"""

from __future__ import annotations

from dataclasses import dataclass

KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY = 0, 1


@dataclass(frozen=True, slots=True)
class EventFilter:
    """One filter range as userspace passes it: ``{base_event u16, nevents u16, action u8}``."""

    base_event: int
    nevents: int
    action: int

    def apply(self, bitmap: FilterBitmap | None, nr_events: int) -> FilterBitmap:
        """The VM's bitmap after this range (a new one, defaulted by this range's action,
        when the VM had none)."""
        if bitmap is None:
            full = (1 << nr_events) - 1
            bitmap = FilterBitmap(nr_events, 0 if self.action == KVM_PMU_EVENT_ALLOW else full)
        mask = ((1 << self.nevents) - 1) << self.base_event
        bits = bitmap.bits | mask if self.action == KVM_PMU_EVENT_ALLOW else bitmap.bits & ~mask
        return FilterBitmap(bitmap.nr_events, bits)


@dataclass(frozen=True, slots=True)
class FilterBitmap:
    """``kvm->arch.pmu_filter``: bit e set = event e allowed."""

    nr_events: int
    bits: int

    def allows(self, event: int) -> bool:
        """``test_bit(eventsel, kvm->arch.pmu_filter)``."""
        return 0 <= event < self.nr_events and bool(self.bits >> event & 1)
