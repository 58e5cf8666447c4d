"""x86 PMU MSRs declared as data (Intel SDM Vol. 3B ch. 20 / Vol. 4; AMD APM Vol. 2 ch. 13).

One declaration per MSR. Which MSRs exist, which bits are fields and which are reserved
depends on the PMU's capabilities (counter counts, widths, version), so each declaration is
built from an ``X86PmuCaps`` by a small function below; the field lists are copied from the
manuals' bit tables. Decoding and fault rules are derived from the declarations by
``vpmu.arch.regs``.

Storage keys: ``gp_ctr[i]``/``gp_sel[i]`` for GP counter ``i`` (Intel and AMD), ``fixed_ctr[i]``,
``FIXED_CTR_CTRL``, ``GLOBAL_CTRL``, ``GLOBAL_STATUS``, and the register names otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

from vpmu.arch.regs import Access, Field, RegisterSpec, Role, bits
from vpmu.arch.x86.caps import FIXED_IDX_BASE, X86PmuCaps

# Intel architectural MSR addresses (SDM Vol. 4, table 2-2).
IA32_PMC0 = 0xC1
IA32_PERFEVTSEL0 = 0x186
IA32_A_PMC0 = 0x4C1
IA32_FIXED_CTR0 = 0x309
IA32_PERF_CAPABILITIES = 0x345
IA32_FIXED_CTR_CTRL = 0x38D
IA32_PERF_GLOBAL_STATUS = 0x38E
IA32_PERF_GLOBAL_CTRL = 0x38F
IA32_PERF_GLOBAL_OVF_CTRL = 0x390
IA32_PERF_GLOBAL_STATUS_SET = 0x391
IA32_DEBUGCTL = 0x1D9
MSR_LBR_SELECT = 0x1C8
MSR_LBR_TOS = 0x1C9
MSR_LBR_CORE_FROM = 0x40
MSR_LBR_CORE_TO = 0x60
"""Core 2 / Atom LBR addresses (kvm-unit-tests pmu_lbr.c probes these first)."""
MSR_LBR_NHM_FROM = 0x680
MSR_LBR_NHM_TO = 0x6C0
MSR_LBR_INFO_0 = 0xDC0
X2APIC_LVTPC = 0x834
"""x2APIC LVT Performance Monitoring register (SDM 11.12.1.2: 0x800 + 0x340/16)."""

# AMD (APM Vol. 2, 13.2).
MSR_K7_EVNTSEL0 = 0xC001_0000
MSR_K7_PERFCTR0 = 0xC001_0004
MSR_F15H_PERF_CTL0 = 0xC001_0200
MSR_F15H_PERF_CTR0 = 0xC001_0201
MSR_AMD64_PERF_CNTR_GLOBAL_STATUS = 0xC000_0300
MSR_AMD64_PERF_CNTR_GLOBAL_CTL = 0xC000_0301
MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR = 0xC000_0302
MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET = 0xC000_0303

# Event-select bits (SDM figure 20-6; APM figure 13-7), for code that composes selectors.
EVTSEL_USR = 1 << 16
EVTSEL_OS = 1 << 17
EVTSEL_EDGE = 1 << 18
EVTSEL_INT = 1 << 20
EVTSEL_EN = 1 << 22
EVTSEL_INV = 1 << 23
AMD_EVTSEL_GUEST_ONLY = 1 << 40
AMD_EVTSEL_HOST_ONLY = 1 << 41

# GLOBAL_STATUS bits above the counters (SDM table 2-2, IA32_PERF_GLOBAL_STATUS).
STATUS_TRACE_TOPA_PMI = 55
STATUS_LBR_FRZ = 58
STATUS_CTR_FRZ = 59
STATUS_ASCI = 60
STATUS_OVF_UNCORE = 61
STATUS_OVF_BUF = 62
STATUS_COND_CHGD = 63

# DEBUGCTL bits (SDM 18.4.1).
DEBUGCTL_LBR = 0
DEBUGCTL_FREEZE_LBRS_ON_PMI = 11
DEBUGCTL_FREEZE_PERFMON_ON_PMI = 12

# LVT entry bits (SDM 11.5.1).
LVT_MASKED = 16
LVT_DELIVERY_FIXED = 0b000
LVT_DELIVERY_NMI = 0b100
PERF_GUEST_MEDIATED_PMI_VECTOR = 0xF5
"""The IRQ vector the LVTPC uses while a mediated vPMU's guest context is loaded (Linux 7.0;
"[PATCH v6 00/44] KVM: x86: Add support for mediated vPMUs", 5 Dec 2025): a PMI for the
guest is then an interrupt, not an NMI."""


def _evtsel_fields(caps: X86PmuCaps, index: int) -> tuple[Field, ...]:
    """IA32_PERFEVTSELx / AMD PERF_CTLx fields (SDM figure 20-6; APM figure 13-7).

    IN_TXCP "may only be set for IA32_PERFEVTSEL2" (SDM 20.3.6.5); KVM reserves it elsewhere.
    """
    common = [
        Field("EVENT_SELECT", 7, 0), Field("UMASK", 15, 8), Field("USR", 16, 16),
        Field("OS", 17, 17), Field("EDGE", 18, 18), Field("INT", 20, 20),
        Field("EN", 22, 22), Field("INV", 23, 23), Field("CMASK", 31, 24),
    ]
    if caps.is_intel:
        common.append(Field("PC", 19, 19, doc="pin control"))
        if caps.version >= 3 and not caps.anythread_deprecated:
            common.append(Field("ANY", 21, 21, doc="AnyThread (v3+, until deprecated)"))
        if caps.tsx:
            common.append(Field("IN_TX", 32, 32))
            if index == 2:
                common.append(Field("IN_TXCP", 33, 33))
    else:
        common += [Field("EVENT_SELECT_HI", 35, 32, doc="event select bits 11:8"),
                   Field("GUEST_ONLY", 40, 40), Field("HOST_ONLY", 41, 41)]
    return tuple(common)


def _counter(name: str, addr: int, storage: str, index: int, width: int, gate: str,
             access: Access = Access.RW, high: Access | None = None) -> RegisterSpec:
    """A counter MSR; ``high`` gives bits 63:width an access kind (default: reserved)."""
    fields = [Field("COUNT", width - 1, 0, access)]
    if high is not None and width < 64:
        fields.append(Field("RSVD", 63, width, high))
    return RegisterSpec(name, addr, tuple(fields), gate=gate, storage=storage, index=index,
                        role=Role.COUNTER)


AMD_COUNTER_HIGH = Access.RAZ_WI
"""AMD PERF_CTRx bits 63:48: the APM marks them reserved; assumption: the hardware ignores
writes to them instead of faulting. kvm-unit-tests writes unmasked negative presets (1 - C,
-1) to AMD counters and expects them to land, and KVM's AMD emulation masks to the width."""


