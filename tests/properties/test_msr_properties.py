"""Guest WRMSR / RDMSR / RDPMC sequences on bare metal against a reference written from the
manuals (``reference_model.py``): every operation gets the architectural fault or a value the
reference allows, and the final state of every readable MSR matches.

All examples are
derandomized and database-less (``strategies.PROPERTY_SETTINGS``): CI sees the same ones.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vpmu.guest import Execute, Fault, Rdmsr, Rdpmc, Wrmsr
from vpmu.workloads import loop_self

from . import reference_model as ref
from .strategies import (
    PROPERTY_SETTINGS,
    U64,
    Scenario,
    bit_subsets,
    counter_values,
    final_reads,
    fmt_op,
    global_msrs,
    gp_msrs,
    presets_where,
    run_on_bare_metal,
    scenarios,
    shape_of,
)

COUNT_INSTRUCTIONS = 0x43_00C0
"""EVTSEL: instructions retired, OS | USR | EN."""


def check_against_reference(scenario: Scenario) -> None:
    """Run the scenario plus the final reads on bare metal; check each result in order."""
    ops = [*scenario.ops, *final_reads(scenario.preset.caps)]
    results = run_on_bare_metal(scenario.preset, ops)
    model = ref.RefPmu(scenario.preset.caps)
    for i, (op, actual) in enumerate(zip(ops, results, strict=True)):
        error = model.check(op, actual)
        assert error is None, f"op #{i} {fmt_op(op)} returned {actual!r}: {error}"


def run(preset: Any, *ops: Any) -> list[Any]:
    """Run a short program on a fresh bare-metal CPU; its results."""
    return run_on_bare_metal(preset, ops)


# -- the full comparison ----------------------------------------------------------------------
@settings(PROPERTY_SETTINGS, max_examples=1500)
@given(scenarios())
def test_port_matches_reference(scenario: Scenario) -> None:
    """Every operation and the final MSR state match the manuals' reference model."""
    check_against_reference(scenario)


# -- widths, sign extension, aliases ------------------------------------------------------------
def _sext32(value: int, width: int) -> int:
    low = value & 0xFFFF_FFFF
    return (low - (1 << 32) if low >> 31 else low) & ((1 << width) - 1)


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(presets_where(lambda s: s.intel and s.n_gp > 0), st.data())
def test_legacy_pmc_write_sign_extends_bit_31(preset: Any, data: Any) -> None:
    """IA32_PMCx takes EAX sign-extended to the width; every alias and RDPMC read it back."""
    s = shape_of(preset)
    i = data.draw(st.integers(0, s.n_gp - 1), label="counter")
    value = data.draw(counter_values(), label="value")
    expected = _sext32(value, s.gp_width)
    reads = [Rdmsr(ref.IA32_PMC0 + i), Rdpmc(i)]
    reads += [Rdmsr(ref.IA32_A_PMC0 + i)] if s.fw_write else []
    assert run(preset, Wrmsr(ref.IA32_PMC0 + i, value), *reads) == [None] + [expected] * len(
        reads)


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(presets_where(lambda s: s.intel and ((s.fw_write and s.n_gp) or s.fixed)), st.data())
def test_full_width_write_round_trips_or_faults_above_width(preset: Any, data: Any) -> None:
    """IA32_A_PMCx and fixed counters keep a value below 2^width and #GP (unchanged) above."""
    s = shape_of(preset)
    targets = [(ref.IA32_A_PMC0 + i, ref.IA32_PMC0 + i, i, s.gp_width)
               for i in range(s.n_gp) if s.fw_write]
    targets += [(ref.IA32_FIXED_CTR0 + i, None, ref.RDPMC_FIXED | i, s.fixed_width)
                for i in s.fixed]
    addr, alias, ecx, width = data.draw(st.sampled_from(targets), label="counter")
    value = data.draw(counter_values(), label="value")
    fits = value < 1 << width
    stored = value if fits else 0
    ops = [Wrmsr(addr, value), Rdmsr(addr), Rdpmc(ecx)] + ([Rdmsr(alias)] if alias else [])
    expected = [None if fits else Fault.GP] + [stored] * (len(ops) - 1)
    assert run(preset, *ops) == expected


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(presets_where(lambda s: not s.intel and s.amd_core), st.data())
def test_amd_k7_and_f15h_aliases_name_the_same_counter(preset: Any, data: Any) -> None:
    """A K7 PERFCTR/EVNTSEL write reads back through F15H and RDPMC, and vice versa."""
    s = shape_of(preset)
    i = data.draw(st.integers(0, min(4, s.n_gp) - 1), label="counter")
    value = data.draw(counter_values(), label="value")
    sel = data.draw(st.integers(0, 0xFFFF_FFFF).map(lambda v: v & ~(1 << 22)), label="select")
    k7_sel, k7_ctr = ref.MSR_K7_EVNTSEL0 + i, ref.MSR_K7_PERFCTR0 + i
    f15_sel, f15_ctr = gp_msrs(s, i)
    sel &= ref.AMD_SEL_VALID
    masked = value & ((1 << s.gp_width) - 1)
    results = run(preset, Wrmsr(k7_ctr, value), Rdmsr(f15_ctr), Rdpmc(i),
                  Wrmsr(f15_sel, sel), Rdmsr(k7_sel),
                  Wrmsr(f15_ctr, masked ^ 1), Rdmsr(k7_ctr))
    assert results == [None, masked, masked, None, sel, None, masked ^ 1]


