"""`vpmu run` / `compare` open with one plain-words line per design, measure the baselines by
default (`--no-baseline` skips them), and print a table that fits 80 columns."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from vpmu.cli import main as cli

runner = CliRunner()

SCENARIO = """\
name = "cli-baseline"
duration_ms = 3
seed = 2
[host]
preset = "intel-icx"
cpus = 2
[[vm]]
vcpus = 1
pin = [0]
design = "emulated"
[[vm.guest]]
workload = "compute"
tool = "perf-record"
events = ["cycles", "instructions", "branches"]
freq = 2000
[[host_task]]
kind = "perf-record"
events = ["cycles"]
"""


def write(tmp_path: Path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def test_compare_opens_with_a_line_per_design_and_fits_80_columns(tmp_path: Path) -> None:
    """Three designs: a headline each, then a table whose every line fits 80 columns and
    whose every figure has its row (no label wrapped onto a second line)."""
    out = tmp_path / "c.json"
    r = runner.invoke(cli.app, ["compare", str(write(tmp_path)), "-d", "none", "-d", "emulated",
                                "-d", "mediated", "--json", str(out)],
                      env={"COLUMNS": "80"}, terminal_width=80)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    text = " ".join(lines)
    for design in ("none", "emulated", "mediated"):
        assert f"{design}: profiling costs the guest" in text
    rows = [line.split() for line in lines]
    first = next(row for row in rows if row[:2] == ["guest", "time"])
    assert first[:5] == ["guest", "time", "vs", "unprofiled", "(%)"]
    assert not any(line.strip().startswith("(") for line in lines)  # no wrapped label
    data = json.loads(out.read_text(encoding="utf-8"))
    assert all(d["overhead"]["vs_unprofiled"] is not None for d in data)
    assert data[1]["overhead"]["vs_unprofiled"] > data[2]["overhead"]["vs_unprofiled"] >= 0


def test_no_baseline_skips_the_baselines(tmp_path: Path) -> None:
    """--no-baseline: the keys are null and the line says the cost was not measured."""
    out = tmp_path / "r.json"
    r = runner.invoke(cli.app, ["run", str(write(tmp_path)), "--no-baseline", "--json",
                                str(out)], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "not measured (--no-baseline)" in " ".join(r.output.split())
    ov = json.loads(out.read_text(encoding="utf-8"))["overhead"]
    assert ov["vs_unprofiled"] is None and ov["vs_bare_metal"] is None
    assert "n/a" in r.output
