"""Arm PMUv3's AArch64 system registers, declared as data (Arm ARM DDI 0487, D13.2 and the
register descriptions in D23.5; Linux arch/arm64/include/asm/sysreg.h and
include/linux/perf/arm_pmuv3.h for the encodings and field names).

An address is the register's MRS/MSR encoding as Linux's ``sys_reg(op0, op1, CRn, CRm, op2)``
builds it (op0 at bit 19, op1 at 16, CRn at 12, CRm at 8, op2 at 5), so a trace shows the
value ``ESR_EL2.ISS`` reports for a trapped access.

Access kinds (``vpmu.arch.regs``): the SET/CLR pairs share one storage (``SET`` / ``CLEAR``:
a written 1 sets or clears, a read returns the storage); PMCR_EL0.P and .C and PMSWINC_EL0 are
``ACTION`` bits (reset or increment counters, read 0); PMSWINC_EL0 is write-only. Every
register is lenient (``value_faults=False``): RES0 bits and read-only fields ignore writes. An
Arm PMU access faults (UNDEFINED) for who makes it and which counter it names, never for the
value: those rules live with the hardware model, not here.

Per counter, bit ``n`` of the bitmap registers is event counter ``n`` (``P<n>``, n < PMCR_EL0.N)
and bit 31 the cycle counter (``C``). Bits of unimplemented counters are RAZ/WI (RES0 here).
Not declared: FEAT_PMUv3_ICNTR's instruction counter (PMICNTR_EL0, PMICFILTR_EL0, bit 32 of
the bitmaps), PMMIR_EL1 and the AArch32 views.
"""

from __future__ import annotations

from collections.abc import Iterator

from vpmu.arch.arm64.caps import CYCLE_IDX, ArmPmuCaps
from vpmu.arch.faults import Fault
from vpmu.arch.regs import Access, Field, RegisterSpec, Role


def sys_reg(op0: int, op1: int, crn: int, crm: int, op2: int) -> int:
    """Linux's ``sys_reg()``: the encoding of an AArch64 system register."""
    return op0 << 19 | op1 << 16 | crn << 12 | crm << 8 | op2 << 5


PMCR_EL0 = sys_reg(3, 3, 9, 12, 0)
PMCNTENSET_EL0 = sys_reg(3, 3, 9, 12, 1)
PMCNTENCLR_EL0 = sys_reg(3, 3, 9, 12, 2)
PMOVSCLR_EL0 = sys_reg(3, 3, 9, 12, 3)
PMSWINC_EL0 = sys_reg(3, 3, 9, 12, 4)
PMSELR_EL0 = sys_reg(3, 3, 9, 12, 5)
PMCEID0_EL0 = sys_reg(3, 3, 9, 12, 6)
PMCEID1_EL0 = sys_reg(3, 3, 9, 12, 7)
PMCCNTR_EL0 = sys_reg(3, 3, 9, 13, 0)
PMXEVTYPER_EL0 = sys_reg(3, 3, 9, 13, 1)
PMXEVCNTR_EL0 = sys_reg(3, 3, 9, 13, 2)
PMUSERENR_EL0 = sys_reg(3, 3, 9, 14, 0)
PMINTENSET_EL1 = sys_reg(3, 0, 9, 14, 1)
PMINTENCLR_EL1 = sys_reg(3, 0, 9, 14, 2)
PMOVSSET_EL0 = sys_reg(3, 3, 9, 14, 3)
PMCCFILTR_EL0 = sys_reg(3, 3, 14, 15, 7)


def pmevcntr(n: int) -> int:
    """PMEVCNTR<n>_EL0: op0 3, op1 3, CRn 14, CRm 0b10:n[4:3], op2 n[2:0]."""
    return sys_reg(3, 3, 14, 0b1000 | n >> 3, n & 7)


