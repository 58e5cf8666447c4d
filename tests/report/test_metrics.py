"""The metric sections of the results, computed from hand-built trace records: exact numbers,
nearest-rank percentiles, and the histogram order (count descending, then name)."""

from __future__ import annotations

import random

import pytest

from vpmu.arch.x86 import msrs
from vpmu.metrics import (
    guest_pmi,
    mode_time_ps,
    msr_exits,
    overhead,
    per_pmi_msr_ratios,
    perf_calls,
    vm_exits,
)
from vpmu.metrics.accuracy import accuracy
from vpmu.trace import ContextSwitch, GuestPmi, ModeChange, PerfCall, PmuContext, Record, VmExit

GLOBAL_CTRL, GLOBAL_STATUS = msrs.IA32_PERF_GLOBAL_CTRL, msrs.IA32_PERF_GLOBAL_STATUS
OVF_CTRL, LVTPC = msrs.IA32_PERF_GLOBAL_OVF_CTRL, msrs.X2APIC_LVTPC


def exit_(reason: str, *, msr: int = -1, write: bool = False, fastpath: bool = False,
          cost_ps: int = 0, t_ps: int = 0) -> VmExit:
    """A VM-exit of vCPU 0 of VM "vm" on CPU 0."""
    return VmExit(t_ps, 0, "vm", 0, reason, msr=msr, write=write, fastpath=fastpath,
                  cost_ps=cost_ps)


def wrmsr(addr: int, cost_ps: int = 0) -> VmExit:
    """A WRMSR exit."""
    return exit_("MSR_WRITE", msr=addr, write=True, cost_ps=cost_ps)


def rdmsr(addr: int, cost_ps: int = 0) -> VmExit:
    """A RDMSR exit."""
    return exit_("MSR_READ", msr=addr, cost_ps=cost_ps)


def pmis(*latencies_ps: int) -> list[Record]:
    """One GuestPmi per latency, 1 us apart."""
    return [GuestPmi(i * 10**6, 0, "vm", 0, lat) for i, lat in enumerate(latencies_ps)]


# --- vm_exits, msr_exits, perf_calls ------------------------------------------------------

def test_vm_exits_counts_ranks_and_times() -> None:
    """Total, by reason ranked by count then name, fastpath count, and the summed cost in ns
    rounded to 0.1 ns; records of other kinds are ignored."""
    records: list[Record] = [
        wrmsr(GLOBAL_CTRL, 1000), wrmsr(GLOBAL_CTRL, 1000), wrmsr(OVF_CTRL, 1000),
        rdmsr(GLOBAL_STATUS, 500), rdmsr(GLOBAL_STATUS, 500),
        exit_("RDPMC", cost_ps=250, fastpath=True), exit_("RDPMC", cost_ps=250, fastpath=True),
        exit_("EXCEPTION_NMI", cost_ps=2049),
        PerfCall(0, 0, "pause", 1, 999), ContextSwitch(0, 0, "idle", "x"),
    ]
    assert vm_exits(records) == {
        "total": 8,
        "by_reason": {"MSR_WRITE": 3, "MSR_READ": 2, "RDPMC": 2, "EXCEPTION_NMI": 1},
        "fastpath": 2,
        "time_ns": 6.5,  # 3000 + 1000 + 500 + 2049 ps = 6549 ps
    }
    assert list(vm_exits(records)["by_reason"]) == ["MSR_WRITE", "MSR_READ", "RDPMC",
                                                    "EXCEPTION_NMI"]


def test_ties_are_ranked_by_name_whatever_the_record_order() -> None:
    """Equal counts sort by name, so the histogram does not depend on which came first."""
    reasons = ["RDPMC", "CPUID", "MSR_READ", "EXTERNAL_INTERRUPT"]
    for order in (reasons, reasons[::-1]):
        ranked = vm_exits([exit_(r) for r in order])["by_reason"]
        assert list(ranked.items()) == [("CPUID", 1), ("EXTERNAL_INTERRUPT", 1),
                                        ("MSR_READ", 1), ("RDPMC", 1)]


