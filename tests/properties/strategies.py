"""Shared Hypothesis strategies for the register-port property tests.

- ``presets()``: the six built-in presets and hardware variants of them
  (``preset.with_caps(...)``: version, counter counts, widths, FW_WRITE, AnyThread, TSX, ...).
- ``scenarios()``: a preset plus a sequence of guest operations, biased toward the interesting:
  the MSRs the shape implements, the ones just past the end, aliases and the other vendor's;
  values 0, all-ones, 2^31, 2^32 - 1, 2^47, 2^48 - 1, 2^48, just below a counter's wrap point,
  reserved bits one at a time, event selects that count instructions / branches / cycles;
  RDPMC indices in and out of range, with the fixed and fast bits; short scripted streams.
- ``PROPERTY_SETTINGS``: deterministic and database-less, so CI sees the same examples.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from vpmu.arch.presets import PRESETS, CpuPreset
from vpmu.guest import Execute, Rdmsr, Rdpmc, SetCpl, SetCr4Pce, Wrmsr
from vpmu.machine import BareMetal
from vpmu.workloads import loop, loop_self, selftest_measured_block

from . import reference_model as ref

PROPERTY_SETTINGS = settings(
    derandomize=True, database=None, deadline=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow],
)
"""Every property test runs with these (plus its own ``max_examples``): fixed examples."""

U64 = (1 << 64) - 1

OUT_OF_SCOPE_MSRS = frozenset(
    [0x1C8, 0x1C9, 0x1D9, 0x834, *range(0x680, 0x6A0), *range(0x6C0, 0x6E0),
     *range(0xDC0, 0xDE0)])
"""MSRs the model implements that the reference does not model (DEBUGCTL, LBR, LVTPC)."""

INTEL_POOL = tuple(
    [a + i for a in (ref.IA32_PERFEVTSEL0, ref.IA32_PMC0, ref.IA32_A_PMC0) for i in range(9)]
    + [ref.IA32_FIXED_CTR0 + i for i in range(ref.MAX_FIXED + 1)]
    + list(range(ref.IA32_FIXED_CTR_CTRL - 1, ref.IA32_PERF_GLOBAL_STATUS_SET + 2))
    + [ref.IA32_PERF_CAPABILITIES, ref.IA32_PMC0 - 1, ref.IA32_PERFEVTSEL0 - 1])
"""Intel addresses: every counter slot up to one past the architectural maximum, the global
block and its neighbours."""

AMD_POOL = tuple(
    list(range(ref.MSR_K7_EVNTSEL0, ref.MSR_K7_PERFCTR0 + 5))
    + list(range(ref.MSR_F15H_PERF_CTL0, ref.MSR_F15H_PERF_CTL0 + 14))
    + list(range(ref.AMD_GLOBAL_STATUS, ref.AMD_GLOBAL_STATUS_SET + 2)))
"""AMD addresses: K7 and F15H blocks up to one past the end, the PerfMonV2 block."""

MSR_POOL = INTEL_POOL + AMD_POOL

# -- presets --------------------------------------------------------------------------------
X86_PRESETS = tuple(p for p in PRESETS.values() if p.caps.arch == "x86")
"""The x86 presets: the reference model here is x86's (the Arm one is test_arm64_pmu_arith)."""
INTEL_PRESETS = tuple(p for p in PRESETS.values() if p.vendor == "intel")
AMD_PRESETS = tuple(p for p in PRESETS.values() if p.vendor == "amd")


@st.composite
def intel_variants(draw: Any) -> CpuPreset:
    """A hardware variant of an Intel preset: any version 0-5 and counter shape."""
    base = draw(st.sampled_from(INTEL_PRESETS))
    width = st.sampled_from([48, 40, 32])
    return base.with_caps(
        version=draw(st.integers(0, 5)), n_gp=draw(st.integers(0, 8)),
        n_fixed=draw(st.integers(0, 4)),
        fixed_mask=draw(st.sampled_from([0, 0b1, 0b101, 0xF, 0x80, 0xFF, 1 << 15])),
        fw_write=draw(st.booleans()), anythread_deprecated=draw(st.booleans()),
        tsx=draw(st.booleans()), rdpmc_fast_read=draw(st.booleans()),
        gp_width=draw(width), fixed_width=draw(width))


