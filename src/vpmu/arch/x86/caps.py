"""x86 PMU capability records and the CPUID / PERF_CAPABILITIES words derived from them.

Vocabulary (the KVM ``NOTE:`` block's index spaces, used with exactly these names):
- *MSR address*: where software reads or writes a register (``IA32_PERFEVTSEL0`` = 0x186).
- *RDPMC index*: ECX of RDPMC: GP counter ``i`` is ``i``; fixed counter ``i`` is ``1<<30 | i``;
  bit 31 requests a fast (32-bit) read.
- *global counter index*: a counter's bit in GLOBAL_CTRL/STATUS: GP ``i`` is ``i``, fixed ``i``
  is ``32 + i``.

``X86PmuCaps`` describes what the hardware implements. CPUID leaves and PERF_CAPABILITIES are
derived from it, never stored twice, so a preset cannot disagree with its own enumeration.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from vpmu.arch.regs import bits

FIXED_IDX_BASE = 32
"""Global counter index of fixed counter 0 (GLOBAL_CTRL bit 32)."""

RDPMC_FIXED = 1 << 30
"""RDPMC ECX bit selecting the fixed-counter index space (SDM RDPMC)."""

RDPMC_FAST = 1 << 31
"""RDPMC ECX bit requesting a fast read of the low 32 bits (SDM RDPMC)."""

# PERF_CAPABILITIES (IA32_PERF_CAPABILITIES, 0x345) fields, SDM Vol. 4 table 2-2.
PERF_CAP_LBR_FMT = bits(5, 0)
PERF_CAP_PEBS_TRAP = 1 << 6
PERF_CAP_PEBS_ARCH_REG = 1 << 7
PERF_CAP_PEBS_FMT = bits(11, 8)
PERF_CAP_SMM_FREEZE = 1 << 12
PERF_CAP_FW_WRITE = 1 << 13
PERF_CAP_PEBS_BASELINE = 1 << 14
PERF_CAP_PERF_METRICS = 1 << 15
PERF_CAP_PEBS_TIMING_INFO = 1 << 17

CPUID_1_ECX_PDCM = 1 << 15
"""CPUID.1:ECX[15]: IA32_PERF_CAPABILITIES exists."""

CPUID_8000_0001_ECX_PERFCTR_CORE = 1 << 23
"""CPUID 0x80000001 ECX[23] PerfCtrExtCore: six core counters at 0xC0010200 (APM)."""

CPUID_8000_0022_EAX_PERFMON_V2 = 1 << 0
"""CPUID 0x80000022 EAX[0] PerfMonV2: global control/status MSRs (APM)."""

CPUID_1_EDX_CLFLUSH = 1 << 19
CPUID_7_EBX_CLFLUSHOPT = 1 << 23
CPUID_7_EDX_SPEC_CTRL = 1 << 26
CPUID_8000_0008_EBX_IBPB = 1 << 12


@dataclass(frozen=True, slots=True)
class X86PmuCaps:
    """What one x86 core's PMU implements: the single source of its enumeration.

    Intel fields follow CPUID.0xA (SDM 18.2); AMD fields follow CPUID 0x80000001/0x80000022
    (APM 13.2). A field that does not apply to the vendor keeps its default.
    """

    vendor: str
    """``"intel"`` or ``"amd"``."""
    family: int
    model: int
    version: int = 0
    """Intel architectural PMU version (CPUID.0xA:EAX[7:0]); AMD: 2 with PerfMonV2, else 0."""
    n_gp: int = 0
    gp_width: int = 48
    n_fixed: int = 0
    fixed_width: int = 48
    ebx_length: int = 0
    """CPUID.0xA:EAX[31:24]: number of architectural events described by EBX."""
    ebx_unavailable: int = 0
    """CPUID.0xA:EBX: bit i set = architectural event i not available."""
    fixed_mask: int = 0
    """CPUID.0xA:ECX (v5+): bitmap of supported fixed counters."""
    anythread_deprecated: bool = False
    """CPUID.0xA:EDX[15]: the AnyThread bits are reserved."""
    pdcm: bool = False
    lbr_format: int = 0
    pebs_format: int = 0
    perf_cap_extra: int = 0
    """Other PERF_CAPABILITIES bits the part reports (PEBS trap, baseline, metrics ...)."""
    fw_write: bool = False
    lbr_depth: int = 0
    tsx: bool = False
    """IN_TX / IN_TXCP event-select bits 32/33 exist (RTM/HLE)."""
    rdpmc_fast_read: bool = False
    """RDPMC honours ECX[31]; False: ECX[31] set takes #GP."""
    perfctr_core: bool = False
    perfmon_v2: bool = False
    clflush: bool = True
    """CPUID.1:EDX[19] CLFLUSH (the suites force an LLC miss with it)."""
    clflushopt: bool = True
    """CPUID.(7,0):EBX[23] CLFLUSHOPT."""
    ibpb: bool = True
    """IBPB: Intel CPUID.(7,0):EDX[26] SPEC_CTRL, AMD CPUID 0x80000008 EBX[12] (the suites
    force a branch miss with it)."""

    @property
    def arch(self) -> str:
        """The architecture (``vpmu.arch.caps.PmuCaps``). A property, not a ``ClassVar``: a
        compiled frozen slots dataclass with a ``ClassVar`` fails at import."""
        return "x86"

    def replace(self, **changes: object) -> X86PmuCaps:
        """A variant of these capabilities (the conformance sweeps build hardware variants)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        """The PMU's generation as listings show it: Intel's architectural version, AMD's
        PerfMonV2 or legacy counters."""
        if self.is_intel:
            return f"v{self.version}"
        return "PerfMonV2" if self.perfmon_v2 else "legacy"

    @property
    def counters_label(self) -> str:
        """"8 GP + 4 fixed" (``PmuCaps.counters_label``)."""
        return f"{self.n_gp} GP + {len(self.fixed_indices)} fixed"

    @property
    def virt_ext(self) -> str:
        """The vendor's virtualization extension, as KVM's kvm_exit tracepoint names it
        ("vmx" or "svm")."""
        return "vmx" if self.is_intel else "svm"

    @property
    def counter_mask(self) -> int:
        """GP counters at 0.., fixed counters at 32.. (``PmuCaps.counter_mask``)."""
        return self.gp_mask | self.fixed_global_mask

    @property
    def user_read_indices(self) -> tuple[int, ...]:
        """RDPMC ECX of every counter: GP i as i, fixed i as RDPMC_FIXED | i."""
        return (*range(self.n_gp), *(RDPMC_FIXED | f for f in self.fixed_indices))

    def width(self, idx: int) -> int:
        """Bits counter ``idx`` stores: the GP or the fixed width."""
        return self.fixed_width if idx >= FIXED_IDX_BASE else self.gp_width

    # -- derived facts -------------------------------------------------------------------
    @property
    def is_intel(self) -> bool:
        """Intel architectural PMU semantics apply."""
        return self.vendor == "intel"

    @property
    def has_global_ctrl(self) -> bool:
        """GLOBAL_CTRL/STATUS/OVF_CTRL exist: Intel v2+ or AMD PerfMonV2."""
        return self.version >= 2 if self.is_intel else self.perfmon_v2

    @property
    def gp_mask(self) -> int:
        """Bits of the implemented GP counters in the global counter index space."""
        return bits(self.n_gp - 1, 0) if self.n_gp else 0

    def fixed_supported(self, i: int) -> bool:
        """Fixed counter ``i`` exists: ``i`` < count, or (v5+) ECX bit ``i`` (SDM 18.2.5)."""
        if not self.is_intel or self.version < 2:
            return False
        return i < self.n_fixed or (self.version >= 5 and bool(self.fixed_mask >> i & 1))

    @property
    def fixed_indices(self) -> tuple[int, ...]:
        """The fixed counters that exist (at most 16 are architecturally addressable)."""
        return _fixed_indices(self)

    @property
    def fixed_global_mask(self) -> int:
        """Bits of the implemented fixed counters in the global counter index space."""
        return sum(1 << (FIXED_IDX_BASE + i) for i in self.fixed_indices)

    @property
    def perf_capabilities(self) -> int:
        """IA32_PERF_CAPABILITIES as the part reports it (meaningful only with PDCM)."""
        value = (self.lbr_format & 0x3F) | ((self.pebs_format & 0xF) << 8) | self.perf_cap_extra
        return value | (PERF_CAP_FW_WRITE if self.fw_write else 0)


def x86_caps(caps: object) -> X86PmuCaps:
    """``caps`` as x86's (a preset's ``PmuCaps`` read by x86 code); TypeError for another
    architecture's, which x86 code must never be handed."""
    if not isinstance(caps, X86PmuCaps):
        raise TypeError(f"x86 code needs X86PmuCaps, not {caps!r}")
    return caps