def intel_counter_msrs(caps: X86PmuCaps) -> Iterator[RegisterSpec]:
    """GP counters and selectors, legacy and full-width counter aliases, fixed counters."""
    for i in range(caps.n_gp):
        yield RegisterSpec(f"IA32_PERFEVTSEL{i}", IA32_PERFEVTSEL0 + i, _evtsel_fields(caps, i),
                           gate="arch_pmu", storage=f"gp_sel[{i}]", index=i,
                           role=Role.SELECTOR)
        yield _counter(f"IA32_PMC{i}", IA32_PMC0 + i, f"gp_ctr[{i}]", i, caps.gp_width,
                       "arch_pmu", Access.RW_SEXT32)
        if caps.fw_write:
            yield _counter(f"IA32_A_PMC{i}", IA32_A_PMC0 + i, f"gp_ctr[{i}]", i, caps.gp_width,
                           "fw_write")
    for i in caps.fixed_indices:
        yield _counter(f"IA32_FIXED_CTR{i}", IA32_FIXED_CTR0 + i, f"fixed_ctr[{i}]",
                       FIXED_IDX_BASE + i, caps.fixed_width, "v2")


def _fixed_ctr_ctrl(caps: X86PmuCaps) -> RegisterSpec:
    """IA32_FIXED_CTR_CTRL: a 4-bit field per fixed counter (SDM figure 20-2)."""
    fields: list[Field] = []
    any_ok = caps.version >= 3 and not caps.anythread_deprecated
    for i in caps.fixed_indices:
        b = 4 * i
        fields += [Field(f"EN{i}_OS", b, b), Field(f"EN{i}_USR", b + 1, b + 1),
                   Field(f"PMI{i}", b + 3, b + 3)]
        if any_ok:
            fields.append(Field(f"ANY{i}", b + 2, b + 2))
    return RegisterSpec("IA32_FIXED_CTR_CTRL", IA32_FIXED_CTR_CTRL, tuple(fields), gate="v2",
                        storage="FIXED_CTR_CTRL")