def test_vm_exits_of_no_records() -> None:
    """No exits: zeros, an empty histogram."""
    assert vm_exits([]) == {"total": 0, "by_reason": {}, "fastpath": 0, "time_ns": 0.0}


def test_msr_exits_by_kernel_name_and_direction() -> None:
    """MSR exits are keyed "msr_read, NAME" / "msr_write, NAME" with Linux's msr-index.h
    names (the kvm_msr histogram of seed 001); non-MSR exits are not counted."""
    records: list[Record] = [
        wrmsr(GLOBAL_CTRL), wrmsr(GLOBAL_CTRL), rdmsr(GLOBAL_CTRL),
        rdmsr(GLOBAL_STATUS), rdmsr(GLOBAL_STATUS), wrmsr(LVTPC), wrmsr(msrs.IA32_A_PMC0),
        exit_("RDPMC"), exit_("EXCEPTION_NMI"),
    ]
    result = msr_exits(records)
    assert result["total"] == 7
    assert list(result["by_msr"].items()) == [
        ("msr_read, MSR_CORE_PERF_GLOBAL_STATUS", 2),
        ("msr_write, MSR_CORE_PERF_GLOBAL_CTRL", 2),
        ("msr_read, MSR_CORE_PERF_GLOBAL_CTRL", 1),
        ("msr_write, IA32_X2APIC_LVT_PMI", 1),
        ("msr_write, MSR_IA32_PMC0", 1),
    ]


def test_perf_calls_by_api_and_time() -> None:
    """Perf calls by API (ranked) and their summed cost in ns."""
    records: list[Record] = [
        PerfCall(0, 0, "pause", 1, 400), PerfCall(1, 0, "period", 1, 300),
        PerfCall(2, 0, "enable", 1, 300), PerfCall(3, 0, "pause", 2, 400),
        PerfCall(4, 0, "create", 2, 12_345), wrmsr(GLOBAL_CTRL, 99_999),
    ]
    assert perf_calls(records) == {
        "total": 5,
        "by_api": {"pause": 2, "create": 1, "enable": 1, "period": 1},
        "time_ns": 13.7,  # 13,745 ps
    }


# --- guest_pmi -------------------------------------------------------------------------------

def test_guest_pmi_latency_stats_nearest_rank() -> None:
    """Ten PMIs of 1..10 ns in shuffled order: mean 5.5, p50 the 5th value (rank ceil(0.5 *
    10)), p99 the 10th (rank ceil(9.9)), min 1, max 10."""
    latencies = [k * 1000 for k in range(1, 11)]
    random.Random(7).shuffle(latencies)
    result = guest_pmi(pmis(*latencies))
    assert result["count"] == 10
    assert result["handler_latency_ns"] == {"mean": 5.5, "p50": 5.0, "p99": 10.0, "max": 10.0,
                                            "min": 1.0}
    assert list(result["handler_latency_ns"]) == ["mean", "p50", "p99", "max", "min"]


@pytest.mark.parametrize(("latencies_ns", "p50", "p99"), [
    ([7, 3, 5], 5.0, 7.0),                 # ranks ceil(1.5) = 2 and ceil(2.97) = 3
    ([4], 4.0, 4.0),                       # one value is every percentile
    ([2, 1], 1.0, 2.0),                    # ranks 1 and ceil(1.98) = 2
    (list(range(1, 201)), 100.0, 198.0),   # ranks 100 and 198 exactly (no float drift)
    (list(range(1, 101)), 50.0, 99.0),     # ranks 50 and 99
])
def test_percentiles_are_nearest_rank(latencies_ns: list[int], p50: float, p99: float) -> None:
    """p50 and p99 are the values at rank ceil(q * n) of the sorted latencies."""
    stats = guest_pmi(pmis(*(n * 1000 for n in latencies_ns)))["handler_latency_ns"]
    assert (stats["p50"], stats["p99"]) == (p50, p99)


