"""``vpmu replay``: import a KVM trace, reconstruct the guest's PMU use, predict per design."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from vpmu.arch.presets import PRESETS
from vpmu.cli.app import (
    EXIT_BAD_INPUT,
    app,
    bad,
    check_design,
    check_out,
    console,
)
from vpmu.cli.runs import execute
from vpmu.report.replay import dumps_replay, observed_table, replay_results
from vpmu.report.tables import summary_table
from vpmu.scenario import ScenarioError
from vpmu.scenario.replay import Replay, observed, replay_scenario
from vpmu.scenario.run import RUN_LIMIT
from vpmu.scenario.schema import Scenario
from vpmu.trace.parse import TraceParseError, parse_trace_file


@app.command()
def replay(
    trace: Annotated[Path, typer.Argument(
        help="A capture: ftrace `trace`/`trace_pipe` text, `trace-cmd report` or "
             "`perf script` output with kvm_exit, kvm_entry and kvm_msr events.")],
    design: Annotated[list[str], typer.Option(
        "--design", "-d", help="A design to predict under (repeatable).")],
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write observed + predictions + findings as JSON.")] = None,
    preset: Annotated[str | None, typer.Option(
        "--preset", "-p", help="The host CPU (a capture does not say; default intel-icx for "
                               "VMX, amd-zen4 for SVM).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a key of the reconstructed scenario: key.path=value.")] = None,
) -> None:
    """Replay a real or exported trace under each --design and predict exits, overhead,
    PMI latency and findings."""
    for d in design:
        check_design(d)
    if preset is not None and preset not in PRESETS:
        raise bad(f"--preset must be one of {sorted(PRESETS)}, not {preset!r}")
    check_out(json_out, "--json")
    rep = _reconstruct(trace, preset, set_ or [])
    console.print(observed_table(obs := observed(rep)))
    preds: list[tuple[str, dict[str, Any]]] = []
    if rep.scenario is None:
        console.print("[yellow]the capture shows no guest PMU activity[/]: nothing to replay")
    else:
        preds = _predict(trace, rep.scenario, design)
    data = replay_results(obs, rep.scenario.model_dump(mode="json") if rep.scenario else None,
                          preds)
    for line in data["findings"]:
        console.print(f"- {escape(line)}")
    if json_out is not None:
        try:
            json_out.write_text(dumps_replay(data), encoding="utf-8")
        except OSError as err:
            console.print(f"[bold red]error:[/] --json {escape(str(json_out))}: {err.strerror}")
            raise typer.Exit(EXIT_BAD_INPUT) from None


def _reconstruct(trace: Path, preset: str | None, overrides: list[str]) -> Replay:
    """Import the capture and reconstruct its scenario; bad input names the place."""
    try:
        capture = parse_trace_file(trace)
    except TraceParseError as err:
        raise bad(str(err)) from None
    except OSError as err:
        raise bad(f"{trace}: {err.strerror}") from None
    try:
        return replay_scenario(capture, preset=preset, overrides=overrides)
    except ScenarioError as err:
        raise bad(str(err)) from None


def _predict(trace: Path, scenario: Scenario,
             designs: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Run the reconstruction under each design; a run that does not finish is recorded as
    an error and the other designs still run."""
    preds: list[tuple[str, dict[str, Any]]] = []
    for d in designs:
        try:
            preds.append((d, execute(trace, scenario, d, keep=False).results))
        except RuntimeError:
            preds.append((d, {"error": f"did not finish within {RUN_LIMIT} x the "
                                       f"reconstructed duration_ms"}))
    done = [(d, r) for d, r in preds if "error" not in r]
    if done:
        console.print(summary_table([r for _, r in done], title=f"replay of {trace.name}",
                                    labels=[d for d, _ in done]))
    return preds
