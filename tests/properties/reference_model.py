"""A small reference model of the x86 core PMU as guest instructions see it, from the manuals.

Written directly from the Intel SDM Vol. 3B ch. 20 (architectural performance monitoring) and
Vol. 4 table 2-2, and the AMD APM Vol. 2 ch. 13. It shares no code with the model under test:
it reads the PMU's *shape* from ``X86PmuCaps`` (as CPUID would enumerate it) and speaks the
guest port's operations and ``Fault``; every address, bit position and rule is restated here
from the manuals, so a slip in the model's declarations shows up as a disagreement.

What it models (per PMU shape)
------------------------------
- Which MSRs exist: Intel GP selectors 0x186+i and counters through the legacy alias 0xC1+i
  (bits 31:0 sign-extended to the width, bits 63:32 ignored) and, with
  PERF_CAPABILITIES.FW_WRITE, the full-width alias 0x4C1+i (#GP above the width); fixed counters
  0x309+i (i < CPUID.0xA:EDX[4:0], or CPUID.0xA:ECX bit i on v5+); FIXED_CTR_CTRL (4 bits per
  fixed counter, ANY only on v3+ unless deprecated, every other bit reserved); GLOBAL_CTRL
  (reset GENMASK(n_gp - 1, 0)); GLOBAL_STATUS (read-only: #GP on any write); OVF_CTRL /
  STATUS_RESET (write-1-to-clear, reads 0); STATUS_SET (v4+, write-1-to-set, reads 0);
  PERF_CAPABILITIES (read-only, with PDCM). AMD: K7 selectors/counters 0xC0010000/4 (+i, i < 4),
  F15H CTL/CTR 0xC0010200 + 2i / +1 with PerfCtrCore, aliasing the same counters (bits 63:48
  of a counter write ignored: the project's documented assumption), and the PerfMonV2 CTL /
  STATUS / STATUS_CLR / STATUS_SET. Every other reserved bit #GPs.
- RDPMC: Intel GP ``i``, fixed ``1<<30 | i``, fast bit 31 #GP unless the part honours it; AMD
  ECX < counter count; any other index #GP. At CPL 3 RDPMC needs CR4.PCE, RDMSR/WRMSR #GP.
- Counting: a counter counts during an operation iff it is locally enabled (EN; a fixed
  counter's OS/USR field), its privilege filter matches the CPL, its GLOBAL_CTRL bit is set
  (Intel v2+, AMD PerfMonV2) and, on Intel v4+, GLOBAL_STATUS.CTR_FRZ is clear (SDM 20.2.4,
  20.8). Each port instruction retires as one instruction *before* its effect lands (so the
  enabling WRMSR is not counted and the disabling one is, conformance_suites.md 5.D); an
  instruction that faults does not retire (SDM Vol. 3A 6.5: on a fault "the processor restores
  the machine state to the state prior to the beginning of execution of the faulting
  instruction"). ``Execute`` retires its stream's exact totals.
- Overflow: a counter that passes 2**width wraps and, where GLOBAL_STATUS exists, sets its bit
  (GP i: bit i; fixed i: bit 32 + i).

Ordering within one instruction: the counting caused by an instruction's own retirement comes
first, then its effect. So a WRMSR to OVF_CTRL whose own retirement wraps a counter leaves the
bit clear (the clear lands after the set). A read samples its value as it executes, before it
retires: an RDMSR/RDPMC of an instructions counter excludes the reading instruction.

Not modelled, as in docs/hardware.md "Not covered yet": PERF_METRICS (GLOBAL_CTRL/STATUS bit
48, MSR 0x329) and the adaptive-PEBS bits (PERFEVTSEL bit 34, FIXED_CTR_CTRL bit 32 + 4i) are
treated as reserved, as the model does, although ICX/SPR/EMR enumerate PERF_METRICS and
PEBS_BASELINE; PEBS, DEBUGCTL (freeze on PMI), LBR MSRs and the LVTPC are left out (the
strategies never touch them); AMD status bits above the counters; hyper-threading (AnyThread
counts as the thread's own); EFER.SVME = 1.

Exact and bounded events
------------------------
Instructions and branches are exact (architectural events INST_RETIRED 0xC0 / BR_INST_RETIRED
0xC4, AMD 0xC0 / 0xC2, fixed counter 0); so are a stream's core cycles. For everything else the
manuals give no number, so the reference keeps a counter's value as an interval ``[lo, hi]``
(before reduction modulo 2**width): a port instruction takes at least one core cycle and at
most ``PORT_OP_MAX_EVENTS`` of anything; a stream's other events are bounded by
``STREAM_EVENTS_PER_UNIT`` times its cycles plus instructions. A read narrows the interval to
the value observed. When an interval straddles 2**width the counter's overflow bit is unknown
until the counter is read or the bit is written (see ``RefPmu._wrap_happened``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vpmu.arch.x86.caps import X86PmuCaps
from vpmu.guest import Execute, Fault, Rdmsr, Rdpmc, SetCpl, SetCr4Pce, Wrmsr

from .expectations import GP, CounterValue, Exactly, Expect, StatusValue, Then

# -- addresses (SDM Vol. 4 table 2-2; APM Vol. 2 13.2) ------------------------------------
IA32_PMC0 = 0xC1
IA32_PERFEVTSEL0 = 0x186
IA32_FIXED_CTR0 = 0x309
IA32_PERF_CAPABILITIES = 0x345
IA32_FIXED_CTR_CTRL = 0x38D
IA32_PERF_GLOBAL_STATUS = 0x38E
IA32_PERF_GLOBAL_CTRL = 0x38F
IA32_PERF_GLOBAL_OVF_CTRL = 0x390
IA32_PERF_GLOBAL_STATUS_SET = 0x391
IA32_A_PMC0 = 0x4C1
MSR_K7_EVNTSEL0 = 0xC001_0000
MSR_K7_PERFCTR0 = 0xC001_0004
MSR_F15H_PERF_CTL0 = 0xC001_0200
MSR_F15H_PERF_CTR0 = 0xC001_0201
AMD_GLOBAL_STATUS = 0xC000_0300
AMD_GLOBAL_CTL = 0xC000_0301
AMD_GLOBAL_STATUS_CLR = 0xC000_0302
AMD_GLOBAL_STATUS_SET = 0xC000_0303

# -- event-select bits (SDM figure 20-6 and 20.3.6.5; APM figure 13-7) ----------------------
SEL_USR, SEL_OS, SEL_EDGE, SEL_PC, SEL_INT, SEL_ANY, SEL_EN, SEL_INV = range(16, 24)
SEL_IN_TX, SEL_IN_TXCP = 32, 33
AMD_GUEST_ONLY, AMD_HOST_ONLY = 40, 41
IN_TXCP_COUNTER = 2
"""SDM 20.3.6.5: IN_TXCP "may only be set for IA32_PERFEVTSEL2"."""

AMD_SEL_VALID = (0xFFFF_FFFF & ~(1 << 19) & ~(1 << 21)) | (0xF << 32) | (0b11 << AMD_GUEST_ONLY)
"""APM figure 13-7: bits 19, 21, 39:36 and 63:42 of PerfEvtSel are reserved."""

FIXED_BASE = 32
"""GLOBAL_CTRL/STATUS bit of fixed counter 0 (SDM figure 20-3)."""
FIXED_FIELD_OS, FIXED_FIELD_USR, FIXED_FIELD_ANY, FIXED_FIELD_PMI = 1, 2, 4, 8
MAX_FIXED = 16
"""FIXED_CTR_CTRL has room for 16 four-bit fields."""

RDPMC_FIXED = 1 << 30
RDPMC_FAST = 1 << 31
RDPMC_INDEX = (1 << 30) - 1

PERF_CAP_FW_WRITE = 1 << 13

# GLOBAL_STATUS bits above the counters (SDM Vol. 4 table 2-2).
STATUS_TRACE_TOPA_PMI, STATUS_LBR_FRZ, STATUS_CTR_FRZ, STATUS_ASCI = 55, 58, 59, 60
STATUS_OVF_UNCORE, STATUS_OVF_BUF, STATUS_COND_CHGD = 61, 62, 63

CPL_KERNEL, CPL_USER = 0, 3

# -- event classes ---------------------------------------------------------------------------
INSN = "instructions"
BRANCH = "branches"
CYCLES = "core cycles"
MOVING = "moves (>= 1 per op)"
OTHER = "bounded"
ZERO = "never"

PORT_OP_MAX_EVENTS = 1 << 16
"""Upper bound on any non-exact event during one port instruction (the model: <= 8 x 200)."""
STREAM_EVENTS_PER_UNIT = 64
"""Upper bound on any non-exact event of a stream, per cycle plus instruction."""



def _mask(width: int) -> int:
    return (1 << width) - 1


@dataclass(frozen=True)
class Shape:
    """What the reference needs of a PMU, decoded from ``X86PmuCaps`` as CPUID enumerates it."""

    intel: bool
    version: int
    n_gp: int
    gp_width: int
    fixed: tuple[int, ...]
    fixed_width: int
    fw_write: bool
    any_thread: bool
    tsx: bool
    fast_rdpmc: bool
    perf_capabilities: int | None
    amd_core: bool
    amd_v2: bool

    @classmethod
    def of(cls, caps: X86PmuCaps) -> Shape:
        """Decode: Intel per CPUID.0xA / PERF_CAPABILITIES (SDM 20.2), AMD per APM 13.2."""
        if caps.vendor == "intel":
            v = caps.version
            fixed = tuple(i for i in range(MAX_FIXED) if v >= 2 and (
                i < caps.n_fixed or (v >= 5 and caps.fixed_mask >> i & 1)))
            perf_caps = None
            if caps.pdcm:
                perf_caps = ((caps.lbr_format & 0x3F) | (caps.pebs_format & 0xF) << 8
                             | caps.perf_cap_extra | (PERF_CAP_FW_WRITE if caps.fw_write else 0))
            return cls(True, v, caps.n_gp if v >= 1 else 0, caps.gp_width, fixed,
                       caps.fixed_width, caps.fw_write and v >= 1,
                       v >= 3 and not caps.anythread_deprecated, caps.tsx,
                       caps.rdpmc_fast_read, perf_caps, False, False)
        n = caps.n_gp if caps.perfmon_v2 else (6 if caps.perfctr_core else 4)
        return cls(False, 0, n, caps.gp_width, (), 48, False, False, False, False, None,
                   caps.perfctr_core, caps.perfmon_v2)

    @property
    def has_global(self) -> bool:
        """GLOBAL_CTRL / GLOBAL_STATUS exist: Intel v2+, AMD PerfMonV2."""
        return self.version >= 2 if self.intel else self.amd_v2

    @property
    def counter_bits(self) -> int:
        """Every implemented counter's bit in the global index space."""
        return _mask(self.n_gp) | sum(1 << (FIXED_BASE + i) for i in self.fixed)

    @property
    def status_extra(self) -> int:
        """GLOBAL_STATUS bits above the counters for this version (Intel; AMD: none here)."""
        if not self.intel:
            return 0
        bits = [STATUS_OVF_BUF, STATUS_COND_CHGD]
        if self.version >= 3:
            bits.append(STATUS_OVF_UNCORE)
        if self.version >= 4:
            bits += [STATUS_TRACE_TOPA_PMI, STATUS_LBR_FRZ, STATUS_CTR_FRZ, STATUS_ASCI]
        return sum(1 << b for b in bits)


