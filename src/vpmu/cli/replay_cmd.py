"""``vpmu replay``: import a KVM trace, reconstruct the guest's PMU use, predict per design."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from vpmu.arch.presets import PRESETS
from vpmu.cli.app import EXIT_BAD_INPUT, app, bad, check_design, check_out, console
from vpmu.cli.runs import run_one
from vpmu.report.replay import dumps_replay, observed_table, replay_results
from vpmu.report.tables import summary_table
from vpmu.scenario import ScenarioError
from vpmu.scenario.replay import observed, replay_scenario
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
    try:
        capture = parse_trace_file(trace)
    except TraceParseError as err:
        raise bad(str(err)) from None
    except OSError as err:
        raise bad(f"{trace}: {err.strerror}") from None
    try:
        rep = replay_scenario(capture, preset=preset, overrides=set_ or ())
    except ScenarioError as err:
        raise bad(str(err)) from None
    obs = observed(rep)
    console.print(observed_table(obs))
    preds = []
    if rep.scenario is None:
        console.print("[yellow]the capture shows no guest PMU activity[/]: nothing to replay")
    else:
        for d in design:
            done = run_one(trace, rep.scenario, d, keep=False)
            preds.append((d, done.results))
        console.print(summary_table([r for _, r in preds], title=f"replay of {trace.name}",
                                    labels=[d for d, _ in preds]))
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
