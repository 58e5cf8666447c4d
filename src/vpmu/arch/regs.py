"""Registers declared as data: fields, access kinds and the rules derived from them.

A register is declared once (name, address, fields as inclusive ``msb:lsb`` exactly as the
manuals print them, access kind per field, reset value, feature gate). Everything else is
derived here: the mask of writable bits, the reserved bits whose setting faults, what a read
returns, and how a write lands in storage. The hardware model never special-cases a register
by name for these rules; a register whose semantics differ has a different access kind.

Vocabulary
----------
- *storage*: the architectural state a register reads or writes. Two MSRs that alias the same
  state (legacy ``IA32_PMCx`` at 0xC1 and full-width ``IA32_A_PMCx`` at 0x4C1) name the same
  storage key and differ only in access kind.
- *reserved bits*: every bit not covered by a field. Writing 1 to one faults (``#GP`` on x86);
  reading returns 0.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


class Role(enum.Enum):
    """What a register is to the PMU, so that code dispatches on it instead of on names."""

    REG = "reg"
    """Plain storage (a control, a status, a capability)."""
    COUNTER = "counter"
    """A counter; ``index`` is its global counter index."""
    SELECTOR = "selector"
    """A general-purpose counter's event selector; ``index`` is the counter's index."""
    RECORD = "record"
    """A field of a branch record stack's entry ``index`` (source, target, info), or its top
    (``index`` -1): state the hardware's recorder holds, named by ``storage``."""
    INDIRECT = "indirect"
    """A window onto the counter or selector another register selects (Arm's PMXEVCNTR_EL0
    and PMXEVTYPER_EL0, through PMSELR_EL0.SEL): ``storage`` names the family."""


class Access(enum.Enum):
    """How a field behaves on read and write. Each member's docstring fixes the behaviour.

    The kinds are named after amaranth-soc's ``csr.action`` classes and the SDM's table
    notation; ``W1C``/``W1S`` act on the register named by ``RegisterSpec.target``.
    """

    RW = "rw"
    """Read/write storage: a write stores the field, a read returns it."""

    RO = "ro"
    """Read-only: a read returns storage; a WRMSR that would change a bit faults.

    A register made only of RO fields faults on every write (``IA32_PERF_GLOBAL_STATUS``,
    ``IA32_PERF_CAPABILITIES``), whatever the value, as the SDM specifies for them.
    """

    W1C = "w1c"
    """Write-1-to-clear on ``target``: each written 1 clears that bit there; reads return 0.

    ``IA32_PERF_GLOBAL_OVF_CTRL`` / ``STATUS_RESET`` and AMD ``PerfCntrGlobalStatusClr``.
    When a clear and a hardware set of the same bit meet in one instant, the clear wins: the
    hardware model records every overflow up to the write's instant (including one caused by
    the WRMSR's own retirement) before the write lands. An overflow after the write sets the
    bit again. (The SDM does not order the two; this is the model's assumption.)
    """

    W1S = "w1s"
    """Write-1-to-set on ``target``: each written 1 sets that bit there; reads return 0.

    ``IA32_PERF_GLOBAL_STATUS_SET`` (v4+) and AMD ``PerfCntrGlobalStatusSet``. Setting an
    overflow bit this way does not raise a PMI (assumption: the SDM describes the MSR as a
    way to restore state, not to signal).
    """

    RAZ_WI = "raz_wi"
    """Reserved, read-as-zero, writes ignored: unlike plain reserved bits, setting them does
    not fault. AMD PERF_CTRx bits 63:48 (see ``vpmu.arch.x86.msrs.amd_msrs``)."""

    RW_SEXT32 = "rw_sext32"
    """Counter written through a legacy 32-bit alias: bits 31:0 of the value are sign-extended
    to the field width and bits 63:32 are ignored (SDM 18.2.6: writes to IA32_PMCx at 0xC1
    "sign-extend bit 31"). Reads return the full-width value."""

    SET = "set"
    """Set half of a set/clear pair over one storage: a written 1 sets that bit of the
    storage, a 0 leaves it; a read returns the storage. Arm's PMCNTENSET_EL0,
    PMINTENSET_EL1, PMOVSSET_EL0 (Arm ARM D13.2)."""

    CLEAR = "clear"
    """Clear half of a set/clear pair: a written 1 clears that bit of the storage; a read
    returns the storage, as the SET register does. Arm's PMCNTENCLR_EL0, PMINTENCLR_EL1,
    PMOVSCLR_EL0."""

    ACTION = "action"
    """A written 1 asks the hardware to act; nothing is stored and a read returns 0. Arm's
    PMCR_EL0.P (reset the event counters) and .C (reset the cycle counter), and
    PMSWINC_EL0's bits (increment a counter counting SW_INCR)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One named bit range ``msb:lsb`` (inclusive, as printed in the manuals)."""

    name: str
    msb: int
    lsb: int
    access: Access = Access.RW
    doc: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.lsb <= self.msb <= 63:
            raise ValueError(f"field {self.name} must satisfy 0 <= lsb <= msb <= 63, "
                             f"not {self.msb}:{self.lsb}")

    @property
    def width(self) -> int:
        """Number of bits in the field."""
        return self.msb - self.lsb + 1

    @property
    def mask(self) -> int:
        """The field's bits in register position."""
        return ((1 << self.width) - 1) << self.lsb

    def get(self, value: int) -> int:
        """Extract the field from a register value."""
        return (value >> self.lsb) & ((1 << self.width) - 1)

    def put(self, value: int, field_value: int) -> int:
        """Return ``value`` with the field replaced by ``field_value`` (masked to width)."""
        return (value & ~self.mask) | ((field_value << self.lsb) & self.mask)