# -- state ----------------------------------------------------------------------------------
@dataclass
class _Counter:
    """One counter: its value is ``x mod 2**width`` for some ``x`` in ``[lo, hi]``."""

    gidx: int
    width: int
    lo: int = 0
    hi: int = 0
    pending: bool = False
    """``hi`` has passed 2**width but ``lo`` has not: whether it wrapped yet is unknown."""
    cleared_in_window: bool = False
    """Its status bit was written to 0 while ``pending``."""


Effect = Callable[[], None]
Reader = Callable[[], Expect]
Writer = Callable[[int], "Effect | Fault"]


class RefPmu:
    """The reference PMU of one logical CPU, at CPL 0 with CR4.PCE clear after reset.

    ``step(op)`` returns what ``op`` may return; after checking the model's result against it,
    ``learn(actual)`` on that expectation commits the operation. ``check`` does both.
    """

    def __init__(self, caps: X86PmuCaps) -> None:
        self.shape = s = Shape.of(caps)
        self.cpl = CPL_KERNEL
        self.pce = False
        self.sel = [0] * s.n_gp
        self.counters = {i: _Counter(i, s.gp_width) for i in range(s.n_gp)}
        self.counters |= {FIXED_BASE + i: _Counter(FIXED_BASE + i, s.fixed_width)
                          for i in s.fixed}
        self.fixed_ctrl = 0
        self.global_ctrl = _mask(s.n_gp) if s.has_global else 0
        self.status = 0
        """GLOBAL_STATUS, assuming no pending wrap has happened yet."""
        self.stale = 0
        """GLOBAL_STATUS bits whose value is unknown (a wrap and a clear of unknown order)."""
        self.msrs: dict[int, tuple[Reader, Writer]] = self._msr_table()

    def __repr__(self) -> str:
        return f"RefPmu(shape={self.shape!r})"

    # -- the port --------------------------------------------------------------------------
    def check(self, op: Any, actual: Any) -> str | None:
        """Step ``op``; None if ``actual`` is allowed (and committed), else what was expected."""
        expect = self.step(op)
        if not expect.matches(actual):
            return f"expected {expect!r}"
        expect.learn(actual)
        return None

    def step(self, op: Any) -> Expect:
        """What ``op`` may return; the caller must ``learn`` the observed outcome."""
        match op:
            case Rdmsr(addr):
                entry = self.msrs.get(addr) if self.cpl == CPL_KERNEL else None
                return self._instruction(entry is None, entry[0] if entry else None)
            case Rdpmc(ecx):
                counter, modulus = self._rdpmc_counter(ecx)
                if counter is None:
                    return self._instruction(True, None)
                return self._instruction(False, self._counter_reader(counter, modulus))
            case Wrmsr(addr, value):
                entry = self.msrs.get(addr) if self.cpl == CPL_KERNEL else None
                if entry is None or not 0 <= value <= _mask(64):
                    return self._instruction(True, None)
                return self._write(entry[1](value))
            case SetCr4Pce(enabled):
                if self.cpl != CPL_KERNEL:
                    return self._instruction(True, None)
                return self._write(lambda: setattr(self, "pce", enabled))
            case SetCpl(cpl):
                return Exactly(None, lambda: setattr(self, "cpl", cpl))
            case Execute(stream):
                return Exactly(None, lambda: self._count(stream, faulted=False))
        raise TypeError(f"the reference models RDMSR/WRMSR/RDPMC/Execute/SetCpl/SetCr4Pce, "
                        f"not {op!r}")

    def _instruction(self, faults: bool, read: Reader | None) -> Expect:
        """A read-type instruction: read as it executes, then retire it (unless it faults)."""
        if faults or read is None:
            self._count(None, faulted=True)
            return GP
        return Then(read(), lambda: self._count(None, faulted=False))

    def _write(self, outcome: Effect | Fault) -> Expect:
        """A write-type instruction: count it as the observed outcome says, then commit."""
        def retire_then(effect: Effect | None) -> Effect:
            def commit() -> None:
                self._count(None, faulted=effect is None)
                if effect:
                    effect()
            return commit

        if isinstance(outcome, Fault):
            return Exactly(Fault.GP, retire_then(None))
        return Exactly(None, retire_then(outcome))

    # -- counting --------------------------------------------------------------------------
    def _count(self, stream: Any, *, faulted: bool) -> None:
        """Advance every counting counter over one port instruction (``stream`` None) or one
        executed stream. Gating is decided on the state before the operation's effect."""
        classes = {g: self._event_class(g) for g in self.counters}
        for gidx, cls in classes.items():
            if cls is not None:
                lo, hi = self._bounds(cls, stream, faulted)
                self._advance(self.counters[gidx], lo, hi)

    def _bounds(self, cls: str, stream: Any, faulted: bool) -> tuple[int, int]:
        if cls == ZERO:
            return (0, 0)
        if stream is None:
            retired = 0 if faulted else 1
            insn = (retired, retired)
            return {INSN: insn, BRANCH: (0, 0), CYCLES: (1, PORT_OP_MAX_EVENTS),
                    MOVING: (1, PORT_OP_MAX_EVENTS)}.get(cls, (0, PORT_OP_MAX_EVENTS))
        counts = stream.counts
        cycles, insns = counts["cycles"], counts.get("instructions", 0)
        bound = STREAM_EVENTS_PER_UNIT * (cycles + insns)
        exact = {INSN: insns, BRANCH: counts.get("branches", 0), CYCLES: cycles}
        if cls in exact:
            return (exact[cls], exact[cls])
        return (1, bound) if cls == MOVING else (0, bound)

    def _event_class(self, gidx: int) -> str | None:
        """What the counter counts now, or None if it does not count (the counting rule)."""
        s = self.shape
        if s.has_global and not self.global_ctrl >> gidx & 1:
            return None
        if s.intel and s.version >= 4 and self.status >> STATUS_CTR_FRZ & 1:
            return None
        if gidx >= FIXED_BASE:
            return self._fixed_class(gidx - FIXED_BASE)
        return self._gp_class(gidx)

    def _fixed_class(self, i: int) -> str | None:
        """SDM table 20-2: INST_RETIRED.ANY, CPU_CLK_UNHALTED.THREAD, .REF_TSC, TOPDOWN.SLOTS."""
        field = self.fixed_ctrl >> (4 * i) & 0xF
        if not field & (FIXED_FIELD_OS if self.cpl == CPL_KERNEL else FIXED_FIELD_USR):
            return None
        return (INSN, CYCLES, OTHER, MOVING)[i] if i < 4 else OTHER

    def _gp_class(self, i: int) -> str | None:
        sel = self.sel[i]
        ring_bit = SEL_OS if self.cpl == CPL_KERNEL else SEL_USR
        if not (sel >> SEL_EN & 1 and sel >> ring_bit & 1):
            return None
        if self.shape.intel:
            if sel >> SEL_IN_TX & 1:
                # SDM 20.3.6.5: only counts inside a transactional region; there is none here.
                return ZERO
            event = (sel & 0xFF, sel >> 8 & 0xFF)
            table = {(0xC0, 0): INSN, (0xC4, 0): BRANCH, (0x3C, 0): CYCLES}
        else:
            if sel >> AMD_GUEST_ONLY & 0b11:
                return None  # APM 13.2.1: with EFER.SVME = 0, Host/GuestOnly counters stop
            event = (sel & 0xFF | (sel >> 32 & 0xF) << 8, sel >> 8 & 0xFF)
            table = {(0xC0, 0): INSN, (0xC2, 0): BRANCH, (0x76, 0): CYCLES}
        if sel >> 24 & 0xFF or sel >> SEL_EDGE & 1:
            return OTHER  # CMASK / EDGE count cycles or edges of a condition (INV needs CMASK)
        return table.get(event, OTHER)

    def _advance(self, c: _Counter, lo: int, hi: int) -> None:
        c.lo += lo
        c.hi += hi
        limit = 1 << c.width
        if c.lo >= limit:
            c.lo -= limit
            c.hi -= limit
            self._wrap_happened(c)
        elif c.hi >= limit and not c.pending:
            c.pending, c.cleared_in_window = True, False

    def _wrap_happened(self, c: _Counter) -> None:
        """The counter wrapped at some point of its pending window (or just now).

        The wrap sets the bit; if software cleared the bit during the window, the order of the
        two is unknown and so is the bit, unless it is 1 now anyway (a wrap only sets it).
        """
        bit = 1 << c.gidx
        if self.shape.has_global:
            if c.pending and c.cleared_in_window and not self.status & bit:
                self.stale |= bit
            else:
                self.status |= bit
                self.stale &= ~bit
        c.pending = False

    def _counter_reader(self, c: _Counter, modulus: int) -> Reader:
        return lambda: CounterValue(c, modulus, lambda x: self._learn_counter(c, x))

    def _learn_counter(self, c: _Counter, x: int) -> None:
        """A read showed the counter at unwrapped ``x`` (within ``[lo, hi]``)."""
        c.lo = c.hi = x
        if x >= 1 << c.width:
            c.lo = c.hi = x - (1 << c.width)
            self._wrap_happened(c)
        c.pending = False

    def _write_counter(self, c: _Counter, value: int) -> None:
        if c.pending and self.shape.has_global and not self.status >> c.gidx & 1:
            self.stale |= 1 << c.gidx  # it may have wrapped before the write, or not
        c.pending = False
        c.lo = c.hi = value

    def _clear_status(self, bits: int) -> None:
        self.status &= ~bits
        self.stale &= ~bits
        for c in self.counters.values():
            if c.pending and bits >> c.gidx & 1:
                c.cleared_in_window = True

    def _set_status(self, bits: int) -> None:
        self.status |= bits
        self.stale &= ~bits

    def status_expect(self) -> StatusValue:
        """GLOBAL_STATUS as far as the reference knows it."""
        pending = sum(1 << c.gidx for c in self.counters.values() if c.pending)
        return StatusValue(self.status, self.stale | (pending & ~self.status))

    # -- RDPMC -----------------------------------------------------------------------------
    def _rdpmc_counter(self, ecx: int) -> tuple[_Counter | None, int]:
        """SDM RDPMC: ECX[30] picks the fixed space, ECX[29:0] the index, ECX[31] a fast
        (low 32 bits) read; APM RDPMC: ECX is the counter number. Otherwise #GP."""
        s = self.shape
        if (self.cpl != CPL_KERNEL and not self.pce) or not 0 <= ecx <= _mask(32):
            return None, 0
        if not s.intel:
            c = self.counters.get(ecx) if ecx < s.n_gp else None
            return c, 1 << s.gp_width
        if ecx & RDPMC_FAST and not s.fast_rdpmc:
            return None, 0
        index = ecx & RDPMC_INDEX
        if ecx & RDPMC_FIXED:
            c = self.counters.get(FIXED_BASE + index) if index in s.fixed else None
        else:
            c = self.counters.get(index) if index < s.n_gp else None
        if c is None:
            return None, 0
        return c, (1 << 32) if ecx & RDPMC_FAST else (1 << c.width)

    # -- MSRs ------------------------------------------------------------------------------
    def _msr_table(self) -> dict[int, tuple[Reader, Writer]]:
        s = self.shape
        table: dict[int, tuple[Reader, Writer]] = {}
        if s.intel:
            for i in range(s.n_gp):
                table[IA32_PERFEVTSEL0 + i] = (self._sel_reader(i), self._intel_sel_writer(i))
                table[IA32_PMC0 + i] = (self._ctr_reader(i), self._legacy_ctr_writer(i))
                if s.fw_write:
                    table[IA32_A_PMC0 + i] = (self._ctr_reader(i), self._full_ctr_writer(i))
            for i in s.fixed:
                g = FIXED_BASE + i
                table[IA32_FIXED_CTR0 + i] = (self._ctr_reader(g), self._full_ctr_writer(g))
            if s.version >= 2:
                self._intel_global_msrs(table)
            if s.perf_capabilities is not None:
                value = s.perf_capabilities
                table[IA32_PERF_CAPABILITIES] = (lambda: Exactly(value), lambda v: Fault.GP)
            return table
        for i in range(min(4, s.n_gp)):
            table[MSR_K7_EVNTSEL0 + i] = (self._sel_reader(i), self._amd_sel_writer(i))
            table[MSR_K7_PERFCTR0 + i] = (self._ctr_reader(i), self._amd_ctr_writer(i))
        if s.amd_core:
            for i in range(s.n_gp):
                table[MSR_F15H_PERF_CTL0 + 2 * i] = (self._sel_reader(i), self._amd_sel_writer(i))
                table[MSR_F15H_PERF_CTR0 + 2 * i] = (self._ctr_reader(i),
                                                     self._amd_ctr_writer(i))
        if s.amd_v2:
            bits = _mask(s.n_gp)
            table[AMD_GLOBAL_CTL] = (self._global_ctrl_reader, self._global_ctrl_writer(bits))
            table[AMD_GLOBAL_STATUS] = (self.status_expect, lambda v: Fault.GP)
            table[AMD_GLOBAL_STATUS_CLR] = (_reads_zero, self._status_writer(bits, set_=False))
            table[AMD_GLOBAL_STATUS_SET] = (_reads_zero, self._status_writer(bits, set_=True))
        return table

    def _intel_global_msrs(self, table: dict[int, tuple[Reader, Writer]]) -> None:
        s = self.shape
        per_field = FIXED_FIELD_OS | FIXED_FIELD_USR | FIXED_FIELD_PMI
        per_field |= FIXED_FIELD_ANY if s.any_thread else 0
        ctrl_valid = sum(per_field << (4 * i) for i in s.fixed)
        table[IA32_FIXED_CTR_CTRL] = (lambda: Exactly(self.fixed_ctrl),
                                      self._plain_writer("fixed_ctrl", ctrl_valid))
        table[IA32_PERF_GLOBAL_CTRL] = (self._global_ctrl_reader,
                                        self._global_ctrl_writer(s.counter_bits))
        table[IA32_PERF_GLOBAL_STATUS] = (self.status_expect, lambda v: Fault.GP)
        status_bits = s.counter_bits | s.status_extra
        table[IA32_PERF_GLOBAL_OVF_CTRL] = (_reads_zero,
                                            self._status_writer(status_bits, set_=False))
        if s.version >= 4:
            # SDM table 2-2: STATUS_SET has no CondChgd (bit 63) field.
            set_bits = status_bits & ~(1 << STATUS_COND_CHGD)
            table[IA32_PERF_GLOBAL_STATUS_SET] = (_reads_zero,
                                                  self._status_writer(set_bits, set_=True))

    def _sel_reader(self, i: int) -> Reader:
        return lambda: Exactly(self.sel[i])

    def _ctr_reader(self, gidx: int) -> Reader:
        c = self.counters[gidx]
        return self._counter_reader(c, 1 << c.width)

    def _global_ctrl_reader(self) -> Expect:
        return Exactly(self.global_ctrl)

    def _intel_sel_writer(self, i: int) -> Writer:
        s = self.shape
        valid = 0xFFFF_FFFF & ~(1 << SEL_ANY)
        valid |= (1 << SEL_ANY) if s.any_thread else 0
        valid |= (1 << SEL_IN_TX) if s.tsx else 0
        txcp = (1 << SEL_IN_TXCP) if s.tsx else 0
        if i == IN_TXCP_COUNTER:
            valid |= txcp

        def write(v: int) -> Effect | Fault:
            def effect() -> None:
                self.sel[i] = v
            if v & ~valid:  # includes IN_TXCP on a selector other than PERFEVTSEL2
                return Fault.GP
            return effect
        return write

    def _amd_sel_writer(self, i: int) -> Writer:
        def write(v: int) -> Effect | Fault:
            if v & ~AMD_SEL_VALID:
                return Fault.GP
            return lambda: self.sel.__setitem__(i, v)
        return write

    def _legacy_ctr_writer(self, i: int) -> Writer:
        """SDM 20.2.6: a write through IA32_PMCx sign-extends EAX[31:0]; EDX is ignored."""
        c = self.counters[i]

        def write(v: int) -> Effect:
            low = v & 0xFFFF_FFFF
            signed = low - (1 << 32) if low >> 31 else low
            return lambda: self._write_counter(c, signed & _mask(c.width))
        return write

    def _amd_ctr_writer(self, i: int) -> Writer:
        """APM figure 13-8 marks PerfCtr bits 63:48 "Reserved", not MBZ; the project's
        assumption (docs/hardware.md, msrs.AMD_COUNTER_HIGH): they read as zero and writes to
        them are ignored rather than faulting."""
        c = self.counters[i]

        def write(v: int) -> Effect:
            return lambda: self._write_counter(c, v & _mask(c.width))
        return write

    def _full_ctr_writer(self, gidx: int) -> Writer:
        """IA32_A_PMCx and fixed counters: bits above the width are reserved (#GP)."""
        c = self.counters[gidx]

        def write(v: int) -> Effect | Fault:
            if v >> c.width:
                return Fault.GP
            return lambda: self._write_counter(c, v)
        return write

    def _plain_writer(self, attr: str, valid: int) -> Writer:
        def write(v: int) -> Effect | Fault:
            if v & ~valid:
                return Fault.GP
            return lambda: setattr(self, attr, v)
        return write

    def _global_ctrl_writer(self, valid: int) -> Writer:
        return self._plain_writer("global_ctrl", valid)

    def _status_writer(self, valid: int, *, set_: bool) -> Writer:
        def write(v: int) -> Effect | Fault:
            if v & ~valid:
                return Fault.GP
            return (lambda: self._set_status(v)) if set_ else (lambda: self._clear_status(v))
        return write

    # -- what a test enumerates ------------------------------------------------------------
    def implemented_msrs(self) -> list[int]:
        """Every MSR address the reference implements, in order."""
        return sorted(self.msrs)

    def valid_rdpmc_indices(self) -> list[int]:
        """Every RDPMC ECX that names a counter (without the fast bit)."""
        s = self.shape
        gp = list(range(s.n_gp))
        return gp if not s.intel else gp + [RDPMC_FIXED | i for i in s.fixed]


def _reads_zero() -> Expect:
    return Exactly(0)
