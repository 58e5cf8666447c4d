"""Boot-time PMU discovery and event support in the guest's Linux."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vpmu.arch.presets import get_preset
from vpmu.arch.x86 import caps as x86caps
from vpmu.arch.x86 import msrs
from vpmu.guest.linux import LinuxGuest, PerfRecord, PerfStat
from vpmu.guest.linux.boot import probe
from vpmu.guest.linux.pmu_amd import AmdPmu, AmdV2Pmu
from vpmu.guest.linux.pmu_intel import IntelPmu
from vpmu.guest.port import Cpuid, GuestGen, Op, Rdmsr, Wrmsr
from vpmu.machine import BareMetal
from vpmu.workloads import loop

from .recording import RecordingOs, name, run_tool


def _drive(gen: GuestGen, respond: Callable[[Op], Any]) -> tuple[Any, list[Op]]:
    """Run a guest sub-program against a fake port; return its value and its operations."""
    ops: list[Op] = []
    result: Any = None
    while True:
        try:
            op = gen.send(result)
        except StopIteration as stop:
            return stop.value, ops
        ops.append(op)
        result = respond(op)


def test_icx_boot_reads_cpuid_caps_and_probes_like_check_hw_exists() -> None:
    """CPUID 0/1/0xA, PERF_CAPABILITIES (PDCM), every EVNTSEL and FIXED_CTR_CTRL read, the
    last free counter written and read back through its full-width alias, LVTPC = NMI."""
    rec = RecordingOs(LinuxGuest(tsc_mhz=2300))
    BareMetal("intel-icx").run_os(rec)
    main = [a for a in rec.log if a.ctx == "main"]
    assert [a.op.leaf for a in main if isinstance(a.op, Cpuid)] == [0, 1, 0xA]
    assert [name(a.op) for a in main if name(a.op)] == [
        "R 0x345", *(f"R EVNTSEL{i}" for i in range(8)), "R FIXED_CTR_CTRL",
        "R PMC7", "W PMC7", "R PMC7", "W LVTPC"]
    assert isinstance(rec.guest.pmu, IntelPmu)
    assert rec.guest.pmu.info.fixed == (0, 1, 2, 3)


def test_without_full_width_writes_counters_use_the_legacy_msrs() -> None:
    """PERF_CAPABILITIES.FW_WRITE clear: set_period writes IA32_PMCx (0xC1+), max_period
    2^31-1."""
    preset = get_preset("intel-icx").with_caps(fw_write=False)
    run = run_tool(preset, PerfRecord(["branches"]), ms=5)
    h = run.rec.histogram("pmi")
    assert h["W PERFCTR0"] == run.pmi_runs and not h["W PMC0"]
    assert run.rec.guest.pmu is not None and run.rec.guest.pmu.info.max_period == (1 << 31) - 1


def test_no_pmu_means_not_supported_and_no_pmu_writes() -> None:
    """CPUID.0xA version 0: perf has no hardware PMU; every event is <not supported> and the
    kernel never touches a PMU register (not even PERF_CAPABILITIES, PDCM notwithstanding)."""
    preset = get_preset("intel-icx").with_caps(version=0, n_gp=0, n_fixed=0, fixed_mask=0)
    run = run_tool(preset, PerfStat(["cycles", "instructions"]), ms=2)
    assert [e.supported for e in run.results[0].events] == [False, False]
    assert not [a for a in run.rec.log if isinstance(a.op, Wrmsr | Rdmsr)]


def test_unavailable_architectural_event_fails_to_open() -> None:
    """CPUID.0xA:EBX bit 5 set: branch-instructions is not supported; the rest count."""
    preset = get_preset("intel-icx").with_caps(ebx_unavailable=1 << 5)
    (result,) = run_tool(preset, PerfStat(["branches", "instructions"]), ms=2).results
    assert not result["branches"].supported
    assert result["instructions"].supported and result["instructions"].count > 0


def test_ref_cycles_needs_fixed_counter_2() -> None:
    """ref-cycles (pseudo 0x0300) goes on FIXED2 only: counted on ICX, unsupported on AMD."""
    (icx,) = run_tool("intel-icx", PerfStat(["ref-cycles"]), ms=2).results
    assert icx["ref-cycles"].count == pytest.approx(2300 * 1000 * 2, rel=0.01)
    (zen,) = run_tool("amd-zen4", PerfStat(["ref-cycles"]), ms=2).results
    assert not zen["ref-cycles"].supported


def test_amd_vendor_from_the_argument_when_cpuid_has_none() -> None:
    """Leaf 0 without a vendor string: the ``vendor`` argument decides; AMD reads its own
    leaves (0x80000001, 0x80000022), never 0xA."""
    caps = get_preset("amd-zen4").caps
    store: dict[int, int] = {}

    def respond(op: Op) -> Any:
        if isinstance(op, Cpuid):
            return (0, 0, 0, 0) if op.leaf == 0 else x86caps.cpuid(caps, op.leaf, op.subleaf)
        if isinstance(op, Wrmsr):
            store[op.addr] = op.value
            return None
        return store.get(op.addr, 0) if isinstance(op, Rdmsr) else None

    info, ops = _drive(probe("amd"), respond)
    assert info is not None and info.view.perfmon_v2 and info.n_gp == 6
    assert [op.leaf for op in ops if isinstance(op, Cpuid)] == [0, 1, 0x8000_0001, 0x8000_0022]
    assert store[msrs.MSR_F15H_PERF_CTR0 + 2 * 5] == 0xFFFF  # check_hw_exists' probe write
    with pytest.raises(ValueError, match="vendor must be 'intel' or 'amd'"):
        _drive(probe(None), respond)


def test_driver_choice_per_vendor_and_version() -> None:
    """PerfMonV2 -> the v2 driver; without it the generic AMD one."""
    for preset, kind in ((get_preset("amd-zen4"), AmdV2Pmu),
                         (get_preset("amd-zen4").with_caps(perfmon_v2=False), AmdPmu)):
        guest = LinuxGuest(tsc_mhz=2400)
        BareMetal(preset).run_os(guest)
        assert type(guest.pmu) is kind


def test_bad_arguments_are_refused_with_the_value() -> None:
    """Event names, frequencies and guest arguments are checked at construction."""
    with pytest.raises(ValueError, match="not 'bogus'"):
        PerfStat(["bogus"])
    with pytest.raises(ValueError, match="modifiers"):
        PerfStat(["cycles:x"])
    with pytest.raises(ValueError, match="freq must be at most"):
        PerfRecord(["cycles"], freq=20_000, max_sample_rate=10_000)
    with pytest.raises(ValueError, match="runs must be a positive int"):
        LinuxGuest(workload=loop(10), runs=0)
    with pytest.raises(ValueError, match="tsc_mhz must be given"):
        BareMetal("intel-icx").run_os(LinuxGuest())