@st.composite
def amd_variants(draw: Any) -> CpuPreset:
    """An AMD preset as K7-only (4), PerfCtrCore (6) or PerfMonV2 with 1-6 counters."""
    base = draw(st.sampled_from(AMD_PRESETS))
    kind = draw(st.sampled_from(["v2", "core", "k7"]))
    if kind == "v2":
        return base.with_caps(n_gp=draw(st.integers(1, 6)))
    if kind == "core":
        return base.with_caps(version=0, perfmon_v2=False, n_gp=6)
    return base.with_caps(version=0, perfmon_v2=False, perfctr_core=False, n_gp=4)


def presets() -> st.SearchStrategy[CpuPreset]:
    """The six built-in presets (first, so shrinking prefers them) or a variant."""
    return st.one_of(st.sampled_from(X86_PRESETS), intel_variants(), amd_variants())


# -- values ---------------------------------------------------------------------------------
COUNTER_VALUES = (0, 1, 0xDEAD, 0xFFFF, 0x7FFF_FFFF, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 47,
                  (1 << 48) - 1, 1 << 48, U64, 0xFF01_2345_6789, 0xFFFF_FF01_2345_6789)
"""Values the suites write (kvm-unit-tests check_rdpmc / write_width, selftests 0xDEAD) and the
edges of 32-bit, 48-bit and 64-bit counters."""

INTERESTING_EVENTS = ((0xC0, 0), (0xC4, 0), (0x3C, 0), (0xC2, 0), (0x76, 0), (0x3C, 1),
                      (0x2E, 0x4F), (0xC5, 0), (0xA4, 1), (0x00, 0x01), (0xD0, 0x81))
"""Intel instructions, branches, cycles; AMD branches, cycles; ref cycles, LLC refs, branch
misses, slots, the fixed pseudo-encoding, loads."""


@cache
def near_wrap() -> st.SearchStrategy[int]:
    """Just below (or at) the wrap point of a 32/40/48-bit counter, or -k through a legacy
    32-bit write."""
    return st.builds(lambda w, k: (1 << w) - k, st.sampled_from([32, 40, 48]), st.integers(0, 80))


@cache
def counter_values() -> st.SearchStrategy[int]:
    """Values for counter MSRs."""
    return st.one_of(st.sampled_from(COUNTER_VALUES), near_wrap(), st.integers(0, (1 << 48) - 1),
                     st.integers(0, U64))


@cache
@st.composite
def event_selects(draw: Any) -> int:
    """Event selects: mostly enabled, counting an interesting event at OS|USR; sometimes a
    qualifier, a reserved bit or a vendor-specific high bit."""
    event, umask = draw(st.one_of(st.sampled_from(INTERESTING_EVENTS),
                                  st.tuples(st.integers(0, 255), st.integers(0, 255))))
    rings = draw(st.sampled_from([0b11, 0b11, 0b10, 0b01, 0b00]))  # bit 1 OS, bit 0 USR
    value = event | umask << 8 | rings << ref.SEL_USR
    value |= draw(st.sampled_from([1, 1, 1, 0])) << ref.SEL_EN
    value |= draw(st.sampled_from([0, 0, 1])) << ref.SEL_INT
    value |= draw(st.sampled_from([0] * 6 + [1 << ref.SEL_EDGE, 1 << ref.SEL_INV, 1 << ref.SEL_PC,
                                             1 << ref.SEL_ANY, 2 << 24, 1 << 24 | 1 << 23]))
    value |= draw(st.sampled_from([0] * 8 + [1 << 32, 1 << 33, 3 << 32, 1 << 34, 1 << 35,
                                             0xF << 32, 1 << 40, 1 << 41, 1 << 63]))
    return value


@cache
@st.composite
def fixed_ctrls(draw: Any) -> int:
    """FIXED_CTR_CTRL: a 4-bit field per counter from the useful patterns (OS, USR, both, PMI,
    ANY)."""
    fields = draw(st.lists(st.sampled_from([0, 1, 2, 3, 3, 0xB, 0x4, 0x8, 0xF]),
                           min_size=1, max_size=8))
    return sum(f << (4 * i) for i, f in enumerate(fields))


@cache
def global_bits() -> st.SearchStrategy[int]:
    """GLOBAL_CTRL / STATUS values: counter bits, the status bits above them, single bits."""
    counters = st.builds(lambda gp, fx: gp | fx << ref.FIXED_BASE,
                         st.integers(0, 0x1FF), st.integers(0, 0x1F))
    extra = st.lists(st.sampled_from([55, 58, 59, 60, 61, 62, 63]), max_size=3).map(
        lambda bs: sum(1 << b for b in set(bs)))
    return st.one_of(counters, st.builds(int.__or__, counters, extra),
                     st.integers(0, 63).map(lambda b: 1 << b), st.just(U64),
                     st.integers(0, U64))


