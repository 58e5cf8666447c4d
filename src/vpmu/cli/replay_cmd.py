"""``vpmu replay``: import a KVM trace, reconstruct the guest's PMU use, predict per design."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from vpmu.arch.presets import PRESETS
from vpmu.cli.app import check_design, check_preset, command, console
from vpmu.cli.outputs import Outputs
from vpmu.cli.runs import AllowLargeOpt, execute, written
from vpmu.errors import RunIncompleteError
from vpmu.report.replay import dumps_replay, observed_table, replay_results
from vpmu.report.tables import summary_table
from vpmu.scenario.limits import check_size
from vpmu.scenario.replay import observed, replay_file
from vpmu.scenario.run import RUN_LIMIT, RUN_LIMIT_FLOOR_MS
from vpmu.scenario.schema import Scenario


@command()
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
    allow_large: AllowLargeOpt = False,
) -> None:
    """Replay a real or exported trace under each --design and predict exits, overhead,
    PMI latency and findings."""
    for d in design:
        check_design(d)
    if preset is not None:
        check_preset(preset, PRESETS)
    with Outputs({"--json": json_out}, inputs=[trace]) as files:
        rep = replay_file(trace, preset=preset, overrides=set_ or [])
        console.print(observed_table(obs := observed(rep)))
        preds: list[tuple[str, dict[str, Any]]] = []
        if rep.scenario is None:
            console.print("[yellow]the capture shows no guest PMU activity[/]: nothing to "
                          "replay")
        else:
            if not allow_large:
                check_size(rep.scenario, str(trace))
            preds = _predict(trace, rep.scenario, design)
        data = replay_results(obs, rep.scenario.model_dump(mode="json") if rep.scenario
                              else None, preds)
        for line in data["findings"]:
            console.print(f"- {escape(line)}")
        written(files.commit({"--json": lambda: dumps_replay(data)}))


def _predict(trace: Path, scenario: Scenario,
             designs: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Run the reconstruction under each design; a run that does not finish is recorded as
    an error and the other designs still run (bad input ends the command)."""
    preds: list[tuple[str, dict[str, Any]]] = []
    for d in designs:
        try:
            preds.append((d, execute(trace, scenario, d, keep=False).results))
        except RunIncompleteError:
            preds.append((d, {"error": f"did not finish within {RUN_LIMIT} x the "
                                       f"reconstructed duration_ms (at least "
                                       f"{RUN_LIMIT_FLOOR_MS} simulated ms)"}))
    done = [(d, r) for d, r in preds if "error" not in r]
    if done:
        console.print(summary_table([r for _, r in done], title=f"replay of {trace.name}",
                                    labels=[d for d, _ in done]))
    return preds