def counter_name(idx: int) -> str:
    """The register of counter ``idx``: PMEVCNTR<n>_EL0, or PMCCNTR_EL0 for the cycle
    counter (31)."""
    return "PMCCNTR_EL0" if idx == CYCLE_IDX else f"PMEVCNTR{idx}_EL0"


def type_name(idx: int) -> str:
    """The type register of counter ``idx``: PMEVTYPER<n>_EL0, or PMCCFILTR_EL0 for the
    cycle counter (31)."""
    return "PMCCFILTR_EL0" if idx == CYCLE_IDX else f"PMEVTYPER{idx}_EL0"


def pmevtyper(n: int) -> int:
    """PMEVTYPER<n>_EL0: op0 3, op1 3, CRn 14, CRm 0b11:n[4:3], op2 n[2:0]."""
    return sys_reg(3, 3, 14, 0b1100 | n >> 3, n & 7)


SW_INCR = 0x00
"""The common event PMSWINC_EL0 increments."""
CHAIN = 0x1E
"""The common event that counts the even neighbour's overflows (a 64-bit pair of 32-bit
counters)."""

PMCR_FIELDS = (
    Field("E", 0, 0, doc="enable every counter PMCNTENSET enables"),
    Field("P", 1, 1, Access.ACTION, "reset the event counters (not the cycle counter)"),
    Field("C", 2, 2, Access.ACTION, "reset the cycle counter"),
    Field("D", 3, 3, doc="clock divider: PMCCNTR_EL0 counts every 64th cycle"),
    Field("X", 4, 4, doc="export events to an external trace unit"),
    Field("DP", 5, 5, doc="disable the cycle counter where event counting is prohibited"),
    Field("LC", 6, 6, doc="the cycle counter overflows at 64 bits (else at 32)"),
    Field("LP", 7, 7, doc="event counters overflow at 64 bits (FEAT_PMUv3p5)"),
    Field("N", 15, 11, Access.RO, "event counters implemented"),
    Field("IDCODE", 23, 16, Access.RO),
    Field("IMP", 31, 24, Access.RO, "implementer (MIDR_EL1.Implementer)"),
)
"""PMCR_EL0 (D23.5.x): Linux writes only bits 7:0 (ARMV8_PMU_PMCR_MASK)."""

FILTER_FIELDS = (
    Field("SH", 24, 24, doc="count in Secure EL2 (with FEAT_SEL2)"),
    Field("M", 26, 26, doc="count in EL3 (with P)"),
    Field("NSH", 27, 27, doc="count in EL2"),
    Field("NSU", 28, 28, doc="Non-secure EL0: count if equal to U"),
    Field("NSK", 29, 29, doc="Non-secure EL1: count if equal to P"),
    Field("U", 30, 30, doc="do not count at EL0"),
    Field("P", 31, 31, doc="do not count at EL1"),
)
"""The filter bits of PMEVTYPER<n>_EL0 and PMCCFILTR_EL0."""


PMUSERENR_FIELDS = (
    Field("EN", 0, 0, doc="EL0 may access every PMU register but PMUSERENR and PMINTEN*"),
    Field("SW", 1, 1, doc="EL0 may write PMSWINC_EL0"),
    Field("CR", 2, 2, doc="EL0 may read PMCCNTR_EL0"),
    Field("ER", 3, 3, doc="EL0 may read the event counters and write PMSELR_EL0"),
)


def event_count_field(caps: ArmPmuCaps) -> Field:
    """PMEVTYPER<n>_EL0.evtCount: bits 9:0 in PMUv3, 15:0 from PMUv3p1."""
    return Field("evtCount", caps.event_mask.bit_length() - 1, 0)


def counter_bits(caps: ArmPmuCaps, access: Access) -> tuple[Field, ...]:
    """The implemented counters' bits in a bitmap register: the event counters, the cycle
    counter."""
    events = (Field("P", caps.n_counters - 1, 0, access),) if caps.n_counters else ()
    return (*events, Field("C", CYCLE_IDX, CYCLE_IDX, access))