# -- GLOBAL_STATUS: read-only, write-1-to-clear, write-1-to-set --------------------------------
@settings(PROPERTY_SETTINGS, max_examples=60)
@given(presets_where(lambda s: (s.intel and s.version >= 4) or s.amd_v2), st.data())
def test_status_set_and_clear_act_bitwise(preset: Any, data: Any) -> None:
    """STATUS_SET ORs bits in, the clear MSR takes them out, both read 0, STATUS is RO."""
    s = shape_of(preset)
    _ctl, status, clear, set_ = global_msrs(s)
    assert set_ is not None
    valid = s.counter_bits | s.status_extra
    set_valid = valid & ~(1 << ref.STATUS_COND_CHGD)  # SDM table 2-2: no CondChgd in SET
    bits = data.draw(bit_subsets(set_valid), label="set")
    cleared = data.draw(bit_subsets(valid), label="clear")
    left = bits & ~cleared
    results = run(preset, Wrmsr(set_, bits), Rdmsr(status), Rdmsr(set_),
                  Wrmsr(clear, cleared), Rdmsr(status), Rdmsr(clear),
                  Wrmsr(status, data.draw(st.integers(0, U64), label="status write")),
                  Rdmsr(status))
    assert results == [None, bits, 0, None, left, 0, Fault.GP, left]


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(presets_where(lambda s: (s.intel and s.version >= 2) or s.amd_v2), st.data())
def test_status_reserved_bits_fault_and_change_nothing(preset: Any, data: Any) -> None:
    """A write to the clear or set MSR with a bit outside its fields #GPs and is dropped."""
    s = shape_of(preset)
    _ctl, status, clear, set_ = global_msrs(s)
    target = data.draw(st.sampled_from([a for a in (clear, set_) if a is not None]))
    valid = s.counter_bits | s.status_extra
    if target == set_:
        valid &= ~(1 << ref.STATUS_COND_CHGD)
    reserved = data.draw(st.integers(0, 63).filter(lambda b: not valid >> b & 1))
    value = data.draw(bit_subsets(valid), label="other bits") | 1 << reserved
    assert run(preset, Wrmsr(target, value), Rdmsr(status)) == [Fault.GP, 0]


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(presets_where(lambda s: s.has_global and s.n_gp > 0), st.data())
def test_overflow_sets_status_bit_and_w1c_clears_it(preset: Any, data: Any) -> None:
    """A counter at -k that counts n + 1 instructions sets its status bit iff it wraps."""
    s = shape_of(preset)
    i = data.draw(st.integers(0, s.n_gp - 1), label="counter")
    k = data.draw(st.integers(1, 40), label="k")
    n = data.draw(st.integers(1, 40), label="n")
    sel, ctr = gp_msrs(s, i)
    _ctl, status, clear, _set = global_msrs(s)
    start = (1 << s.gp_width) - k
    # The enabling WRMSR is not counted; the loop's n and the disabling WRMSR are.
    results = run(preset, Wrmsr(ctr, start), Wrmsr(sel, COUNT_INSTRUCTIONS),
                  Execute(loop_self(n)), Wrmsr(sel, 0), Rdmsr(status), Rdpmc(i),
                  Wrmsr(clear, 1 << i), Rdmsr(status))
    wrapped = n + 1 >= k
    assert results[4] >> i & 1 == wrapped
    assert results[5] == (start + n + 1) % (1 << s.gp_width)
    assert results[6] is None and results[7] >> i & 1 == 0


