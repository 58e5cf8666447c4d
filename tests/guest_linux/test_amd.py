"""The guest's perf on AMD: PerfMonV2 (Zen 4) and the core counters without it."""

from __future__ import annotations

import pytest

from vpmu.arch.presets import get_preset
from vpmu.guest.linux import PerfRecord
from vpmu.guest.port import Rdpmc, Wrmsr

from .recording import name, run_tool

EVENTS = ["cycles", "instructions", "branches", "cache-misses"]
ZEN4_GLOBAL_MASK = 0x3F
"""amd_pmu_global_cntr_mask: 6 counters (CPUID 0x80000022 EBX)."""


def test_zen4_perfmonv2_pmi_sequence() -> None:
    """amd_pmu_v2_handle_irq with one overflow: GLOBAL_CTL=0, STATUS read, RDPMC, counter
    WRMSR, STATUS_CLR ack, GLOBAL_CTL=mask; no LVTPC write (the AMD APIC does not mask)."""
    run = run_tool("amd-zen4", PerfRecord(EVENTS), ms=30)
    runs = list(run.rec.handler_runs("pmi"))
    singles = [r for r in runs if sum(isinstance(a.op, Rdpmc) for a in r) == 1]
    accesses = singles[len(singles) // 2]
    status = accesses[1].result
    idx = status.bit_length() - 1
    assert status == 1 << idx
    assert [name(a.op) for a in accesses] == [
        "W AMD_GLOBAL_CTL", "R AMD_GLOBAL_STATUS", "RDPMC", f"W PERF_CTR{idx}",
        "W AMD_GLOBAL_STATUS_CLR", "W AMD_GLOBAL_CTL"]
    values = [a.op.value for a in accesses if isinstance(a.op, Wrmsr)]
    assert values[0] == 0 and values[2:] == [ZEN4_GLOBAL_MASK, ZEN4_GLOBAL_MASK]
    h = run.rec.histogram("pmi")
    assert h["W LVTPC"] == 0
    assert h["W AMD_GLOBAL_CTL"] == 2 * run.pmi_runs
    assert h["R AMD_GLOBAL_STATUS"] == run.pmi_runs
    # A PMI raised in a handler's NMI entry, before GLOBAL_CTL=0, finds its overflow already
    # handled (status 0: no ack); the AMD APIC does not mask LVTPC, so it is not dropped.
    acked = sum(1 for r in runs if r[1].result)
    assert h["W AMD_GLOBAL_STATUS_CLR"] == acked > 0.95 * run.pmi_runs


def test_amd_without_perfmonv2_uses_the_generic_handler() -> None:
    """x86_pmu_handle_irq: LVTPC first, then an RDPMC of every active counter (4 events),
    a counter WRMSR for each overflowed one; no global MSR anywhere in the run."""
    preset = get_preset("amd-zen4").with_caps(perfmon_v2=False)
    run = run_tool(preset, PerfRecord(EVENTS), ms=30)
    runs = list(run.rec.handler_runs("pmi"))
    steady = runs[len(runs) // 2]
    names = [name(a.op) for a in steady]
    assert names[0] == "W LVTPC"
    assert names[1:].count("RDPMC") == len(EVENTS)
    assert [a.op.ecx for a in steady if isinstance(a.op, Rdpmc)] == [0, 1, 2, 3]
    total = run.rec.histogram()
    assert not [k for k in total if "GLOBAL" in k]
    overflowed = sum(k.startswith("W PERF_CTR") for k in names)
    assert overflowed >= 1
    (result,) = run.results
    for event in result.events:
        assert len(event.samples) / 0.030 == pytest.approx(4000, rel=0.1), event.name


def test_amd_disable_waits_on_overflow_outside_nmi() -> None:
    """perf_pmu_disable on AMD reads each active counter (amd_pmu_check_overflow) and each
    disable outside the NMI reads it again (amd_pmu_wait_on_overflow): a frequency tick
    does 2 RDMSRs per counter and writes GLOBAL_CTL twice."""
    run = run_tool("amd-zen4", PerfRecord(EVENTS), ms=10)
    ticks = list(run.rec.handler_runs("tick"))
    tick = [name(a.op) for a in ticks[len(ticks) // 2]]
    assert tick.count("W AMD_GLOBAL_CTL") == 2
    for i in range(4):
        assert tick.count(f"R PERF_CTR{i}") == 2
        assert tick.count(f"W PERF_CTL{i}") == 2
