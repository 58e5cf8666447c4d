"""The results JSON and the summary table, built from a stub run outcome (records and plain
data only, as the report sees a run)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from rich.console import Console

from vpmu.metrics import RunMetrics
from vpmu.report.results import RESULT_KEYS, dumps, dumps_list, results
from vpmu.report.tables import NA, summary_rows, summary_table
from vpmu.scenario import Scenario, parse_scenario
from vpmu.trace import (
    CounterRead,
    GuestPmi,
    GuestSelectors,
    ModeChange,
    PerfCall,
    PerfOpen,
    PmuContext,
    Record,
    VmExit,
)

SCENARIO = parse_scenario("""\
name = "stub"
duration_ms = 2
seed = 9
[host]
preset = "intel-icx"
[[vm]]
[[vm.guest]]
""")


@dataclass
class StubOutcome:
    """What ``vpmu.report.results.RunOutcome`` asks of a finished run, made by hand from
    records."""

    scenario: Scenario = SCENARIO
    designs: list[str] = field(default_factory=lambda: ["emulated:is_paused=false"])
    end_ps: int = 2_500_000_000
    records: list[Record] = field(default_factory=list)
    vcpu_tasks: list[str] = field(default_factory=lambda: ["vm0/vcpu0"])
    events_processed: int = 42
    options: list[dict[str, object]] = field(default_factory=lambda: [{"is_paused": False}])
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def metrics(self) -> RunMetrics:
        """The records folded in, as a run streams them."""
        return RunMetrics.of(self.records)

    def design_options(self) -> list[dict[str, object]]:
        """Each VM's typed options."""
        return self.options

    def accuracy_rows(self) -> list[dict[str, Any]]:
        """Tool counts and truths."""
        return self.rows

    def guest_end_ps(self) -> tuple[int, ...]:
        """One VM, finished at the run's end."""
        return (self.end_ps,)

    def vm_facts(self) -> list[dict[str, Any]]:
        """One VM, vm0, of the first design (none without a design)."""
        if not self.designs:
            return []
        return [{"name": "vm0", "design": self.designs[0].partition(":")[0],
                 "design_options": self.options[0], "vcpu_tasks": self.vcpu_tasks,
                 "event_filter": {"installed": False, "enforced": False}}]


RECORDS: list[Record] = [
    ModeChange(0, 0, "guest-user", "vm0/vcpu0"),
    VmExit(1000, 0, "vm0", 0, "MSR_WRITE", msr=0x38F, write=True, cost_ps=2000),
    ModeChange(1000, 0, "in-kvm", "vm0/vcpu0"),
    PerfCall(1500, 0, "pause", 1, 500),
    ModeChange(3000, 0, "guest-user", "vm0/vcpu0"),
    GuestPmi(4000, 0, "vm0", 0, 8000),
]


def test_results_keys_sections_and_sim() -> None:
    """The contract's keys in order; the design is the first VM's name without options; sim
    echoes the scenario and counts records; the later issues' sections are null."""
    data = results(StubOutcome(records=RECORDS, rows=[
        {"vcpu": "vm0/vcpu0", "tool": "stat", "event": "cycles", "count": 99, "truth": 100}]))
    assert tuple(data) == RESULT_KEYS
    assert data["design"] == "emulated" and data["design_options"] == {"is_paused": False}
    assert data["preset"] == "intel-icx"
    assert data["scenario"] == {"name": "stub", "file_model": SCENARIO.model_dump(mode="json")}
    assert data["sim"] == {"duration_ms": 2.0, "end_ms": 2.5, "seed": 9, "events": 42,
                           "records": 6}
    assert data["vm_exits"]["by_reason"] == {"MSR_WRITE": 1}
    assert data["msr_exits"]["by_msr"] == {"msr_write, MSR_CORE_PERF_GLOBAL_CTRL": 1}
    assert data["perf_calls"]["total"] == 1 and data["guest_pmi"]["count"] == 1
    assert data["overhead"]["by_cause_ns"] == {"perf_calls": 0.5, "exit_handling": 1.5,
                                               "pmu_switch": 0.0}
    assert data["accuracy"]["worst_abs_error"] == 0.01
    assert [data[k] for k in ("host_profiling", "lbr", "arm64")] == [None] * 3
    assert data["leaks"] == {"count": 0, "by_guest": {}, "observations": [], "truncated": False}
    assert data["pollution"] == {"host_ns": 0.0, "counting_ns": 0.0, "by_cpu": [],
                                 "worst_ns": 0.0}