# -- gating ------------------------------------------------------------------------------------
@settings(PROPERTY_SETTINGS, max_examples=60)
@given(presets_where(lambda s: s.has_global and (s.n_gp or 0 in s.fixed)), st.data())
def test_global_ctrl_gates_counting(preset: Any, data: Any) -> None:
    """GLOBAL_CTRL resets to GENMASK(n_gp-1, 0) and a counter counts iff its bit is set."""
    s = shape_of(preset)
    ctl = global_msrs(s)[0]
    counters = [(*gp_msrs(s, i), i, i) for i in range(s.n_gp)]
    if 0 in s.fixed:
        counters.append((ref.IA32_FIXED_CTR_CTRL, ref.IA32_FIXED_CTR0, ref.RDPMC_FIXED,
                         ref.FIXED_BASE))
    sel, ctr, ecx, gidx = data.draw(st.sampled_from(counters), label="counter")
    enable = 0x3 if sel == ref.IA32_FIXED_CTR_CTRL else COUNT_INSTRUCTIONS  # OS | USR
    others = data.draw(bit_subsets(s.counter_bits & ~(1 << gidx)), label="other bits")
    on = data.draw(st.booleans(), label="bit set")
    n, m = data.draw(st.integers(1, 50), label="n"), data.draw(st.integers(1, 50), label="m")
    results = run(preset, Rdmsr(ctl), Wrmsr(ctl, 0), Wrmsr(sel, enable), Wrmsr(ctr, 0),
                  Wrmsr(ctl, others | on << gidx), Execute(loop_self(n)), Wrmsr(ctl, 0),
                  Execute(loop_self(m)), Rdpmc(ecx))
    assert results[0] == (1 << s.n_gp) - 1
    assert results[-1] == (n + 1 if on else 0)


@settings(PROPERTY_SETTINGS, max_examples=30)
@given(presets_where(lambda s: s.intel and s.version >= 4 and s.n_gp > 0), st.data())
def test_ctr_frz_freezes_counting_until_cleared(preset: Any, data: Any) -> None:
    """On v4+, GLOBAL_STATUS.CTR_FRZ (set through STATUS_SET) stops every counter until reset."""
    s = shape_of(preset)
    i = data.draw(st.integers(0, s.n_gp - 1), label="counter")
    n, m = data.draw(st.integers(1, 50), label="n"), data.draw(st.integers(1, 50), label="m")
    sel, _ctr = gp_msrs(s, i)
    _ctl, _status, reset, set_ = global_msrs(s)
    frz = 1 << ref.STATUS_CTR_FRZ
    # The freezing WRMSR retires before it lands (+1); the unfreezing one retires frozen (+0);
    # an RDPMC reads before it retires.
    results = run(preset, Wrmsr(sel, COUNT_INSTRUCTIONS), Wrmsr(set_, frz),
                  Execute(loop_self(n)), Rdpmc(i), Wrmsr(reset, frz), Execute(loop_self(m)),
                  Rdpmc(i))
    assert results == [None, None, None, 1, None, None, 1 + m]