def _status_extra_bits(caps: X86PmuCaps) -> tuple[int, ...]:
    """GLOBAL_STATUS bits above the counters that the version defines (SDM table 2-2)."""
    if caps.version >= 4:
        return (STATUS_TRACE_TOPA_PMI, STATUS_LBR_FRZ, STATUS_CTR_FRZ, STATUS_ASCI,
                STATUS_OVF_UNCORE, STATUS_OVF_BUF, STATUS_COND_CHGD)
    if caps.version == 3:
        return (STATUS_OVF_UNCORE, STATUS_OVF_BUF, STATUS_COND_CHGD)
    return (STATUS_OVF_BUF, STATUS_COND_CHGD)


def _counter_bit_fields(caps: X86PmuCaps, access: Access) -> list[Field]:
    fields = [Field(f"PMC{i}", i, i, access) for i in range(caps.n_gp)]
    fields += [Field(f"FIXED_CTR{i}", FIXED_IDX_BASE + i, FIXED_IDX_BASE + i, access)
               for i in caps.fixed_indices]
    return fields


def intel_global_msrs(caps: X86PmuCaps) -> Iterator[RegisterSpec]:
    """GLOBAL_CTRL, GLOBAL_STATUS, OVF_CTRL (STATUS_RESET on v4), STATUS_SET (v4+)."""
    yield RegisterSpec("IA32_PERF_GLOBAL_CTRL", IA32_PERF_GLOBAL_CTRL,
                       tuple(_counter_bit_fields(caps, Access.RW)), reset=caps.gp_mask,
                       gate="v2", storage="GLOBAL_CTRL")
    extra = _status_extra_bits(caps)
    for name, addr, access, gate in (
        ("IA32_PERF_GLOBAL_STATUS", IA32_PERF_GLOBAL_STATUS, Access.RO, "v2"),
        ("IA32_PERF_GLOBAL_OVF_CTRL", IA32_PERF_GLOBAL_OVF_CTRL, Access.W1C, "v2"),
        ("IA32_PERF_GLOBAL_STATUS_SET", IA32_PERF_GLOBAL_STATUS_SET, Access.W1S, "v4"),
    ):
        if gate == "v4" and caps.version < 4:
            continue
        fields = _counter_bit_fields(caps, access)
        fields += [Field(f"STATUS{b}", b, b, access) for b in extra]
        if gate == "v4":
            # Assumption: STATUS_SET sets every status bit except CondChgd (63), which only
            # hardware raises; the SDM's table for 0x391 omits it.
            fields = [f for f in fields if f.lsb != STATUS_COND_CHGD]
        yield RegisterSpec(name, addr, tuple(fields), gate=gate,
                           storage=name if access is not Access.RO else "GLOBAL_STATUS",
                           target="" if access is Access.RO else "GLOBAL_STATUS")


