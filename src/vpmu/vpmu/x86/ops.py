"""KVM's x86 vendor ops (``struct kvm_pmu_ops``, arch/x86/kvm/pmu.h): what differs between
Intel (vmx/pmu_intel.c) and AMD (svm/pmu.c) for every x86 design, as a table rather than as
branches in each design.

What is here is shared by every x86 design and identical in each: the event-select bits the
event filter compares (``EVENTSEL_EVENT``), the RDPMC index space (``rdpmc_ecx_to_pmc``), what
a selector write keeps (``set_msr_value``: AMD drops reserved bits, Intel faults on them before
this is reached), which fixed counters KVM models (``fixed_indices``), and the global
registers' MSRs (the mediated series' ``PERF_GLOBAL_CTRL`` and friends).
"""

from __future__ import annotations

from dataclasses import dataclass

from vpmu.arch.regs import RegisterSpec, Role
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, RDPMC_FIXED, X86PmuCaps
from vpmu.vpmu.filter import AMD64_EVENTSEL_EVENT, ARCH_PERFMON_EVENTSEL_EVENT

KVM_MAX_PMU_VERSION = 2
"""The highest architectural PMU version KVM presents (kvm_init_pmu_capability)."""
INSTRUCTIONS_RETIRED = 0x00C0
"""kvm_pmu_eventsel.INSTRUCTIONS_RETIRED (event 0xC0 umask 0, Intel and AMD): what an
instruction KVM emulates or skips counts on (kvm_pmu_instruction_retired)."""
AMD64_RAW_EVENT_MASK_NB = 0xF_0000_FFFF
"""The event select (AMD's 12 bits) and the unit mask: what pmc_is_event_match compares."""


def is_instructions_retired(eventsel: int) -> bool:
    """pmc_is_event_match(pmc, kvm_pmu_eventsel.INSTRUCTIONS_RETIRED)."""
    return eventsel & AMD64_RAW_EVENT_MASK_NB == INSTRUCTIONS_RETIRED


@dataclass(frozen=True)
class X86PmuOps:
    """One vendor's ops."""

    vendor: str
    EVENTSEL_EVENT: int
    """The selector bits that are the event (the filter's key): 8 on Intel, 12 on AMD."""
    GLOBAL_STATUS: int
    """GLOBAL_STATUS's MSR."""
    GLOBAL_STATUS_CLR: int
    """The MSR that clears GLOBAL_STATUS bits (Intel OVF_CTRL, AMD STATUS_CLR)."""
    GLOBAL_STATUS_SET: int
    """The MSR that sets GLOBAL_STATUS bits."""
    PERF_GLOBAL_CTRL: int
    """GLOBAL_CTRL's MSR."""
    fixed_counters: bool
    """Fixed counters exist in this vendor's architecture (RDPMC bit 30 names them)."""
    drops_reserved_selector_bits: bool
    """amd_pmu_set_msr: reserved selector bits are dropped (Intel: they fault)."""

    def rdpmc_ecx_to_pmc(self, ecx: int) -> int | None:
        """The global counter index RDPMC ``ecx`` names, or None for #GP: bit 30 the fixed
        space (Intel), bits 15:0 the counter, nothing else set."""
        fixed = bool(ecx & RDPMC_FIXED)
        if ecx & ~(RDPMC_FIXED | 0xFFFF) or (fixed and not self.fixed_counters):
            return None
        return (FIXED_IDX_BASE if fixed else 0) + (ecx & 0xFFFF)

    def set_msr_value(self, spec: RegisterSpec, value: int) -> int:
        """What a guest's write of ``value`` to ``spec`` is, before the declared checks."""
        if spec.role is Role.SELECTOR and self.drops_reserved_selector_bits:
            return value & spec.defined_mask
        return value

    def nr_fixed(self, caps: X86PmuCaps) -> int:
        """The fixed counters a PMU of this vendor has (an AMD PMU has none)."""
        return caps.n_fixed if self.fixed_counters else 0

    def fixed_indices(self, caps: X86PmuCaps) -> tuple[int, ...]:
        """The fixed counters KVM gives the guest (nr_arch_fixed_counters): v2+ Intel's."""
        return caps.fixed_indices if self.fixed_counters and caps.version >= 2 else ()


    def refresh(self, host: X86PmuCaps, limits: CapLimits) -> X86PmuCaps:
        """The PMU the guest enumerates (kvm_init_pmu_capability + the vendor's refresh):
        the vendor's subclass says."""
        raise NotImplementedError


