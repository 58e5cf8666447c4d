"""`vpmu run` exports, `vpmu replay`, and the listing commands, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from vpmu.cli import main as cli
from vpmu.report.results import dumps, results
from vpmu.scenario import load_scenario
from vpmu.scenario.run import build, run

runner = CliRunner()
EXAMPLES = Path(__file__).parents[2] / "examples"
SHORT = ["--set", "duration_ms=3"]


def invoke(*args: str | Path) -> Result:
    return runner.invoke(cli.app, [str(a) for a in args], env={"COLUMNS": "1000"})


def test_run_writes_every_export(tmp_path: Path) -> None:
    """One run, six files: each in its own format, from the same records."""
    out = {k: tmp_path / k for k in ("r.json", "r.html", "r.perfetto.json", "r.ftrace",
                                     "r.kvmstat", "r.csv")}
    res = invoke("run", EXAMPLES / "perf-stat.toml", *SHORT, "--json", out["r.json"],
                 "--html", out["r.html"], "--trace-out", out["r.perfetto.json"],
                 "--ftrace-out", out["r.ftrace"], "--kvm-stat", out["r.kvmstat"],
                 "--perf-stat-csv", out["r.csv"])
    assert res.exit_code == 0, res.output
    data = json.loads(out["r.json"].read_text())
    assert "<html" in out["r.html"].read_text(encoding="utf-8")
    events = json.loads(out["r.perfetto.json"].read_text())["traceEvents"]
    assert any(e["ph"] == "X" for e in events)
    ftrace = out["r.ftrace"].read_text()
    assert ftrace.count(": kvm_exit: ") == data["vm_exits"]["total"]
    assert f"Total Samples:{data['vm_exits']['total']}," in out["r.kvmstat"].read_text()
    csv = out["r.csv"].read_text().splitlines()
    assert csv[0].startswith("# perf stat on ") and ",,cycles," in csv[1]


def test_a_missing_output_directory_is_refused_before_the_run(tmp_path: Path) -> None:
    """Bad input exits 2 naming the option, before anything is computed or written."""
    res = invoke("run", EXAMPLES / "perf-stat.toml", *SHORT, "--json", tmp_path / "j.json",
                 "--html", tmp_path / "nope" / "r.html")
    assert res.exit_code == cli.EXIT_BAD_INPUT
    assert "--html" in res.output and "does not exist" in res.output
    assert not (tmp_path / "j.json").exists()


def test_progress_reporting_does_not_change_the_run() -> None:
    """run() in progress steps gives byte-identical results to one uninterrupted run."""
    sc = load_scenario(EXAMPLES / "seed-001.toml", overrides=["duration_ms=3"])
    calls: list[int] = []
    stepped = dumps(results(run(build(sc), lambda now, total: calls.append(now))))
    assert dumps(results(run(build(sc)))) == stepped
    assert len(calls) > 100 and calls == sorted(calls)


def test_replay_of_an_exported_trace(tmp_path: Path) -> None:
    """--ftrace-out, then replay under two designs: observed, predictions and findings."""
    trace, out = tmp_path / "s.ftrace", tmp_path / "replay.json"
    assert invoke("run", EXAMPLES / "seed-001.toml", *SHORT, "--set",
                  "vm[0].guest[0].runs=1", "--ftrace-out", trace).exit_code == 0
    res = invoke("replay", trace, "--design", "emulated", "--design", "mediated",
                 "--json", out)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert list(data) == ["observed", "scenario", "predictions", "findings"]
    assert data["observed"]["pmu_activity"] is True
    assert [p["design"] for p in data["predictions"]] == ["emulated", "mediated"]
    emulated, mediated = data["predictions"]
    assert mediated["vm_exits"]["total"] < emulated["vm_exits"]["total"]
    assert any(f.startswith("mediated:") and "exits vs emulated" in f
               for f in data["findings"])


def test_replay_of_a_capture_without_pmu_activity_exits_0(tmp_path: Path) -> None:
    trace = tmp_path / "idle.txt"
    trace.write_text(
        "# tracer: nop\n"
        " qemu-system-x86-18971   [015] d.... 95922.997039: kvm_exit: vcpu 0 reason HLT "
        "rip 0xfd0bd info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 "
        "error_code 0x00000000\n"
        "   CPU 0/KVM-16856   [007] .......   380.398696: kvm_msr: msr_write 3a = 0x40005\n")
    res = invoke("replay", trace, "--design", "emulated")
    assert res.exit_code == 0, res.output
    assert "no guest PMU activity" in res.output


def test_replay_names_the_line_and_column_of_a_malformed_event(tmp_path: Path) -> None:
    trace = tmp_path / "bad.txt"
    trace.write_text("   CPU 0/KVM-16856   [007] .......   380.398696: kvm_msr: "
                     "msr_write 3a = 0x40005\n"
                     "   CPU 0/KVM-16856   [007] .......   380.398697: kvm_msr: "
                     "msr_write 3z = 0x1\n")
    res = invoke("replay", trace, "--design", "emulated")
    assert res.exit_code == cli.EXIT_BAD_INPUT
    assert f"{trace}:2:" in res.output.replace("\n", "")


def test_designs_and_examples_list_what_exists() -> None:
    """Every registered design with its options; every example file with its description."""
    res = invoke("designs")
    assert res.exit_code == 0
    for text in ("none", "emulated", "mediated", "is_paused", "switch_point", "run-loop"):
        assert text in res.output
    res = invoke("examples")
    assert res.exit_code == 0
    for f in EXAMPLES.glob("*.toml"):
        assert f"examples/{f.name}" in res.output