def test_latency_is_reported_in_ns_rounded_to_a_tenth() -> None:
    """Picoseconds become ns with one decimal: 1,234,567 ps is 1,234.6 ns."""
    stats = guest_pmi(pmis(1_234_567))["handler_latency_ns"]
    assert stats == {"mean": 1234.6, "p50": 1234.6, "p99": 1234.6, "max": 1234.6,
                     "min": 1234.6}


def test_no_pmis() -> None:
    """No PMI: count 0, no latency statistics, no per-PMI ratios (nothing to divide by)."""
    assert guest_pmi([wrmsr(GLOBAL_CTRL)]) == {"count": 0, "handler_latency_ns": None,
                                               "per_pmi": {}}


def test_per_pmi_ratios_of_the_intel_handler_sequence() -> None:
    """Two PMIs of Linux's Intel handler: GLOBAL_CTRL written twice each, GLOBAL_STATUS read
    twice, OVF_CTRL written once, LVTPC unmasked once; counter writes summed over every
    counter MSR family (reads do not count); RDPMC exits per PMI."""
    handler = [wrmsr(GLOBAL_CTRL), rdmsr(GLOBAL_STATUS), wrmsr(OVF_CTRL), rdmsr(GLOBAL_STATUS),
               wrmsr(GLOBAL_CTRL), wrmsr(LVTPC)]
    counters = [wrmsr(msrs.IA32_A_PMC0), wrmsr(msrs.IA32_FIXED_CTR0), wrmsr(msrs.IA32_PMC0),
                wrmsr(msrs.IA32_PMC0 + 2), wrmsr(msrs.MSR_K7_PERFCTR0),
                wrmsr(msrs.MSR_F15H_PERF_CTR0), rdmsr(msrs.IA32_A_PMC0),
                wrmsr(msrs.IA32_PERFEVTSEL0)]  # a selector is not a counter
    records: list[Record] = [*handler, *handler, *counters, exit_("RDPMC"), *pmis(5000, 7000)]
    result = guest_pmi(records)
    assert result["per_pmi"] == {"global_ctrl_writes": 2.0, "global_status_reads": 2.0,
                                 "ovf_ctrl_writes": 1.0, "lvt_pmi_writes": 1.0,
                                 "counter_writes": 3.0, "rdpmc": 0.5}
    assert per_pmi_msr_ratios(records, 3) == {
        "global_ctrl_writes": 1.333, "global_status_reads": 1.333, "ovf_ctrl_writes": 0.667,
        "lvt_pmi_writes": 0.667, "counter_writes": 2.0, "rdpmc": 0.333}


# --- mode_time_ps and overhead ------------------------------------------------------------

END_PS = 10_000
MODES: list[Record] = [
    ModeChange(0, 0, "host-kernel", "vm/vcpu0"),
    ModeChange(0, 1, "host-user", "load"),
    ModeChange(100, 0, "guest-kernel", "vm/vcpu0"),
    ModeChange(500, 0, "guest-user", "vm/vcpu0"),
    ModeChange(2000, 0, "in-kvm", "vm/vcpu0"),
    ModeChange(2500, 0, "guest-user", "vm/vcpu0"),
    ModeChange(3000, 1, "guest-user", "vm/vcpu1"),
    ModeChange(4000, 1, "in-kvm", "vm/vcpu1"),
    ModeChange(5000, 1, "idle", "idle"),
]
"""Two CPUs: vCPU 0 on CPU 0 with one exit (2000-2500), a load then vCPU 1 on CPU 1 with one
exit (4000-5000); CPU 0's last mode lasts until END_PS."""


def test_mode_time_per_task_and_mode() -> None:
    """Each interval between two mode changes of a CPU goes to the earlier one's (task, mode);
    each CPU's last mode runs until the end."""
    assert mode_time_ps(MODES, END_PS) == {
        "vm/vcpu0": {"host-kernel": 100, "guest-kernel": 400, "guest-user": 1500 + 7500,
                     "in-kvm": 500},
        "load": {"host-user": 3000},
        "vm/vcpu1": {"guest-user": 1000, "in-kvm": 1000},
        "idle": {"idle": 5000},
    }