@cache
def any_values() -> st.SearchStrategy[int]:
    """A value for any MSR."""
    return st.one_of(counter_values(), event_selects(), fixed_ctrls(), global_bits(),
                     st.integers(0, 63).map(lambda b: 1 << b))


@cache
def values_for(addr: int, caps: Any) -> st.SearchStrategy[int]:
    """Values that mean something for ``addr`` on this shape, with a fifth from anywhere."""
    if addr in range(ref.IA32_PERFEVTSEL0, ref.IA32_PERFEVTSEL0 + 9) or addr in range(
            ref.MSR_K7_EVNTSEL0, ref.MSR_K7_EVNTSEL0 + 4) or (
            addr in range(ref.MSR_F15H_PERF_CTL0, ref.MSR_F15H_PERF_CTL0 + 14) and addr % 2 == 0):
        own = event_selects()
    elif addr == ref.IA32_FIXED_CTR_CTRL:
        own = fixed_ctrls()
    elif addr in range(ref.IA32_PERF_GLOBAL_STATUS, ref.IA32_PERF_GLOBAL_STATUS_SET + 1) or (
            addr in range(ref.AMD_GLOBAL_STATUS, ref.AMD_GLOBAL_STATUS_SET + 1)):
        own = st.one_of(global_bits(), defined_global_bits(caps))
    else:
        own = counter_values()
    return st.one_of(own, own, own, own, any_values())


def _bit_interest(b: int) -> tuple[int, int]:
    """Draw order of bits (Hypothesis favours the first): CTR_FRZ, LBR_FRZ first, then by
    position."""
    return ((0 if b in (ref.STATUS_CTR_FRZ, ref.STATUS_LBR_FRZ) else 1), b)


def bit_subsets(mask: int) -> st.SearchStrategy[int]:
    """One of ``mask``'s bits, a few of them (each equally likely) or all of them."""
    positions = sorted((b for b in range(64) if mask >> b & 1), key=_bit_interest)
    if not positions:
        return st.just(0)
    one = st.sampled_from(positions)
    few = st.lists(one, max_size=4, unique=True)
    return st.one_of(one.map(lambda b: 1 << b), few.map(lambda bs: sum(1 << b for b in bs)),
                     st.just(mask))


@cache
def defined_global_bits(caps: Any) -> st.SearchStrategy[int]:
    """Values using only the bits GLOBAL_CTRL / STATUS define on this shape."""
    s = ref.Shape.of(caps)
    # The counter bits and the status bits above them drawn apart, so that CTR_FRZ (which
    # freezes counting on v4+) and the other high bits come up as often as the counters.
    return st.one_of(bit_subsets(s.counter_bits), bit_subsets(s.status_extra),
                     st.builds(int.__or__, bit_subsets(s.counter_bits),
                               bit_subsets(s.status_extra)))


# -- operations -----------------------------------------------------------------------------
@cache
def streams() -> st.SearchStrategy[Any]:
    """Short scripted streams (exact instructions and branches), sometimes a longer one."""
    return st.one_of(st.integers(1, 64).map(loop_self), st.integers(1, 16).map(loop),
                     st.just(selftest_measured_block()),
                     st.sampled_from([1000, 70_000]).map(loop_self))


@cache
def addresses(caps: Any) -> st.SearchStrategy[int]:
    """MSR addresses: mostly implemented ones, then the interesting pool, then anything."""
    implemented = ref.RefPmu(caps).implemented_msrs()
    random32 = st.integers(0, (1 << 32) - 1).filter(lambda a: a not in OUT_OF_SCOPE_MSRS)
    pool = st.sampled_from(MSR_POOL)
    if not implemented:
        return st.one_of(pool, random32)
    return st.one_of(st.sampled_from(implemented), st.sampled_from(implemented), pool, random32)


@cache
def rdpmc_indices(caps: Any) -> st.SearchStrategy[int]:
    """RDPMC ECX: valid indices, the next ones, with the fixed and fast bits, 64, anything."""
    valid = ref.RefPmu(caps).valid_rdpmc_indices()
    near = [*range(10), *(ref.RDPMC_FIXED | i for i in range(6)), 64, 1 << 29, (1 << 32) - 1]
    fast = [ref.RDPMC_FAST | i for i in valid[:3] or [0]]
    pool = st.sampled_from(near + fast)
    if valid:
        return st.one_of(st.sampled_from(valid), st.sampled_from(valid), pool,
                         st.integers(0, (1 << 32) - 1))
    return st.one_of(pool, st.integers(0, (1 << 32) - 1))


