"""kvm-unit-tests x86/pmu.c port (conformance_suites.md 1.2): it passes on every preset on bare
metal, it records the checks the section implies, and it fails when the model under it breaks."""

from __future__ import annotations

from typing import Any

import pytest

from vpmu.arch.presets import PRESETS, CpuPreset
from vpmu.arch.x86 import events as ev
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import RDPMC_FIXED
from vpmu.guest.conformance import SUITES, CheckResult, Expectations, Runner, run_suite
from vpmu.guest.conformance.x86._kut_lib import LOOP, N
from vpmu.guest.conformance.x86.kut_pmu import SUITE
from vpmu.guest.port import Execute, Op, Rdpmc, WaitPmi, Wrmsr
from vpmu.machine.conformance import bare_metal_runner
from vpmu.workloads import Stream

from .port_shims import failed, fmt, shim

INTEL = [name for name, p in PRESETS.items() if p.vendor == "intel"]
AMD = [name for name, p in PRESETS.items() if p.vendor == "amd"]

def _run(preset: str | CpuPreset, expectations: Expectations | None = None,
         runner: Runner | None = None) -> list[CheckResult]:
    p = PRESETS[preset] if isinstance(preset, str) else preset
    return run_suite(SUITE, runner or bare_metal_runner(p), expectations or Expectations())




X86 = [n for n in PRESETS if PRESETS[n].caps.arch == "x86"]
"""The x86 presets: this suite is kvm-unit-tests x86/pmu.c."""


# -- the suite passes and records what the section implies --------------------------------
@pytest.mark.parametrize("name", X86)
def test_suite_passes_on_bare_metal(name: str) -> None:
    """Every non-skipped check passes."""
    results = _run(name)
    assert [r for r in results if not r.skipped], "the suite recorded no check"
    bad = failed(results)
    assert not bad, fmt(bad)


def _counter_run_checks(n_gp: int, n_events: int, n_fixed: int) -> int:
    """Checks one ``check_counters`` pass records on a v2+ PMU (1.2 tests 2-9)."""
    fixed0 = 1 if n_fixed else 0
    return (1                              # warm_up: cycles over the ten loops
            + n_events * n_gp              # check_gp_counters: every event on every counter
            + n_fixed                      # check_fixed_counters
            + n_gp + n_fixed               # check_rdpmc (fast reads #GP here: skips)
            + 1                            # check_counters_many: "all counters"
            + 1 + fixed0                   # check_counter_overflow: the measured presets
            + 4 * (n_gp + fixed0)          # ... cntr, status, status clear, irq per counter
            + 1 + 2)                       # cmask; running counter: cntr, status msr bit


def _expected_checks(p: CpuPreset) -> int:
    """Non-skipped checks (unexpected-#GP checks aside) for a v2+ preset, from section 1.2:
    RDPMC(64), check_counters, then the FW_WRITE rerun plus 11 write-width checks per GP
    counter (3 legacy writes x 2 aliases, 2 PMCi writes x 2 aliases, 1 #GP) on Intel, or the
    K7 rerun on 4 counters on AMD with PerfCtrCore. Intel's event table has 7 events, AMD's 4."""
    c = p.caps
    if c.is_intel:
        events = sum(1 for i in range(7) if i < c.ebx_length and not c.ebx_unavailable >> i & 1)
        fixed = min(c.n_fixed, 3)
        return 1 + 2 * _counter_run_checks(c.n_gp, events, fixed) + 11 * c.n_gp
    return 1 + _counter_run_checks(c.n_gp, 4, 0) + _counter_run_checks(4, 4, 0)


@pytest.mark.parametrize("name", X86)
def test_records_the_checks_the_section_implies(name: str) -> None:
    """The number of checks matches section 1.2's tests on the preset's PMU shape."""
    recorded = [r for r in _run(name) if not r.skipped
                and not r.check.startswith(("WRMSR ", "RDMSR "))]
    assert len(recorded) == _expected_checks(PRESETS[name]) > 100