def intel_misc_msrs(caps: X86PmuCaps) -> Iterator[RegisterSpec]:
    """FIXED_CTR_CTRL, PERF_CAPABILITIES, DEBUGCTL, legacy LBR registers, x2APIC LVTPC."""
    if caps.version >= 2:
        yield _fixed_ctr_ctrl(caps)
    if caps.pdcm:
        yield RegisterSpec("IA32_PERF_CAPABILITIES", IA32_PERF_CAPABILITIES,
                           (Field("VALUE", 63, 0, Access.RO),), reset=caps.perf_capabilities,
                           gate="pdcm")
    yield RegisterSpec("IA32_DEBUGCTL", IA32_DEBUGCTL, (
        Field("LBR", 0, 0), Field("BTF", 1, 1), Field("TR", 6, 6), Field("BTS", 7, 7),
        Field("BTINT", 8, 8), Field("BTS_OFF_OS", 9, 9), Field("BTS_OFF_USR", 10, 10),
        Field("FREEZE_LBRS_ON_PMI", 11, 11), Field("FREEZE_PERFMON_ON_PMI", 12, 12),
        Field("FREEZE_WHILE_SMM", 14, 14), Field("RTM_DEBUG", 15, 15)))
    yield from lbr_msrs(caps)


LBR_SELECT_FIELDS = (
    Field("CPL_EQ_0", 0, 0), Field("CPL_NEQ_0", 1, 1), Field("JCC", 2, 2),
    Field("NEAR_REL_CALL", 3, 3), Field("NEAR_IND_CALL", 4, 4), Field("NEAR_RET", 5, 5),
    Field("NEAR_IND_JMP", 6, 6), Field("NEAR_REL_JMP", 7, 7), Field("FAR_BRANCH", 8, 8),
    Field("EN_CALLSTACK", 9, 9))
"""MSR_LBR_SELECT (SDM Table 17-13): bits 0-8 suppress a ring or a branch class, bit 9
enables call-stack mode."""
LBR_SELECT_LSB = {f.name: f.lsb for f in LBR_SELECT_FIELDS}
LBR_CONTROLS = frozenset({"IA32_DEBUGCTL", "MSR_LBR_SELECT", "GLOBAL_STATUS"})
"""The storage whose writes change what a legacy LBR records (DEBUGCTL.LBR and the freeze
bit, the filter, GLOBAL_STATUS.LBR_FRZ)."""


def has_legacy_lbr(caps: X86PmuCaps) -> bool:
    """The model-specific LBR stack exists: Intel, an LBR format other than none (0) or
    architectural LBR (0x3F, Sapphire Rapids on: CPUID leaf 0x1C instead), a depth."""
    return caps.is_intel and caps.lbr_format not in (0, 0x3F) and caps.lbr_depth > 0


def lbr_entry_msrs(lbr_format: int) -> int:
    """MSRs per legacy LBR entry: FROM, TO and, from format 5, LBR_INFO."""
    return 3 if lbr_format >= 5 else 2


def lbr_msrs(caps: X86PmuCaps) -> Iterator[RegisterSpec]:
    """Legacy LBR stack (SDM 18.4.8, NHM-style addresses; LBR_INFO from format 5). The
    entries and the top are the recorder's state (``Role.RECORD``, ``vpmu.hw.x86.lbr``)."""
    if not has_legacy_lbr(caps):
        return
    tos_bits = max(caps.lbr_depth - 1, 1).bit_length()
    yield RegisterSpec("MSR_LBR_SELECT", MSR_LBR_SELECT, LBR_SELECT_FIELDS, gate="lbr")
    yield RegisterSpec("MSR_LBR_TOS", MSR_LBR_TOS, (Field("TOS", tos_bits - 1, 0),), gate="lbr",
                       storage="LBR_TOS", role=Role.RECORD)
    for i in range(caps.lbr_depth):
        yield RegisterSpec(f"MSR_LBR_FROM_{i}", MSR_LBR_NHM_FROM + i,
                           (Field("FROM_IP", 63, 0),), gate="lbr", index=i, storage="LBR_FROM",
                           role=Role.RECORD)
        yield RegisterSpec(f"MSR_LBR_TO_{i}", MSR_LBR_NHM_TO + i,
                           (Field("TO_IP", 63, 0),), gate="lbr", index=i, storage="LBR_TO",
                           role=Role.RECORD)
        if lbr_entry_msrs(caps.lbr_format) == 3:
            yield RegisterSpec(f"MSR_LBR_INFO_{i}", MSR_LBR_INFO_0 + i,
                               (Field("CYC_CNT", 15, 0), Field("TSX_ABORT", 61, 61),
                                Field("IN_TSX", 62, 62), Field("MISPRED", 63, 63)),
                               gate="lbr", index=i, storage="LBR_INFO", role=Role.RECORD)