def _pair(name: str, set_addr: int, clr_name: str, clr_addr: int,
          caps: ArmPmuCaps) -> Iterator[RegisterSpec]:
    yield RegisterSpec(name, set_addr, counter_bits(caps, Access.SET), target=name,
                       value_faults=False)
    yield RegisterSpec(clr_name, clr_addr, counter_bits(caps, Access.CLEAR), storage=name,
                       target=name, value_faults=False)


def pmu_sysregs(caps: ArmPmuCaps) -> Iterator[RegisterSpec]:
    """Every PMUv3 system register of a core with ``caps``, in the Arm ARM's order."""
    n = caps.n_counters
    reset = caps.implementer << 24 | n << 11
    yield RegisterSpec("PMCR_EL0", PMCR_EL0, PMCR_FIELDS, reset=reset, value_faults=False)
    yield from _pair("PMCNTENSET_EL0", PMCNTENSET_EL0, "PMCNTENCLR_EL0", PMCNTENCLR_EL0, caps)
    yield from _pair("PMINTENSET_EL1", PMINTENSET_EL1, "PMINTENCLR_EL1", PMINTENCLR_EL1, caps)
    yield from _pair("PMOVSSET_EL0", PMOVSSET_EL0, "PMOVSCLR_EL0", PMOVSCLR_EL0, caps)
    swinc = (Field("P", n - 1, 0, Access.ACTION),) if n else ()
    yield RegisterSpec("PMSWINC_EL0", PMSWINC_EL0, swinc, value_faults=False, write_only=True)
    yield RegisterSpec("PMSELR_EL0", PMSELR_EL0, (Field("SEL", 4, 0),), value_faults=False)
    for name, addr, value in (("PMCEID0_EL0", PMCEID0_EL0, caps.pmceid0),
                              ("PMCEID1_EL0", PMCEID1_EL0, caps.pmceid1)):
        yield RegisterSpec(name, addr, (Field("ID", 63, 0, Access.RO),), reset=value,
                           value_faults=False)
    yield RegisterSpec("PMCCNTR_EL0", PMCCNTR_EL0, (Field("CCNT", 63, 0),), index=CYCLE_IDX,
                       role=Role.COUNTER, value_faults=False)
    yield RegisterSpec("PMXEVTYPER_EL0", PMXEVTYPER_EL0,
                       (event_count_field(caps), *FILTER_FIELDS), role=Role.INDIRECT,
                       storage="PMEVTYPER", value_faults=False)
    yield RegisterSpec("PMXEVCNTR_EL0", PMXEVCNTR_EL0,
                       (Field("PMEVCNTR", caps.width(0) - 1, 0),), role=Role.INDIRECT,
                       storage="PMEVCNTR", value_faults=False)
    yield RegisterSpec("PMUSERENR_EL0", PMUSERENR_EL0, PMUSERENR_FIELDS, value_faults=False)
    yield RegisterSpec("PMCCFILTR_EL0", PMCCFILTR_EL0, FILTER_FIELDS, index=CYCLE_IDX,
                       role=Role.SELECTOR, value_faults=False)
    for i in range(n):
        yield RegisterSpec(f"PMEVCNTR{i}_EL0", pmevcntr(i),
                           (Field("PMEVCNTR", caps.width(i) - 1, 0),), index=i,
                           role=Role.COUNTER, value_faults=False)
        yield RegisterSpec(f"PMEVTYPER{i}_EL0", pmevtyper(i),
                           (event_count_field(caps), *FILTER_FIELDS), index=i,
                           role=Role.SELECTOR, value_faults=False)