def test_suite_is_registered_in_upstream_order() -> None:
    """The suite is registered by name; cases follow main(), TSX is not ported."""
    assert SUITES[SUITE.name] is SUITE
    names = [c.name for c in SUITE.cases]
    assert names[:3] == ["check_invalid_rdpmc_gp", "check_emulated_instr", "warm_up"]
    assert names.index("check_gp_counters/fw_write") < names.index(
        "check_gp_counters_write_width") < names.index("check_gp_counters/amd_k7")
    assert not [n for n in names if "tsx" in n]
    assert len(names) == len(set(names))


# -- shapes and expectations ---------------------------------------------------------------
def test_intel_without_arch_pmu_skips_the_suite() -> None:
    """Version 0 on Intel: the whole suite is skipped with upstream's message."""
    results = _run(PRESETS["intel-icx"].with_caps(version=0))
    assert [(r.skipped, r.detail) for r in results] == [(True, "No Intel Arch PMU is detected!")]


def test_without_fw_write_the_reruns_skip() -> None:
    """FW_WRITE clear: the PMCi rerun and the write-width test skip; the rest passes."""
    p = PRESETS["intel-icx"].with_caps(fw_write=False)
    results = _run(p)
    fw = [r for r in results if r.test.endswith("/fw_write") or "write_width" in r.test]
    assert fw and all(r.skipped and "FW_WRITE" in r.detail for r in fw)
    assert not failed(results)


def test_v1_pmu_gets_range_checks_only() -> None:
    """v1: no global MSRs, so no status or PMI checks and instructions only in range."""
    results = _run(PRESETS["intel-skl"].with_caps(version=1))
    assert not failed(results), fmt(failed(results))
    checks = {r.check for r in results}
    assert not {c for c in checks if c.startswith(("status", "irq"))}
    instructions = [r for r in results if r.check == "instructions-0"]
    assert instructions and all(f"[{10 * N}, {102 * N // 10}]" in r.detail for r in instructions)


def test_atom_erratum_relaxes_exact_instruction_counts() -> None:
    """Family 6 model 0xDD overcounts instructions: range instead of exact, preset 1-LOOP_INSNS."""
    results = _run(PRESETS["intel-icx"].with_caps(model=0xDD))
    assert not failed(results), fmt(failed(results))
    by_check = {r.check: r.detail for r in results if r.test == "check_gp_counters"}
    assert f"[{10 * N}, {102 * N // 10}]" in by_check["instructions-0"]
    assert "[1000002, 1000002]" in by_check["branches-0"]


def test_amd_without_perfctr_core_runs_on_k7_once() -> None:
    """No PerfCtrCore: the primary run uses the K7 MSRs and the K7 rerun is skipped."""
    p = PRESETS["amd-zen4"].with_caps(perfctr_core=False, perfmon_v2=False, version=0, n_gp=4)
    results = _run(p)
    k7 = [r for r in results if r.test.endswith("/amd_k7")]
    assert k7 and all(r.skipped and "K7" in r.detail for r in k7)
    assert [r for r in results if r.check == "core cycles-3" and r.passed]
    assert not failed(results), fmt(failed(results))


@pytest.mark.parametrize("name", ["intel-icx", "amd-zen4"])
def test_forced_emulation_blob_counts_exactly(name: str) -> None:
    """With forced emulation, check_emulated_instr runs: 22 instructions, 5 branches, overflow."""
    results = [r for r in _run(name, Expectations(forced_emulation=True))
               if r.test == "check_emulated_instr"]
    assert [r.check for r in results] == ["instruction count", "branch count",
                                          "branch counter overflow",
                                          "instruction counter overflow"]
    assert all(r.passed for r in results), fmt(results)


def test_forced_emulation_skipped_on_bare_metal() -> None:
    """By default check_emulated_instr is a skip with the suite's reason."""
    results = [r for r in _run("intel-skl") if r.test == "check_emulated_instr"]
    assert [(r.skipped, r.detail) for r in results] == [(True, "forced emulation not available")]