@functools.lru_cache(maxsize=256)
def _fixed_indices(caps: X86PmuCaps) -> tuple[int, ...]:
    """X86PmuCaps.fixed_indices, computed once per shape (it is on hot paths)."""
    return tuple(i for i in range(16) if caps.fixed_supported(i))


def cpuid(caps: X86PmuCaps, leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
    """The CPUID words this PMU contributes; leaves it does not describe read as zeros.

    Only the bits the PMU and its conformance suites consult are modelled: leaf 0 vendor,
    leaf 1 family/model, PDCM and CLFLUSH, leaf 7.0 CLFLUSHOPT and SPEC_CTRL (IBPB), leaf 0xA
    (Intel), leaves 0x80000001/0x80000008/0x80000022 (AMD).
    """
    if leaf == 0:
        return _vendor_leaf(caps)
    if leaf == 1:
        edx = CPUID_1_EDX_CLFLUSH if caps.clflush else 0
        return (_family_model_eax(caps), 0, CPUID_1_ECX_PDCM if caps.pdcm else 0, edx)
    if leaf == 7 and subleaf == 0:
        ebx = CPUID_7_EBX_CLFLUSHOPT if caps.clflushopt else 0
        return (0, ebx, 0, CPUID_7_EDX_SPEC_CTRL if caps.ibpb and caps.is_intel else 0)
    if leaf == 0x8000_0008 and not caps.is_intel:
        return (0, CPUID_8000_0008_EBX_IBPB if caps.ibpb else 0, 0, 0)
    if leaf == 0xA and caps.is_intel:
        return _leaf_0xa(caps)
    if leaf == 0x8000_0000:
        return (0x8000_0022 if not caps.is_intel else 0x8000_0008, 0, 0, 0)
    if leaf == 0x8000_0001 and not caps.is_intel:
        return (0, 0, CPUID_8000_0001_ECX_PERFCTR_CORE if caps.perfctr_core else 0, 0)
    if leaf == 0x8000_0022 and not caps.is_intel and caps.perfmon_v2:
        return (CPUID_8000_0022_EAX_PERFMON_V2, caps.n_gp & 0xF, 0, 0)
    return (0, 0, 0, 0)


def _vendor_leaf(caps: X86PmuCaps) -> tuple[int, int, int, int]:
    """Leaf 0: max leaf and the vendor string in EBX, EDX, ECX order."""
    name = b"GenuineIntel" if caps.is_intel else b"AuthenticAMD"
    ebx, edx, ecx = (int.from_bytes(name[i:i + 4], "little") for i in (0, 4, 8))
    return (0x1F if caps.is_intel else 0x10, ebx, ecx, edx)


def _family_model_eax(caps: X86PmuCaps) -> int:
    """CPUID.1:EAX with the family/model split into base and extended fields (SDM CPUID)."""
    fam, model = caps.family, caps.model
    base_fam = min(fam, 0xF)
    ext_fam = fam - 0xF if fam > 0xF else 0
    return ((model & 0xF) << 4) | (base_fam << 8) | ((model >> 4) << 16) | (ext_fam << 20)


def _leaf_0xa(caps: X86PmuCaps) -> tuple[int, int, int, int]:
    """CPUID.0xA (SDM 18.2, "Architectural Performance Monitoring Leaf")."""
    if caps.version == 0:
        return (0, 0, 0, 0)
    eax = caps.version | (caps.n_gp << 8) | (caps.gp_width << 16) | (caps.ebx_length << 24)
    ebx = caps.ebx_unavailable & bits(caps.ebx_length - 1, 0) if caps.ebx_length else 0
    ecx = caps.fixed_mask if caps.version >= 5 else 0
    edx = 0
    if caps.version >= 2:
        edx = caps.n_fixed | (caps.fixed_width << 5)
        edx |= (1 << 15) if caps.anythread_deprecated else 0
    return (eax, ebx, ecx, edx)


@dataclass(frozen=True, slots=True)
class GuestPmuView:
    """The PMU as a guest program discovers it from CPUID and PERF_CAPABILITIES.

    This is what kvm-unit-tests' ``lib/x86/pmu.c`` and the selftests' ``pmu.h`` compute; the
    ported suites use it instead of peeking at the hardware's caps.
    """

    is_intel: bool
    family: int
    model: int
    version: int
    n_gp: int
    gp_width: int
    n_fixed: int
    fixed_width: int
    ebx_length: int
    ebx_unavailable: int
    fixed_mask: int
    perf_capabilities: int
    perfctr_core: bool
    perfmon_v2: bool

    @property
    def fw_write(self) -> bool:
        """Full-width counter writes through IA32_A_PMCx are available."""
        return bool(self.perf_capabilities & PERF_CAP_FW_WRITE)

    @property
    def has_global_ctrl(self) -> bool:
        """The global control MSRs are usable (Intel v2+, AMD PerfMonV2)."""
        return self.version >= 2 if self.is_intel else self.perfmon_v2

    def arch_event_available(self, i: int) -> bool:
        """kvm-unit-tests rule: event i available iff EBX bit clear and i < EBX length."""
        return i < self.ebx_length and not self.ebx_unavailable >> i & 1

    def fixed_supported(self, i: int) -> bool:
        """selftests rule: ``i`` < count, or ECX bit ``i`` on v5+."""
        return i < self.n_fixed or (self.version >= 5 and bool(self.fixed_mask >> i & 1))


def discover(words: dict[tuple[int, int], tuple[int, int, int, int]],
             perf_capabilities: int) -> GuestPmuView:
    """Decode CPUID words (keyed by (leaf, subleaf)) the way guest software does."""
    vendor = words[(0, 0)]
    is_intel = vendor[1] == int.from_bytes(b"Genu", "little")
    eax1 = words[(1, 0)][0]
    base_fam, ext_fam = (eax1 >> 8) & 0xF, (eax1 >> 20) & 0xFF
    family = base_fam + (ext_fam if base_fam == 0xF else 0)
    model = ((eax1 >> 4) & 0xF) | (((eax1 >> 16) & 0xF) << 4)
    if is_intel:
        a, b, c, d = words[(0xA, 0)]
        version = a & 0xFF
        return GuestPmuView(True, family, model, version, (a >> 8) & 0xFF, (a >> 16) & 0xFF,
                            d & 0x1F if version > 1 else 0, (d >> 5) & 0xFF if version > 1 else 0,
                            (a >> 24) & 0xFF, b, c, perf_capabilities, False, False)
    core = bool(words[(0x8000_0001, 0)][2] & CPUID_8000_0001_ECX_PERFCTR_CORE)
    v2 = bool(words[(0x8000_0022, 0)][0] & CPUID_8000_0022_EAX_PERFMON_V2)
    n = (words[(0x8000_0022, 0)][1] & 0xF) if v2 else (6 if core else 4)
    return GuestPmuView(False, family, model, 2 if v2 else 0, n, 48, 0, 0, 0, 0, 0, 0, core, v2)