OP_KINDS = ("wrmsr",) * 9 + ("execute",) * 4 + ("rdmsr",) * 2 + ("rdpmc",) * 3 + (
    "cpl", "pce", "user", "status")


@cache
@st.composite
def operations(draw: Any, caps: Any) -> list[Any]:
    """One guest operation, WRMSR-heavy; or a short block: user-mode work read with RDPMC,
    or a GLOBAL_STATUS read, clear/set and re-read."""
    kind = draw(st.sampled_from(OP_KINDS))
    if kind == "wrmsr":
        addr = draw(addresses(caps))
        return [Wrmsr(addr, draw(values_for(addr, caps)))]
    if kind == "execute":
        return [Execute(draw(streams()))]
    if kind == "rdmsr":
        return [Rdmsr(draw(addresses(caps)))]
    if kind == "rdpmc":
        return [Rdpmc(draw(rdpmc_indices(caps)))]
    if kind == "cpl":  # rings 1 and 2 count as user (USR bit) and fault like ring 3
        return [SetCpl(draw(st.sampled_from([3, 0, 1, 2])))]
    if kind == "pce":
        return [SetCr4Pce(draw(st.booleans()))]
    if kind == "user":
        return [SetCr4Pce(draw(st.booleans())), SetCpl(draw(st.sampled_from([3, 1, 2]))),
                Execute(draw(streams())),
                Rdpmc(draw(rdpmc_indices(caps))), SetCpl(0)]
    s = ref.Shape.of(caps)
    if not s.has_global:
        return [Rdmsr(draw(addresses(caps)))]
    _ctl, status, clear, set_ = global_msrs(s)
    target = draw(st.sampled_from([a for a in (clear, set_) if a is not None]))
    return [Rdmsr(status), Wrmsr(target, draw(defined_global_bits(caps))), Rdmsr(status)]


def gp_msrs(shape: ref.Shape, i: int) -> tuple[int, int]:
    """GP counter ``i``'s select and counter MSR (Intel legacy alias; AMD F15H, else K7)."""
    if shape.intel:
        return ref.IA32_PERFEVTSEL0 + i, ref.IA32_PMC0 + i
    if shape.amd_core:
        return ref.MSR_F15H_PERF_CTL0 + 2 * i, ref.MSR_F15H_PERF_CTR0 + 2 * i
    return ref.MSR_K7_EVNTSEL0 + i, ref.MSR_K7_PERFCTR0 + i


def global_msrs(shape: ref.Shape) -> tuple[int, int, int, int | None]:
    """GLOBAL_CTRL, GLOBAL_STATUS, the W1C and the W1S MSR (None before Intel v4)."""
    if shape.intel:
        return (ref.IA32_PERF_GLOBAL_CTRL, ref.IA32_PERF_GLOBAL_STATUS,
                ref.IA32_PERF_GLOBAL_OVF_CTRL,
                ref.IA32_PERF_GLOBAL_STATUS_SET if shape.version >= 4 else None)
    return (ref.AMD_GLOBAL_CTL, ref.AMD_GLOBAL_STATUS, ref.AMD_GLOBAL_STATUS_CLR,
            ref.AMD_GLOBAL_STATUS_SET)


def shape_of(preset: CpuPreset) -> ref.Shape:
    """The reference's view of a preset's PMU."""
    return ref.Shape.of(preset.caps)


def presets_where(predicate: Any) -> st.SearchStrategy[CpuPreset]:
    """``presets()`` whose reference shape satisfies ``predicate``."""
    return presets().filter(lambda p: predicate(shape_of(p)))


EXACT_EVENTS = {True: ((0xC0, 0), (0xC0, 0), (0xC4, 0), (0x3C, 0)),
                False: ((0xC0, 0), (0xC0, 0), (0xC2, 0), (0x76, 0))}
"""Per vendor (True: Intel): instructions (twice as likely), branches, core cycles."""