# -- regressions: bugs the comparison found, one test each (minimal examples) -------------------
FAULTING_OPS = st.sampled_from([
    Rdmsr(ref.IA32_PERFEVTSEL0 + 8), Wrmsr(ref.IA32_PERF_GLOBAL_STATUS, 0),
    Wrmsr(ref.AMD_GLOBAL_STATUS, 0), Rdpmc(64), Wrmsr(ref.MSR_K7_EVNTSEL0, 1 << 63),
    Wrmsr(ref.IA32_PERFEVTSEL0, 1 << 63)])
"""Operations that #GP on every preset and variant: a GP selector past the architectural
eight, a write to a read-only or absent status MSR, RDPMC of a missing counter, a reserved bit
(or an absent MSR on the other vendor)."""


# Minimal: intel-icx: Wrmsr(0x186, 0x4300c0), Rdmsr(0x18e) -> #GP, Rdpmc(0) -> 2, not 1 (same on
# amd-zen4 with Wrmsr(0xc0010200, 0x4300c0), Wrmsr(0xc0000300, 0) -> #GP, Rdpmc(0) -> 2).
@settings(PROPERTY_SETTINGS, max_examples=20)
@given(presets_where(lambda s: s.n_gp > 0), FAULTING_OPS)
def test_faulting_instruction_does_not_retire(preset: Any, faulting: Any) -> None:
    """An instruction that takes #GP is not counted by INST_RETIRED (SDM Vol. 3A 6.5), and an
    RDPMC reads before it retires: the counter reads 0."""
    s = shape_of(preset)
    sel, _ctr = gp_msrs(s, 0)
    results = run(preset, Wrmsr(sel, COUNT_INSTRUCTIONS), faulting, Rdpmc(0))
    assert results[1] is Fault.GP, "the strategy must pick an operation that faults here"
    assert results[2] == 0


# Minimal: intel-skl: Wrmsr(0x186, 0x1_0043_00c0), Execute(loop_self(1)), Rdpmc(0) -> 2, not 0.
@settings(PROPERTY_SETTINGS, max_examples=10)
@given(presets_where(lambda s: s.intel and s.tsx and s.n_gp > 0), st.integers(1, 100))
def test_in_tx_counts_nothing_outside_transactions(preset: Any, n: int) -> None:
    """With IN_TX set and no transactional region, an instructions counter stays at 0."""
    sel = COUNT_INSTRUCTIONS | 1 << ref.SEL_IN_TX
    results = run(preset, Wrmsr(ref.IA32_PERFEVTSEL0, sel), Execute(loop_self(n)), Rdpmc(0))
    assert results == [None, None, 0]


# Minimal: intel-skl: Wrmsr(0x186, 0x2_0043_00c0) -> None (and Rdmsr(0x186) reads it back),
# not #GP.
@settings(PROPERTY_SETTINGS, max_examples=10)
@given(presets_where(lambda s: s.intel and s.tsx and s.n_gp > 0), st.data())
def test_in_txcp_is_reserved_outside_perfevtsel2(preset: Any, data: Any) -> None:
    """IN_TXCP on any selector but PERFEVTSEL2 takes #GP and leaves the selector unchanged."""
    s = shape_of(preset)
    i = data.draw(st.integers(0, s.n_gp - 1).filter(lambda i: i != ref.IN_TXCP_COUNTER))
    addr = ref.IA32_PERFEVTSEL0 + i
    results = run(preset, Wrmsr(addr, COUNT_INSTRUCTIONS | 1 << ref.SEL_IN_TXCP), Rdmsr(addr))
    assert results == [Fault.GP, 0]
