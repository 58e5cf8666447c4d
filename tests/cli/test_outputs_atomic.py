"""Output paths are checked before a run, and written all or nothing after it.

Each unwritable path below is refused before the run starts (``execute`` is replaced by one
that fails the test if called): a run is never lost to where its results were to go.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from vpmu.cli import main as cli
from vpmu.cli.outputs import TMP_SUFFIX, Outputs
from vpmu.errors import InputError

runner = CliRunner()
EXAMPLES = Path(__file__).parents[2] / "examples"
SCENARIO = EXAMPLES / "perf-stat.toml"


def invoke(*args: str | Path) -> Result:
    return runner.invoke(cli.app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any run (or replay) started fails the test: the refusal must come first."""
    def ran(*_: Any, **__: Any) -> Any:
        raise AssertionError("the run started before the output path was refused")
    monkeypatch.setattr("vpmu.cli.runs.execute", ran)
    monkeypatch.setattr("vpmu.cli.replay_cmd.replay_file", ran)


def unwritable(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Paths no output can go to, and what the error says of each."""
    regular = tmp_path / "file.txt"
    regular.write_text("x")
    return {
        "proc": (Path("/proc/x.json"), "cannot create a file in /proc"),
        "device": (Path("/dev/full"), "is not a regular file"),
        "under-a-file": (regular / "x.json", "Not a directory"),
        "directory": (tmp_path, "is a directory"),
        "no-parent": (tmp_path / "nope" / "x.json", "does not exist"),
    }


@pytest.mark.parametrize("case", ["proc", "device", "under-a-file", "directory", "no-parent"])
@pytest.mark.parametrize("command", ["run", "compare", "replay"])
def test_unwritable_outputs_are_refused_before_the_run(tmp_path: Path, no_run: None,
                                                       case: str, command: str) -> None:
    """--json to /proc, /dev/full, under a regular file, a directory, a missing directory:
    exit 2 naming the option, before anything runs, no temporary file left behind."""
    path, message = unwritable(tmp_path)[case]
    trace = tmp_path / "t.ftrace"
    trace.write_text("")
    args = {"run": ["run", SCENARIO], "compare": ["compare", SCENARIO, "-d", "emulated",
                                                  "-d", "mediated"],
            "replay": ["replay", trace, "-d", "emulated"]}[command]
    res = invoke(*args, "--json", path)
    assert res.exit_code == cli.EXIT_BAD_INPUT, res.output
    assert f"error: --json {path}: " in res.output and message in res.output
    assert not list(tmp_path.rglob(f"*{TMP_SUFFIX}"))


def test_html_unwritable_is_refused_before_the_run(tmp_path: Path, no_run: None) -> None:
    """The second output is checked as well as the first; the first is not written."""
    res = invoke("run", SCENARIO, "--json", tmp_path / "ok.json", "--html", "/dev/full")
    assert res.exit_code == cli.EXIT_BAD_INPUT and "--html /dev/full" in res.output
    assert sorted(os.listdir(tmp_path)) == []


def test_an_input_or_a_path_given_twice_is_refused(tmp_path: Path, no_run: None) -> None:
    """--json onto the scenario file, and --json and --html onto one file, are refused; the
    scenario is untouched."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO.read_text())
    res = invoke("run", scenario, "--json", scenario)
    assert res.exit_code == cli.EXIT_BAD_INPUT and "is the input" in res.output
    assert scenario.read_text() == SCENARIO.read_text()
    same = tmp_path / "x"
    res = invoke("run", scenario, "--json", same, "--html", same)
    assert res.exit_code == cli.EXIT_BAD_INPUT
    assert f"--html {same}: is also the file of --json" in res.output


def test_outputs_are_replaced_only_when_every_one_is_written(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A write that fails (here fsync: a full disk) replaces no file, keeps the previous
    results whole and leaves no temporary file."""
    a, b = tmp_path / "a.json", tmp_path / "b.html"
    a.write_text("previous a")
    b.write_text("previous b")
    calls = []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
    monkeypatch.setattr("vpmu.cli.outputs.os.fsync", fsync)
    with Outputs({"--json": a, "--html": b}) as outs, pytest.raises(InputError) as err:
        outs.commit({"--json": lambda: "new a", "--html": lambda: "new b"})
    assert "No space left on device; no output was written" in str(err.value)
    assert (a.read_text(), b.read_text()) == ("previous a", "previous b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.html"]


def test_a_file_is_not_touched_until_the_rename(tmp_path: Path) -> None:
    """Between claim and commit (the run) the old file is whole and a new one absent; after
    commit both hold the new text with the old file's mode."""
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text("previous")
    old.chmod(0o640)
    with Outputs({"--json": old, "--html": new}) as outs:
        assert old.read_text() == "previous" and not new.exists()
        done = outs.commit({"--json": lambda: "one", "--html": lambda: "two"})
    assert done == [("--json", old), ("--html", new)]
    assert (old.read_text(), new.read_text()) == ("one", "two")
    assert old.stat().st_mode & 0o777 == 0o640
    assert not list(tmp_path.glob(f"*{TMP_SUFFIX}"))


def test_a_failed_run_leaves_the_previous_outputs(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that does not finish (exit 3) writes nothing and removes its temporary files."""
    monkeypatch.setattr("vpmu.scenario.run.run_until_done", lambda *a, **k: False)
    out = tmp_path / "r.json"
    out.write_text("previous")
    res = invoke("run", SCENARIO, "--set", "duration_ms=1", "--json", out)
    assert res.exit_code == cli.EXIT_RUN_FAILED, res.output
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
