"""The ``perf kvm stat report`` table and the guest's ``perf stat -x,`` CSV."""

from __future__ import annotations

import math

from vpmu.report.kvm_stat import kvm_stat_report
from vpmu.report.perf_stat import perf_stat_csv
from vpmu.trace import VmExit

US = 1_000_000


def test_kvm_stat_table_has_perfs_columns_and_figures() -> None:
    """builtin-kvm.c print_result: widths, percentages, min/max/avg and rel. stddev."""
    recs = [VmExit(0, 0, "vm", 0, "MSR_WRITE", cost_ps=c * US) for c in (1, 2, 3)]
    recs.append(VmExit(0, 0, "vm", 0, "HLT", cost_ps=10 * US))
    lines = kvm_stat_report(recs).splitlines()
    assert lines[0] == "Analyze events for all VMs, all VCPUs:"
    assert lines[2] == ("             VM-EXIT    Samples  Samples%     Time%    Min Time"
                        "    Max Time         Avg time ")
    # mean 2 us, sample stddev 1, stddev of the mean 1/sqrt(3): 28.87 % of the mean
    rel = 100 * (1 / math.sqrt(3)) / 2
    assert lines[4] == ("           MSR_WRITE          3    75.00%    37.50%      1.00us"
                        f"      3.00us      2.00us ( +-{rel:7.2f}% )")
    assert lines[5].startswith("                 HLT          1    25.00%    62.50%")
    assert lines[5].endswith("( +-   0.00% )")
    assert "Total Samples:4, Total events handled time:16.00us." in lines


def _event(name: str, count: int, enabled: int = 1000, running: int = 1000,
           supported: bool = True) -> dict[str, object]:
    scaled = round(count * enabled / running) if running else count
    return {"name": name, "supported": supported, "count": count, "scaled_count": scaled,
            "time_enabled_ns": enabled, "time_running_ns": running}


def test_perf_stat_csv_fields_and_special_values() -> None:
    """value,unit,event,run time,%running,metric value,metric unit (perf-stat(1))."""
    runs = [{"vcpu": "vm0/vcpu0", "tool": "stat", "run": 1, "events": [
        _event("cycles", 2000), _event("instructions", 3000, 1000, 500),
        _event("branches", 100), _event("branch-misses", 5),
        _event("cache-misses", 0, supported=False), _event("ref-cycles", 0, running=0)]},
        {"vcpu": "vm0/vcpu0", "tool": "record", "run": 1, "events": []}]
    lines = perf_stat_csv(runs).splitlines()
    assert lines[0] == "# perf stat on vm0/vcpu0, run 1"
    assert lines[1] == "2000,,cycles,1000,100.00,,"
    assert lines[2] == "6000,,instructions,500,50.00,3.00,insn per cycle"
    assert lines[4] == "5,,branch-misses,1000,100.00,5.00,of all branches"
    assert lines[5] == "<not supported>,,cache-misses,0,100.00,,"
    assert lines[6] == "<not counted>,,ref-cycles,0,0.00,,"
    assert len(lines) == 7  # the perf-record run is not a perf stat block