@cache
def armings(caps: Any) -> st.SearchStrategy[list[Any]]:
    """Writes that arm one counter to overflow soon: a select counting instructions, branches
    or cycles (or the fixed counter's field), the counter just below its wrap point (through
    the legacy alias: -k sign-extended), and its GLOBAL_CTRL bit."""
    s = ref.RefPmu(caps).shape
    choices: list[st.SearchStrategy[list[Any]]] = []
    enable = [Wrmsr(global_msrs(s)[0], s.counter_bits)] if s.has_global else []
    for i in range(s.n_gp):
        sel, ctr = gp_msrs(s, i)
        selects = st.builds(
            lambda ev, flags: ev[0] | ev[1] << 8 | flags, st.sampled_from(EXACT_EVENTS[s.intel]),
            st.sampled_from([0x43 << 16, 0x43 << 16, 0x42 << 16, 0x53 << 16, 0x41 << 16]))
        below = st.one_of(st.integers(1, 80).map(lambda k: (1 << 32) - k),
                          st.integers(1, 80).map(lambda k, w=s.gp_width: (1 << w) - k))
        choices.append(st.tuples(st.just(sel), selects, st.just(ctr), below).map(
            lambda t: [Wrmsr(t[0], t[1]), Wrmsr(t[2], t[3]), *enable]))
    for i in s.fixed:
        fields = st.sampled_from([0x3, 0x3, 0xB, 0x1, 0x2]).map(lambda f, i=i: f << (4 * i))
        below = st.integers(1, 80).map(lambda k, w=s.fixed_width: (1 << w) - k)
        choices.append(st.tuples(fields, below).map(
            lambda t, i=i: [Wrmsr(ref.IA32_FIXED_CTR_CTRL, t[0]),
                            Wrmsr(ref.IA32_FIXED_CTR0 + i, t[1]), *enable]))
    return st.one_of(*choices) if choices else st.just([])


def fmt_op(op: Any) -> str:
    """An operation in hex, for readable falsifying examples."""
    match op:
        case Wrmsr(addr, value):
            return f"Wrmsr({addr:#x}, {value:#x})"
        case Rdmsr(addr):
            return f"Rdmsr({addr:#x})"
        case Rdpmc(ecx):
            return f"Rdpmc({ecx:#x})"
        case Execute(stream):
            return f"Execute({stream.name})"
    return repr(op)


def fmt_preset(preset: CpuPreset) -> str:
    """A preset by name, with the capability fields that differ from the built-in one."""
    base = PRESETS[preset.name].caps
    names = [f.name for f in dataclasses.fields(base)]
    diff = {k: getattr(preset.caps, k) for k in names
            if getattr(preset.caps, k) != getattr(base, k)}
    return preset.name + (f".with_caps(**{diff!r})" if diff else "")


class Scenario:
    """A preset and the guest operations to run on it (a plain class, so Hypothesis prints
    falsifying examples with this ``__repr__``: hex values, preset by name)."""

    __slots__ = ("ops", "preset")

    def __init__(self, preset: CpuPreset, ops: tuple[Any, ...] = ()) -> None:
        self.preset = preset
        self.ops = ops

    def __repr__(self) -> str:
        body = ",\n    ".join(fmt_op(op) for op in self.ops)
        return f"Scenario({fmt_preset(self.preset)},\n    {body})"


@st.composite
def scenarios(draw: Any, *, max_ops: int = 24, built_in: bool = False) -> Scenario:
    """A preset (a built-in one only with ``built_in``: a variant may lack what a design
    needs of its host), a few counters armed to overflow, then a WRMSR-heavy sequence of
    operations."""
    preset = draw(st.sampled_from(X86_PRESETS) if built_in else presets())
    caps = preset.caps
    setup = [op for ops in draw(st.lists(armings(caps), max_size=3)) for op in ops]
    ops = [op for block in draw(st.lists(operations(caps), min_size=4, max_size=max_ops))
           for op in block]
    return Scenario(preset, tuple(setup + ops))


def final_reads(caps: Any) -> list[Any]:
    """Back to CPL 0, then read every MSR of the vendor's pool and every RDPMC index."""
    r = ref.RefPmu(caps)
    pool = INTEL_POOL if r.shape.intel else AMD_POOL
    addrs = sorted(set(r.implemented_msrs()) | set(pool))
    rdpmc = r.valid_rdpmc_indices() + [ref.RDPMC_FAST | i for i in r.valid_rdpmc_indices()]
    return [SetCpl(0)] + [Rdmsr(a) for a in addrs] + [Rdpmc(e) for e in rdpmc]


def run_on_bare_metal(preset: CpuPreset, ops: list[Any] | tuple[Any, ...]) -> list[Any]:
    """Run ``ops`` as one guest program on a fresh bare-metal CPU; every result, in order."""
    def program() -> Any:
        results = []
        for op in ops:
            results.append((yield op))
        return results

    return BareMetal(preset).run(program)
