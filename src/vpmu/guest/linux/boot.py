"""PMU discovery at boot, as init_hw_perf_events does it (arch/x86/events/core.c).

Intel (intel_pmu_init): CPUID.0xA for version, counters, width and EBX event availability;
with CPUID.1:ECX.PDCM, IA32_PERF_CAPABILITIES, whose FW_WRITE makes Linux write GP counters
through the full-width aliases IA32_A_PMCx. AMD (amd_pmu_init): CPUID 0x80000001 PerfCtrCore
selects the six F15H counters over the four K7 ones; CPUID 0x80000022 PerfMonV2 adds the global
MSRs and gives the counter count. Then check_hw_exists probes the MSRs (a hypervisor without a
vPMU fails it) and perf_events_lapic_init programs LVTPC for NMI delivery.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import CPUID_1_ECX_PDCM, FIXED_IDX_BASE, GuestPmuView, discover
from vpmu.guest.port import Cpuid, Op, Rdmsr, Wrmsr

LVTPC_NMI = msrs.LVT_DELIVERY_NMI << 8
"""apic_write(APIC_LVTPC, APIC_DM_NMI): NMI delivery, vector 0, unmasked."""
AMD_CNTVAL_BITS = 48
"""AMD counters are 48 bits wide (amd_pmu's cntval_bits)."""
_VENDORS = {b"GenuineIntel": "intel", b"AuthenticAMD": "amd"}
_GENU = int.from_bytes(b"Genu", "little")


@dataclass(frozen=True, slots=True)
class PmuInfo:
    """What ``x86_pmu`` holds after init: the counters Linux uses and how it reaches them."""

    view: GuestPmuView
    """The decoded enumeration."""
    fixed: tuple[int, ...]
    """Fixed counters Linux may use (intel_ctrl's fixed bits)."""

    @property
    def is_intel(self) -> bool:
        """Intel architectural perfmon, else AMD."""
        return self.view.is_intel

    @property
    def n_gp(self) -> int:
        """x86_pmu.num_counters."""
        return self.view.n_gp

    @property
    def cntval_bits(self) -> int:
        """Counter width Linux assumes for every counter, fixed ones included."""
        return self.view.gp_width if self.is_intel else AMD_CNTVAL_BITS

    @property
    def cntval_mask(self) -> int:
        """x86_pmu.cntval_mask."""
        return (1 << self.cntval_bits) - 1

    @property
    def max_period(self) -> int:
        """Intel: 2^31-1, or cntval_mask >> 1 with full-width writes; AMD: 2^47-1."""
        if not self.is_intel:
            return (1 << 47) - 1
        return self.cntval_mask >> 1 if self.view.fw_write else (1 << 31) - 1

    @property
    def has_global_ctrl(self) -> bool:
        """Intel v2+ or AMD PerfMonV2."""
        return self.view.has_global_ctrl

    @property
    def intel_ctrl(self) -> int:
        """What x86_pmu.enable_all writes to GLOBAL_CTRL: every GP and fixed counter Linux
        knows (x86_pmu.intel_ctrl / amd_pmu_global_cntr_mask), assigned or not."""
        gp = (1 << self.n_gp) - 1
        return gp | sum(1 << (FIXED_IDX_BASE + i) for i in self.fixed)

    def eventsel(self, idx: int) -> int:
        """x86_pmu_config_addr(idx)."""
        if self.is_intel:
            return msrs.IA32_PERFEVTSEL0 + idx
        if self.view.perfctr_core:
            return msrs.MSR_F15H_PERF_CTL0 + 2 * idx
        return msrs.MSR_K7_EVNTSEL0 + idx

    def perfctr(self, idx: int) -> int:
        """x86_pmu_event_addr(idx): IA32_A_PMCx with full-width writes, else IA32_PMCx."""
        if self.is_intel:
            return (msrs.IA32_A_PMC0 if self.view.fw_write else msrs.IA32_PMC0) + idx
        if self.view.perfctr_core:
            return msrs.MSR_F15H_PERF_CTR0 + 2 * idx
        return msrs.MSR_K7_PERFCTR0 + idx


def probe(vendor: str | None,
          leaf0: tuple[int, int, int, int] | None = None) -> Generator[Op, Any, PmuInfo | None]:
    """Discover the PMU; None when there is none Linux can use (perf falls back to software
    events and hardware events fail to open). ``vendor`` is used when CPUID leaf 0 does not
    name a known vendor; ``leaf0`` is that leaf if the caller has read it already."""
    if leaf0 is None:
        leaf0 = yield Cpuid(0)
    name = b"".join(r.to_bytes(4, "little") for r in (leaf0[1], leaf0[3], leaf0[2]))
    vendor = _VENDORS.get(name, vendor)
    if vendor not in ("intel", "amd"):
        raise ValueError(f"vendor must be 'intel' or 'amd' when CPUID leaf 0 does not say, "
                         f"not {vendor!r}")
    words = {(0, 0): (0, _GENU if vendor == "intel" else 0, 0, 0), (1, 0): (yield Cpuid(1))}
    leaves = ((0xA, 0),) if vendor == "intel" else ((0x8000_0001, 0), (0x8000_0022, 0))
    for leaf in ((0xA, 0), (0x8000_0001, 0), (0x8000_0022, 0)):
        # Only the vendor's own leaves are read (each CPUID exits under a hypervisor).
        words[leaf] = (yield Cpuid(*leaf)) if leaf in leaves else (0, 0, 0, 0)
    if vendor == "intel" and not words[(0xA, 0)][0] & 0xFF:
        return None  # no architectural perfmon: intel_pmu_init gives up before any MSR
    perf_caps = 0
    if vendor == "intel" and words[(1, 0)][2] & CPUID_1_ECX_PDCM:
        value = yield Rdmsr(msrs.IA32_PERF_CAPABILITIES)
        perf_caps = value if isinstance(value, int) else 0
    view = discover(words, perf_caps)
    fixed = tuple(i for i in range(16) if view.fixed_supported(i)) if view.version >= 2 else ()
    info = PmuInfo(view, fixed if view.is_intel else ())
    if not (yield from check_hw_exists(info)):
        return None
    yield Wrmsr(msrs.X2APIC_LVTPC, LVTPC_NMI)  # perf_events_lapic_init
    return info


def check_hw_exists(info: PmuInfo) -> Generator[Op, Any, bool]:
    """check_hw_exists: the selectors must be readable and not all enabled by the BIOS, and a
    counter must keep a written value (catches emulators that read every MSR as 0)."""
    reg_safe = -1
    for i in range(info.n_gp):
        val = yield Rdmsr(info.eventsel(i))
        if not isinstance(val, int):
            return False
        if not val & msrs.EVTSEL_EN:
            reg_safe = i
    if info.fixed and not isinstance((yield Rdmsr(msrs.IA32_FIXED_CTR_CTRL)), int):
        return False
    if reg_safe == -1:
        return False
    reg = info.perfctr(reg_safe)
    val = yield Rdmsr(reg)
    if not isinstance(val, int):
        return False
    val ^= 0xFFFF
    wrote = yield Wrmsr(reg, val)
    val_new = yield Rdmsr(reg)
    return wrote is None and val_new == val