def lvtpc_msr() -> RegisterSpec:
    """x2APIC LVT Performance Monitoring Counters register (SDM figure 11-8)."""
    return RegisterSpec("X2APIC_LVTPC", X2APIC_LVTPC, (
        Field("VECTOR", 7, 0), Field("DELIVERY_MODE", 10, 8), Field("DELIVERY_STATUS", 12, 12,
                                                                    Access.RO),
        Field("MASK", 16, 16)), reset=1 << LVT_MASKED, storage="LVTPC")


def amd_msrs(caps: X86PmuCaps) -> Iterator[RegisterSpec]:
    """K7 legacy, F15H interleaved core counters, PerfMonV2 global MSRs (APM 13.2)."""
    sel = _evtsel_fields(caps, 0)
    width = caps.gp_width
    for i in range(min(4, caps.n_gp)):
        yield RegisterSpec(f"MSR_K7_EVNTSEL{i}", MSR_K7_EVNTSEL0 + i, sel,
                           storage=f"gp_sel[{i}]", index=i, role=Role.SELECTOR)
        yield _counter(f"MSR_K7_PERFCTR{i}", MSR_K7_PERFCTR0 + i, f"gp_ctr[{i}]", i, width,
                       "always", high=AMD_COUNTER_HIGH)
    if caps.perfctr_core:
        for i in range(caps.n_gp):
            yield RegisterSpec(f"MSR_F15H_PERF_CTL{i}", MSR_F15H_PERF_CTL0 + 2 * i, sel,
                               gate="perfctr_core", storage=f"gp_sel[{i}]", index=i,
                               role=Role.SELECTOR)
            yield _counter(f"MSR_F15H_PERF_CTR{i}", MSR_F15H_PERF_CTR0 + 2 * i,
                           f"gp_ctr[{i}]", i, width, "perfctr_core", high=AMD_COUNTER_HIGH)
    if caps.perfmon_v2:
        counters = tuple(Field(f"PMC{i}", i, i) for i in range(caps.n_gp))
        yield RegisterSpec("MSR_AMD64_PERF_CNTR_GLOBAL_CTL", MSR_AMD64_PERF_CNTR_GLOBAL_CTL,
                           counters, reset=caps.gp_mask, gate="perfmon_v2", storage="GLOBAL_CTRL")
        # Only the counter overflow bits are modelled in the AMD status registers (APM 13.2.2).
        for name, addr, access in (
            ("MSR_AMD64_PERF_CNTR_GLOBAL_STATUS", MSR_AMD64_PERF_CNTR_GLOBAL_STATUS, Access.RO),
            ("MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR", MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR,
             Access.W1C),
            ("MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET", MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET,
             Access.W1S),
        ):
            yield RegisterSpec(name, addr,
                               tuple(Field(f"PMC{i}", i, i, access) for i in range(caps.n_gp)),
                               gate="perfmon_v2",
                               storage="GLOBAL_STATUS" if access is Access.RO else name,
                               target="" if access is Access.RO else "GLOBAL_STATUS")


def pmu_msrs(caps: X86PmuCaps) -> list[RegisterSpec]:
    """Every PMU MSR this PMU implements, in address order (the LVTPC is the APIC's)."""
    specs: list[RegisterSpec] = []
    if caps.is_intel:
        if caps.version >= 1:
            specs += intel_counter_msrs(caps)
        if caps.version >= 2:
            specs += intel_global_msrs(caps)
        specs += intel_misc_msrs(caps)
    else:
        specs += amd_msrs(caps)
    return sorted(specs, key=lambda s: s.addr)


def gp_counter_mask(width: int) -> int:
    """Value mask of a counter of ``width`` bits."""
    return bits(width - 1, 0)


X2APIC_ICR = 0x830
X2APIC_EOI = 0x80B
MSR_IA32_TSC_DEADLINE = 0x6E0