def bits(msb: int, lsb: int) -> int:
    """The mask of bits ``msb:lsb`` inclusive: the one helper that turns ranges into masks."""
    return ((1 << (msb - lsb + 1)) - 1) << lsb


def bit(n: int) -> int:
    """The mask of bit ``n``."""
    return 1 << n


def set_bits(mask: int) -> Iterator[int]:
    """The positions of ``mask``'s set bits, lowest first (the kernel's for_each_set_bit)."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One register: the declaration all decoding and fault rules are derived from.

    ``storage`` names the architectural state the register reads and writes (defaults to the
    register's own name); aliases share it. ``target`` names the register a W1C/W1S write acts
    on. ``gate`` names the feature that makes the register exist (see the vendor's gate table).
    ``index`` is the counter index for per-counter registers, -1 otherwise.
    """

    name: str
    addr: int
    fields: tuple[Field, ...]
    reset: int = 0
    gate: str = "always"
    storage: str = ""
    target: str = ""
    index: int = -1
    doc: str = ""
    role: Role = Role.REG
    """Plain storage, a counter or a selector (which store by ``index``, not by name)."""
    value_faults: bool = True
    """A write that sets a reserved bit or changes an RO field faults (x86: #GP). False: those
    bits are ignored, as Arm's RES0 bits and read-only fields are (an Arm PMU register faults
    on who accesses it, never on the value written)."""
    write_only: bool = False
    """A read is an error of the access itself (Arm: PMSWINC_EL0 reads are UNDEFINED)."""
    defined_mask: int = field(init=False)
    access_kinds: frozenset[Access] = field(init=False)
    _kind_masks: dict[Access, int] = field(init=False, repr=False, compare=False)
    _rule: _WriteRule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        mask = 0
        for f in self.fields:
            if mask & f.mask:
                raise ValueError(f"{self.name}: field {f.name} overlaps another field")
            mask |= f.mask
        object.__setattr__(self, "defined_mask", mask)
        object.__setattr__(self, "access_kinds", frozenset(f.access for f in self.fields))
        kind_masks: dict[Access, int] = {}
        for f in self.fields:
            kind_masks[f.access] = kind_masks.get(f.access, 0) | f.mask
        object.__setattr__(self, "_kind_masks", kind_masks)
        object.__setattr__(self, "_rule", _WriteRule.of(self))
        if not self.storage:
            object.__setattr__(self, "storage", self.name)
        if self.reset & ~mask:
            raise ValueError(f"{self.name}: reset value {self.reset:#x} sets reserved bits")

    @property
    def reserved_mask(self) -> int:
        """Bits not covered by any field: writing 1 faults, reads return 0."""
        return ~self.defined_mask & bits(63, 0)

    def mask_of(self, *kinds: Access) -> int:
        """The union of the masks of fields with one of the given access kinds."""
        return sum(self._kind_masks.get(k, 0) for k in kinds)

    def field(self, name: str) -> Field:
        """Look a field up by name (KeyError names the register)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    def decode(self, value: int) -> dict[str, int]:
        """Split a value into named fields, for docs, traces and error messages."""
        return {f.name: f.get(value) for f in self.fields}

    def __repr__(self) -> str:
        return f"RegisterSpec(name={self.name!r}, addr={self.addr:#x}, reset={self.reset:#x})"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of applying a write to a register: what lands where, or a fault.

    ``store`` is the new value of the register's storage (None: storage unchanged);
    ``clear``/``set`` are bit masks to clear/set in the ``target`` register's storage.
    """

    fault: bool = False
    store: int | None = None
    clear: int = 0
    set: int = 0
    action: int = 0
    """Bits written 1 in ACTION fields: what the hardware must do (not stored)."""