EL0_READ: dict[str, frozenset[str]] = {
    "PMSELR_EL0": frozenset({"EN", "ER"}),
    "PMCCNTR_EL0": frozenset({"EN", "CR"}),
    "PMXEVCNTR_EL0": frozenset({"EN", "ER"}),
    "PMEVCNTR": frozenset({"EN", "ER"}),
    "PMUSERENR_EL0": frozenset({"ALWAYS"}),
    "PMINTENSET_EL1": frozenset(),
    "PMINTENCLR_EL1": frozenset(),
    "PMSWINC_EL0": frozenset(),
}
"""The PMUSERENR_EL0 bits that let EL0 read a register (any one suffices; "ALWAYS": no
condition; an empty set: never, the EL1 registers and write-only PMSWINC_EL0). Every other
PMU register: EN (Arm ARM D13.2 and each register's access pseudocode; KVM's
``check_pmu_access_disabled`` and its callers in sys_regs.c)."""
EL0_WRITE: dict[str, frozenset[str]] = {
    "PMSWINC_EL0": frozenset({"EN", "SW"}),
    "PMSELR_EL0": frozenset({"EN", "ER"}),
    "PMUSERENR_EL0": frozenset(),
    "PMINTENSET_EL1": frozenset(),
    "PMINTENCLR_EL1": frozenset(),
}
"""The same for writes; every other register: EN (counter writes need EN even where reads
need only ER or CR)."""
EN_ONLY = frozenset({"EN"})


def _family(spec: RegisterSpec) -> str:
    """The name a per-counter register is known by in the tables (PMEVCNTR<n> -> PMEVCNTR)."""
    return "PMEVCNTR" if spec.name.startswith("PMEVCNTR") else spec.name


def el0_allows(spec: RegisterSpec, userenr: int, *, write: bool) -> bool:
    """Whether EL0 may make this access under PMUSERENR_EL0 = ``userenr``."""
    table = EL0_WRITE if write else EL0_READ
    bits = table.get(_family(spec), EN_ONLY)
    if "ALWAYS" in bits:
        return True
    return any(userenr >> f.lsb & 1 for f in PMUSERENR_FIELDS if f.name in bits)


def counter_valid(caps: ArmPmuCaps, idx: int) -> bool:
    """``pmu_counter_idx_valid``: an event counter below PMCR_EL0.N, or the cycle counter."""
    return 0 <= idx < caps.n_counters or idx == CYCLE_IDX


def access_fault(spec: RegisterSpec, caps: ArmPmuCaps, *, el: int, userenr: int, sel: int,
                 write: bool) -> Fault | None:
    """Whether an access is UNDEFINED before it reaches the register: a read of a write-only
    register, an EL0 access PMUSERENR_EL0 does not allow, a per-counter register (or, through
    PMSELR_EL0.SEL, PMXEVCNTR_EL0 / PMXEVTYPER_EL0) naming a counter that does not exist.
    With SEL = 31, PMXEVTYPER_EL0 is PMCCFILTR_EL0 and (assumption: the Arm ARM leaves this
    CONSTRAINED UNPREDICTABLE; KVM's access_pmu_evcntr does the same) PMXEVCNTR_EL0 is
    PMCCNTR_EL0."""
    if spec.write_only and not write:
        return Fault.UNDEF
    if el == 0 and not el0_allows(spec, userenr, write=write):
        return Fault.UNDEF
    if spec.role is Role.INDIRECT:
        if not counter_valid(caps, sel):
            return Fault.UNDEF
    elif spec.role in (Role.COUNTER, Role.SELECTOR) and not counter_valid(caps, spec.index):
        return Fault.UNDEF
    return None


def _names_by_encoding() -> dict[int, str]:
    """Every PMU system register's Linux name by encoding, for the widest PMU (31 counters)."""
    from vpmu.arch.arm64.caps import MAX_EVENT_COUNTERS, PMUVER_V3P5, ArmPmuCaps
    widest = ArmPmuCaps(0x41, 0, PMUVER_V3P5, n_counters=MAX_EVENT_COUNTERS)
    return {spec.addr: spec.name for spec in pmu_sysregs(widest)}


SYSREG_NAMES: dict[int, str] = _names_by_encoding()
"""Each PMU system register's name by its ``sys_reg`` encoding."""