MEDIATED: list[Record] = [
    ModeChange(0, 0, "host-user", "perf"),
    PerfOpen(0, 0, 1, "cycles", True),
    PmuContext(1000, 0, "guest", "vm0", 0, 200, "vcpu_run"),
    ModeChange(1000, 0, "guest-user", "vm0/vcpu0"),
    ModeChange(2000, 0, "in-kvm", "vm0/vcpu0"),
    PmuContext(2000, 0, "host", "vm0", 0, 300, "vcpu_put"),
    GuestSelectors(2000, 0, "vm0", 0, 0b1, 0b1),
    CounterRead(2400, 0, "reader", 0, 77, "vm0/vcpu0"),
]


def test_results_carry_the_mediated_sections() -> None:
    """host_profiling, leaks and pollution come from the mediated records; the PMU switches
    join the overhead, their time as a cause."""
    data = results(StubOutcome(records=MEDIATED))
    assert tuple(data) == RESULT_KEYS and RESULT_KEYS[-1] == "vms"
    hp = data["host_profiling"]
    assert hp["blind_ns_total"] == 0.3  # in-kvm 2000-2300 ps, until the put's end
    assert hp["events"][0]["host_ns"] == 2_499_999.0  # all but guest 1000-2000 ps of 2.5 ms
    assert data["leaks"]["by_guest"] == {"vm0/vcpu0": 1}
    assert data["pollution"]["counting_ns"] == 2_499_998.0  # in-kvm from 2000 ps to the end
    assert data["overhead"]["by_cause_ns"]["pmu_switch"] == 0.5
    assert data["overhead"]["pmu_switch"] == {"switches": 2, "loads": 1, "puts": 1,
                                              "time_ns": 0.5, "per_switch_ns": 0.2,
                                              "in_exits_ns": 0.0,
                                              "by_why": {"vcpu_put": 1, "vcpu_run": 1}}


def test_results_of_a_scenario_without_vms() -> None:
    """No VM: no design (null) and empty options; the metric sections are empty, not missing."""
    data = results(StubOutcome(designs=[], options=[], vcpu_tasks=[]))
    assert data["design"] is None and data["design_options"] == {}
    assert data["vm_exits"]["total"] == 0 and data["guest_pmi"]["handler_latency_ns"] is None
    assert data["overhead"]["slowdown"] is None and data["accuracy"]["worst_abs_error"] is None


def test_the_embedded_scenario_reads_back_unchanged() -> None:
    """The "scenario.file_model" of a results file is a valid scenario equal to the one run."""
    data = json.loads(dumps(results(StubOutcome())))
    assert Scenario.model_validate(data["scenario"]["file_model"]) == SCENARIO


def test_dumps_is_canonical_json() -> None:
    """Two-space indented JSON with a final newline, key order kept, the same bytes for equal
    data; NaN is refused rather than written as invalid JSON."""
    data = results(StubOutcome(records=RECORDS))
    text = dumps(data)
    assert text.endswith("}\n") and text.startswith('{\n  "scenario": {')
    assert list(json.loads(text)) == list(RESULT_KEYS)
    assert dumps(results(StubOutcome(records=list(RECORDS)))) == text
    with pytest.raises(ValueError, match="Out of range float"):
        dumps({"x": float("nan")})