# -- the suite catches a broken model --------------------------------------------------------
def _overcounting_loop(op: Op) -> Op:
    if isinstance(op, Execute) and op.stream is LOOP:
        counts = dict(LOOP.counts)
        counts[ev.INSTRUCTIONS] += 1
        return Execute(Stream("kut_loop + 1", counts))
    return op


@pytest.mark.parametrize("name", ["intel-skl", "amd-zen5"])
def test_one_extra_instruction_fails_intel_exact_counts_only(name: str) -> None:
    """One instruction too many per loop fails Intel's exact check; AMD is exempt (1.2)."""
    results = _run(name, runner=shim(name, op_map=_overcounting_loop))
    bad = {r.check for r in failed(results)}
    if PRESETS[name].vendor == "intel":
        assert {"instructions-0", "all counters"} <= bad
        assert not {c for c in bad if c.startswith(("branches", "fixed", "cntr"))}
    else:
        assert not bad


def _rdpmc_ignores_fixed_bit(op: Op) -> Op:
    return Rdpmc(op.ecx & ~RDPMC_FIXED) if isinstance(op, Rdpmc) else op


def test_rdpmc_ignoring_the_fixed_bit_fails_check_rdpmc() -> None:
    """An RDPMC that reads GP counter i for 1<<30|i fails check_rdpmc's fixed reads only."""
    results = _run("intel-icx", runner=shim("intel-icx", op_map=_rdpmc_ignores_fixed_bit))
    bad = failed(results)
    assert {r.check for r in bad} == {"fixed cntr-0", "fixed cntr-1", "fixed cntr-2"}
    # In the PMCi rerun GP counter i holds the same full value, so the bug is invisible there.
    assert {r.test for r in bad} == {"check_rdpmc"}


def test_lost_pmis_fail_the_irq_checks() -> None:
    """A PMU whose PMIs never arrive fails irq-i for every odd i (INT set), nothing else."""
    def no_pmi(op: Op, result: Any) -> Any:
        return False if isinstance(op, WaitPmi) else result

    results = _run("intel-skl", runner=shim("intel-skl", result_map=no_pmi))
    bad = failed(results)
    assert {r.check for r in bad} == {"irq-1", "irq-3"}
    assert {r.test for r in bad} == {"check_counter_overflow", "check_counter_overflow/fw_write"}


def test_ignored_ovf_ctrl_fails_the_status_clear_checks() -> None:
    """A GLOBAL_OVF_CTRL that clears nothing fails every "status clear-i" check."""
    def drop_clear(op: Op) -> Op:
        if isinstance(op, Wrmsr) and op.addr == msrs.IA32_PERF_GLOBAL_OVF_CTRL:
            return Wrmsr(op.addr, 0)
        return op

    results = _run("intel-icx", runner=shim("intel-icx", op_map=drop_clear))
    bad = {r.check for r in failed(results)}
    assert {f"status clear-{i}" for i in range(9)} <= bad
    assert not {c for c in bad if c.startswith(("cntr", "irq", "instructions"))}


def test_ignored_cmask_fails_the_cmask_check() -> None:
    """A PMU that drops the CMASK field counts every instruction and fails "cmask" only."""
    def drop_cmask(op: Op) -> Op:
        sels = range(msrs.IA32_PERFEVTSEL0, msrs.IA32_PERFEVTSEL0 + 8)
        if isinstance(op, Wrmsr) and op.addr in sels:
            return Wrmsr(op.addr, op.value & ~(0xFF << 24))
        return op

    results = _run("intel-emr", runner=shim("intel-emr", op_map=drop_cmask))
    bad = failed(results)
    assert {(r.test, r.check) for r in bad} == {("check_gp_counter_cmask", "cmask"),
                                                ("check_gp_counter_cmask/fw_write", "cmask")}