FAULT = WriteResult(fault=True)


@dataclass(frozen=True, slots=True)
class _WriteRule:
    """A register's access kinds folded into masks once, at declaration: a write is applied
    millions of times per run, and the masks never change."""

    sext: Field | None
    raz_wi: int
    reserved: int
    ro: int
    ro_only: bool
    w1: bool
    w1c: int
    w1s: int
    rw: int
    readable: int
    action: int
    keep: int
    """RO bits: a write leaves them as stored."""

    @classmethod
    def of(cls, spec: RegisterSpec) -> _WriteRule:
        kinds, m = spec.access_kinds, spec.mask_of
        sext = next((f for f in spec.fields if f.access is Access.RW_SEXT32), None)
        raz_wi, reserved, ro = m(Access.RAZ_WI), spec.reserved_mask, m(Access.RO)
        if not spec.value_faults:  # reserved bits and RO fields ignore what is written
            raz_wi, reserved, ro = raz_wi | reserved | ro, 0, 0
        return cls(sext=sext, raz_wi=raz_wi, reserved=reserved,
                   ro=ro, ro_only=kinds == {Access.RO} and spec.value_faults,
                   w1=bool(kinds & {Access.W1C, Access.W1S, Access.SET, Access.CLEAR}),
                   w1c=m(Access.W1C, Access.CLEAR), w1s=m(Access.W1S, Access.SET),
                   rw=m(Access.RW), readable=m(Access.RW, Access.RO, Access.RW_SEXT32,
                                                Access.SET, Access.CLEAR),
                   action=m(Access.ACTION), keep=m(Access.RO))


def apply_write(spec: RegisterSpec, old: int, value: int) -> WriteResult:
    """Derive the effect of writing ``value`` over storage ``old`` from the access kinds alone.

    This is the single place where WRMSR semantics are decided; the hardware model applies
    the result. Rules, in order: a value that does not fit in 64 bits faults; a sign-extending
    alias ignores bits 63:32 and extends bit 31 before any other check; reserved bits set fault;
    a change to an RO field faults (an RO-only register faults on any write).
    """
    if not 0 <= value < (1 << 64):
        return FAULT
    rule = spec._rule
    f = rule.sext
    if f is not None:
        low = value & 0xFFFF_FFFF
        signed = low - (1 << 32) if low & 0x8000_0000 else low
        return WriteResult(store=f.put(0, signed & ((1 << f.width) - 1)))
    value &= ~rule.raz_wi
    if value & rule.reserved:
        return FAULT
    ro = rule.ro
    if ro and (rule.ro_only or (value ^ old) & ro):
        return FAULT
    if rule.w1:
        return WriteResult(clear=value & rule.w1c, set=value & rule.w1s)
    store = (old & rule.keep) | (value & rule.rw)
    if rule.action:
        return WriteResult(store=store, action=value & rule.action)
    return WriteResult(store=store)


def read_value(spec: RegisterSpec, stored: int) -> int:
    """What a read returns given storage: W1C/W1S and ACTION fields read 0, reserved bits
    read 0, SET/CLEAR fields read the storage they share."""
    return stored & spec._rule.readable


def by_address(specs: Iterable[RegisterSpec]) -> dict[int, RegisterSpec]:
    """Index specs by address, refusing duplicates (two declarations of one MSR is our bug)."""
    table: dict[int, RegisterSpec] = {}
    for s in specs:
        if s.addr in table:
            raise ValueError(f"MSR {s.addr:#x} declared twice: {table[s.addr].name} and {s.name}")
        table[s.addr] = s
    return table