@dataclass(frozen=True)
class CapLimits:
    """What KVM lets a design's guest enumerate of the host's PMU."""

    max_version: int = KVM_MAX_PMU_VERSION
    """At most this PMU version."""
    max_gp: int | None = None
    """At most this many GP counters (Intel; None: the host's)."""
    max_fixed: int | None = None
    """At most this many fixed counters (Intel; None: the host's)."""
    n_gp: int | None = None
    """The GP counters userspace gives the guest (None: the host's)."""
    lbr: bool = False
    """The guest gets the host's LBR format and depth (Intel, legacy LBR only)."""


@dataclass(frozen=True)
class IntelOps(X86PmuOps):
    """vmx/pmu_intel.c."""

    def refresh(self, host: X86PmuCaps, limits: CapLimits) -> X86PmuCaps:
        """intel_pmu_refresh: version capped, fixed counters from v2, GP counters from v1;
        PERF_CAPABILITIES keeps full-width writes and, if the design offers LBR, the host's
        LBR format and depth (vmx_get_perf_capabilities: only without architectural LBR,
        commit 098f4c061ea1, "KVM: x86/pmu: Disallow legacy LBRs if architectural LBRs are
        available"); no PEBS or metrics here."""
        version = min(host.version, limits.max_version)
        n_fixed = _capped(host.n_fixed, limits.max_fixed) if version >= 2 else 0
        wanted = host.n_gp if limits.n_gp is None else limits.n_gp
        n_gp = _capped(wanted, limits.max_gp) if version else 0
        lbr = limits.lbr and msrs.has_legacy_lbr(host)
        return host.replace(version=version, n_gp=n_gp, n_fixed=n_fixed, fixed_mask=0,
                            lbr_format=host.lbr_format if lbr else 0,
                            lbr_depth=host.lbr_depth if lbr else 0, pebs_format=0,
                            perf_cap_extra=0, rdpmc_fast_read=False)


@dataclass(frozen=True)
class AmdOps(X86PmuOps):
    """svm/pmu.c."""

    def refresh(self, host: X86PmuCaps, limits: CapLimits) -> X86PmuCaps:
        """amd_pmu_refresh: the host's counters (or the ones userspace asked for), no TSX
        qualifiers, no fast RDPMC."""
        if limits.n_gp is None:
            return host.replace(tsx=False, rdpmc_fast_read=False)
        return host.replace(n_gp=limits.n_gp, tsx=False, rdpmc_fast_read=False)


def _capped(n: int, cap: int | None) -> int:
    return n if cap is None else min(n, cap)


INTEL_OPS = IntelOps(
    "intel", ARCH_PERFMON_EVENTSEL_EVENT, msrs.IA32_PERF_GLOBAL_STATUS,
    msrs.IA32_PERF_GLOBAL_OVF_CTRL, msrs.IA32_PERF_GLOBAL_STATUS_SET,
    msrs.IA32_PERF_GLOBAL_CTRL, fixed_counters=True, drops_reserved_selector_bits=False)
AMD_OPS = AmdOps(
    "amd", AMD64_EVENTSEL_EVENT, msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS,
    msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR, msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET,
    msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL, fixed_counters=False,
    drops_reserved_selector_bits=True)


def ops_for(caps: X86PmuCaps) -> X86PmuOps:
    """The vendor ops of a PMU."""
    return INTEL_OPS if caps.is_intel else AMD_OPS