def test_overhead_from_mode_times_and_costs() -> None:
    """Guest time 10,400 ps and KVM time 1,500 ps over both vCPUs: KVM per guest second is
    1500 / 10400 s, the slowdown 1500 / 10400, and exit time splits into perf calls and the
    rest of the handling."""
    records: list[Record] = [*MODES, exit_("MSR_WRITE", cost_ps=500),
                             exit_("EXCEPTION_NMI", cost_ps=1000),
                             PerfCall(2100, 0, "pause", 1, 300)]
    assert overhead(records, END_PS, ["vm/vcpu0", "vm/vcpu1"]) == {
        "guest_ns": 10.4, "kvm_ns": 1.5,
        "kvm_per_guest_s_ns": 144_230_769.2,   # 1500 ps * 1e12 / 10400 ps, in ns
        "slowdown": 0.14423,                   # (10400 + 1500) / 10400 - 1
        "by_cause_ns": {"perf_calls": 0.3, "exit_handling": 1.2, "pmu_switch": 0.0},
        "pmu_switch": {"switches": 0, "loads": 0, "puts": 0, "time_ns": 0.0,
                       "per_switch_ns": None, "in_exits_ns": 0.0, "by_why": {}},
    }


def test_overhead_takes_puts_inside_exits_out_of_the_exit_handling() -> None:
    """A mediated put made at a run-loop exit is inside that exit's cost: it is counted once,
    as PMU switch time; a load (outside exits) only adds to the switch time."""
    records: list[Record] = [*MODES, exit_("MSR_WRITE", cost_ps=1000),
                             PmuContext(2000, 0, "host", "vm", 0, 400, "run-loop"),
                             PmuContext(3000, 0, "guest", "vm", 0, 300, "run-loop")]
    causes = overhead(records, END_PS, ["vm/vcpu0", "vm/vcpu1"])["by_cause_ns"]
    assert causes == {"perf_calls": 0.0, "exit_handling": 0.6, "pmu_switch": 0.7}


def test_overhead_counts_only_the_named_vcpu_threads() -> None:
    """Time of tasks that are not vCPUs (the load, idle) is not guest or KVM time."""
    result = overhead(MODES, END_PS, ["vm/vcpu0"])
    assert (result["guest_ns"], result["kvm_ns"]) == (9.4, 0.5)
    assert result["slowdown"] == round(9900 / 9400 - 1, 5)


def test_overhead_without_guest_time() -> None:
    """No guest execution: the ratios are null rather than a division by zero."""
    result = overhead(MODES, END_PS, ["load"])
    assert result["guest_ns"] == 0.0 and result["kvm_ns"] == 0.0
    assert result["kvm_per_guest_s_ns"] is None and result["slowdown"] is None


# --- accuracy --------------------------------------------------------------------------------

def row(event: str, count: int | None, truth: int | None) -> dict[str, object]:
    """An accuracy row of vCPU vm/vcpu0's perf stat."""
    return {"vcpu": "vm/vcpu0", "tool": "stat", "event": event, "count": count, "truth": truth}


def test_accuracy_errors_and_worst() -> None:
    """error = (count - truth) / truth rounded to 6 places; no truth or no count gives a null
    error; worst_abs_error is the largest |error|."""
    result = accuracy([row("cycles", 1010, 1000), row("instructions", 2970, 3000),
                       row("ref-cycles", 5, None), row("branches", None, 700),
                       row("cache-misses", 0, 0)])
    assert [r["error"] for r in result["events"]] == [0.01, -0.01, None, None, None]
    assert result["worst_abs_error"] == 0.01
    assert result["events"][0] == {"vcpu": "vm/vcpu0", "tool": "stat", "event": "cycles",
                                   "count": 1010, "truth": 1000, "error": 0.01}


def test_accuracy_of_a_run_without_tools() -> None:
    """No rows: no events and no worst error."""
    assert accuracy([]) == {"events": [], "worst_abs_error": None}