_KERNEL_NAMES = {
    IA32_PERF_GLOBAL_CTRL: "MSR_CORE_PERF_GLOBAL_CTRL",
    IA32_PERF_GLOBAL_STATUS: "MSR_CORE_PERF_GLOBAL_STATUS",
    IA32_PERF_GLOBAL_OVF_CTRL: "MSR_CORE_PERF_GLOBAL_OVF_CTRL",
    IA32_PERF_GLOBAL_STATUS_SET: "MSR_CORE_PERF_GLOBAL_STATUS_SET",
    IA32_FIXED_CTR_CTRL: "MSR_CORE_PERF_FIXED_CTR_CTRL",
    IA32_PERF_CAPABILITIES: "MSR_IA32_PERF_CAPABILITIES",
    IA32_DEBUGCTL: "MSR_IA32_DEBUGCTLMSR",
    MSR_LBR_SELECT: "MSR_LBR_SELECT",
    MSR_LBR_TOS: "MSR_LBR_TOS",
    X2APIC_LVTPC: "IA32_X2APIC_LVT_PMI",
    X2APIC_ICR: "IA32_X2APIC_ICR",
    X2APIC_EOI: "IA32_X2APIC_EOI",
    MSR_IA32_TSC_DEADLINE: "MSR_IA32_TSC_DEADLINE",
    MSR_AMD64_PERF_CNTR_GLOBAL_STATUS: "MSR_AMD64_PERF_CNTR_GLOBAL_STATUS",
    MSR_AMD64_PERF_CNTR_GLOBAL_CTL: "MSR_AMD64_PERF_CNTR_GLOBAL_CTL",
    MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR: "MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR",
    MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET: "MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET",
}


def kernel_msr_name(addr: int) -> str:
    """The MSR's name in Linux's msr-index.h, as ``kvm_msr`` histograms print it (seed 001,
    docs/sources.md:
    ``MSR_CORE_PERF_GLOBAL_CTRL``, ``MSR_IA32_PMC0``, ``MSR_P6_EVNTSEL0``); hex otherwise."""
    if addr in _KERNEL_NAMES:
        return _KERNEL_NAMES[addr]
    for base, count, fmt in (
        (IA32_PERFEVTSEL0, 2, "MSR_P6_EVNTSEL{}"),
        (IA32_PERFEVTSEL0, 32, "MSR_ARCH_PERFMON_EVENTSEL{}"),
        (IA32_PMC0, 2, "MSR_IA32_PERFCTR{}"), (IA32_PMC0, 32, "MSR_ARCH_PERFMON_PERFCTR{}"),
        (IA32_A_PMC0, 32, "MSR_IA32_PMC{}"), (IA32_FIXED_CTR0, 16, "MSR_CORE_PERF_FIXED_CTR{}"),
        (MSR_K7_EVNTSEL0, 4, "MSR_K7_EVNTSEL{}"), (MSR_K7_PERFCTR0, 4, "MSR_K7_PERFCTR{}"),
    ):
        if base <= addr < base + count:
            return fmt.format(addr - base)
    if MSR_F15H_PERF_CTL0 <= addr < MSR_F15H_PERF_CTL0 + 12:
        i, odd = divmod(addr - MSR_F15H_PERF_CTL0, 2)
        return f"MSR_F15H_PERF_{'CTR' if odd else 'CTL'}{i}"
    return f"MSR_{addr:#x}"


NMI_VECTOR = 0x02
LOCAL_TIMER_VECTOR = 0xEC
CALL_FUNCTION_SINGLE_VECTOR = 0xFB
RESCHEDULE_VECTOR = 0xFD
IRQ_VECTORS = {"pmi": NMI_VECTOR, "tick": LOCAL_TIMER_VECTOR, "timer": LOCAL_TIMER_VECTOR,
               "guest-pmi": PERF_GUEST_MEDIATED_PMI_VECTOR, "ipi": CALL_FUNCTION_SINGLE_VECTOR,
               "resched": RESCHEDULE_VECTOR}
"""The vector of each host interrupt kind (arch/x86/include/asm/irq_vectors.h; a host PMI
is an NMI, vector 2); what a VM-exit's intr_info reports for the interrupt that caused it."""