def test_dumps_list_is_a_json_list_of_results() -> None:
    """`vpmu compare --json` writes a list, one results object per design."""
    runs = [results(StubOutcome()), results(StubOutcome(designs=["none"], options=[{}]))]
    back = json.loads(dumps_list(runs))
    assert [r["design"] for r in back] == ["emulated", "none"]
    assert dumps_list(runs).endswith("]\n")


def render(runs: list[dict[str, Any]], labels: list[str] | None = None) -> str:
    """The summary table as plain text."""
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(
        summary_table(runs, title="t", labels=labels))
    return out.getvalue()


def test_summary_rows_follow_the_results() -> None:
    """The table's rows read the results: exits and their reasons, perf calls, PMI latency,
    per-PMI ratios and the accuracy's worst error."""
    rows = dict(summary_rows(results(StubOutcome(records=RECORDS))))
    assert rows["VM-exits"] == 1 and rows["  MSR_WRITE"] == 1
    assert rows["perf calls"] == 1 and rows["  pause"] == 1
    assert rows["guest PMIs"] == 1 and rows["PMI latency mean (ns)"] == 8.0
    assert rows["  per PMI: global_ctrl_writes"] == 1.0
    assert rows["count error, worst (%)"] is NA


def test_summary_rows_show_the_arm64_block_only_when_present() -> None:
    """Seed 004's rows (coverage per vCPU, migrations by cluster pair, cycle-counter
    continuity, FAIL_ENTRY) follow the arm64 block; an x86 run (block null) has none."""
    data = results(StubOutcome(records=RECORDS))
    assert not any(k.startswith("vPMU coverage") for k, _ in summary_rows(data))
    vcpu = {"pmu": "armv8_cortex_a53", "coverage": 0.25, "guest_ns": 4.0, "counted_ns": 1.0,
            "migrations": {"0->1": 1}, "fail_entry": 1,
            "cycle_counter": {"samples": 2, "discontinuities": 0, "max_jump": 0}}
    arm = {**{k: v for k, v in vcpu.items() if k != "pmu"}, "vcpus": {"vm0/vcpu0": vcpu}}
    rows = dict(summary_rows({**data, "arm64": arm}))
    assert rows["vPMU coverage (% guest time)"] == 25.0
    assert rows["  vm0/vcpu0"] == 25.0 and rows["  cluster 0->1"] == 1
    assert rows["vCPU migrations"] == 1 and rows["KVM_RUN FAIL_ENTRY"] == 1
    assert rows["cycle counter discontinuities"] == 0


def test_summary_table_has_a_column_per_run_and_dashes_for_missing_rows() -> None:
    """Columns are the labels (or the designs); a row one run lacks shows '-' in its column."""
    with_exits = results(StubOutcome(records=RECORDS))
    without = results(StubOutcome(designs=["none"], options=[{}]))
    text = render([with_exits, without], labels=["emulated:is_paused=false", "none"])
    header = next(line for line in text.splitlines() if "metric" in line)
    assert header.split() == ["metric", "emulated:is_paused=false", "none"]
    msr_write = next(line for line in text.splitlines() if "MSR_WRITE" in line)
    assert msr_write.split() == ["MSR_WRITE", "1", "-"]
    alone = next(line for line in render([with_exits]).splitlines() if "metric" in line)
    assert alone.split() == ["metric", "emulated"]  # default label: the design


def test_summary_table_never_cuts_a_figure_at_80_columns() -> None:
    """Four runs with long labels in 80 columns: every figure is whole (its column is as
    wide as its widest figure), a long label folds, only metric names may be cut."""
    data = results(StubOutcome(records=RECORDS))
    data["sim"] = {**data["sim"], "end_ms": 123456.789}
    labels = ["emulated:is_paused=false", "mediated:passthrough=all", "none", "emulated"]
    out = io.StringIO()
    Console(file=out, width=80, color_system=None).print(
        summary_table([data] * 4, title="t", labels=labels))
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    end = next(line for line in lines if line.lstrip().startswith("simulated end"))
    assert end.split()[-4:] == ["123,456.8"] * 4
