"""``vpmu run`` and ``vpmu compare``: run a scenario, print its metrics, write its outputs."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from vpmu.arch.presets import boot_preset
from vpmu.arch.x86.caps import x86_caps
from vpmu.cli.app import bad, check_design, command, console, err_console, load
from vpmu.cli.outputs import Outputs
from vpmu.cli.progress import RunProgress
from vpmu.metrics.baseline import NO_BASELINE
from vpmu.report.headline import headlines
from vpmu.report.html import ReportRun, render_html
from vpmu.report.kvm_stat import KvmStat
from vpmu.report.perf_stat import perf_stat_csv
from vpmu.report.results import dumps, dumps_list, results
from vpmu.report.tables import summary_table
from vpmu.scenario.baseline import BareMetalRuns, measure
from vpmu.scenario.run import RunOutcome, build, run
from vpmu.scenario.schema import Scenario
from vpmu.trace import Sink
from vpmu.trace.ftrace import FtraceWriter
from vpmu.trace.perfetto import dumps_chrome_trace

DesignOpt = Annotated[str | None, typer.Option(
    "--design", "-d", help="Design for every VM: NAME or NAME:key=value,... "
    "(`vpmu designs` lists them).")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a scenario key, checked against the schema: key.path=value "
                  "(repeatable), e.g. --set duration_ms=20 --set vm[0].vcpus=2.")]
HtmlOpt = Annotated[Path | None, typer.Option(
    "--html", help="Write a self-contained HTML report (tables, histograms, PMI latency, "
                   "per-CPU PMU ownership timeline).")]
AllowLargeOpt = Annotated[bool, typer.Option(
    "--allow-large", help="Run a scenario beyond the work bounds (more than 10^12 cycles "
                          "of simulated work, 1024 CPUs, ...; docs/cli.md) instead of "
                          "refusing it.")]
NoBaselineOpt = Annotated[bool, typer.Option(
    "--no-baseline", help="Skip the baselines: the same scenario with every guest tool removed "
                          "and the guests on bare metal (overhead.vs_unprofiled and "
                          "vs_bare_metal are then null; docs/guide/metrics.md).")]
NoFfwdOpt = Annotated[bool, typer.Option(
    "--no-fast-forward", help="Run every period of an idle guest step by step instead of "
                              "skipping those that repeat (same results, slower; "
                              "docs/architecture.md).")]


@dataclass
class Done:
    """One finished run: its label, results, and the outcome while still needed."""

    label: str
    results: dict[str, Any]
    outcome: RunOutcome | None


def execute(path: Path, scenario: Scenario, design: str | None, *, keep: bool,
            keep_trace: bool = False, sinks: Sequence[Sink] = (),
            fast_forward: bool = True, bare_metal: BareMetalRuns | None = None) -> Done:
    """Build and run ``scenario``: bad input (a design or option the registry does not know,
    a filter KVM refuses) raises InputError naming the file or ``--design`` and the key
    path; a run that does not finish raises RunIncompleteError (the caller decides whether that
    ends the command). ``keep``: return the outcome; ``keep_trace``: with every record (for
    an output that needs the whole trace); ``sinks`` take each record as it is emitted (the
    outputs written as the run goes); ``bare_metal``: measure the baselines, with these
    bare-metal runs (None: no baselines)."""
    label = design or (scenario.vm[0].design_spec if scenario.vm else "none")
    outcome = build(scenario, design, source=str(path), keep_trace=keep_trace, sinks=sinks,
                    fast_forward=fast_forward)
    with RunProgress(err_console, f"{path.name} [{label}]") as progress:
        run(outcome, progress)
    baseline = NO_BASELINE
    if bare_metal is not None:
        with RunProgress(err_console, f"{path.name} [{label}, unprofiled]") as progress:
            baseline = measure(outcome, design, fast_forward=fast_forward,
                               bare_metal=bare_metal, progress=progress)
    return Done(label, results(outcome, baseline), outcome if keep else None)


def summarize(runs: list[dict[str, Any]], title: str, labels: Sequence[str]) -> None:
    """The plain-words line of each run, then the metrics table."""
    for line in headlines(runs, labels):
        console.print(escape(line))
    console.print(summary_table(runs, title=title, labels=labels))


def written(done: list[tuple[str, Path]]) -> None:
    """Say which files a command wrote."""
    for option, path in done:
        console.print(f"wrote {option} {escape(str(path))}")


def _isa(scenario: Scenario) -> str:
    caps = boot_preset(scenario.host.preset).caps
    # Only x86 VMs exist yet, so only x86's VM-exit formats: an arm64 run has no exits.
    return x86_caps(caps).virt_ext if caps.arch == "x86" else "vmx"


@command("run")
def run_cmd(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file (`vpmu examples`).")],
    design: DesignOpt = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the results JSON (contract v1) here.")] = None,
    html: HtmlOpt = None,
    trace_out: Annotated[Path | None, typer.Option(
        "--trace-out", help="Write a Perfetto / Chrome trace-event JSON (ui.perfetto.dev).")]
    = None,
    ftrace_out: Annotated[Path | None, typer.Option(
        "--ftrace-out", help="Write kvm_exit / kvm_msr / kvm_entry lines in the kernel's "
                             "ftrace text format (`vpmu replay` reads them back).")] = None,
    kvm_stat: Annotated[Path | None, typer.Option(
        "--kvm-stat", help="Write a `perf kvm stat report`-style VM-exit table.")] = None,
    perf_stat_out: Annotated[Path | None, typer.Option(
        "--perf-stat-csv", help="Write the guest's perf stat runs as `perf stat -x,` CSV.")]
    = None,
    set_: SetOpt = None,
    allow_large: AllowLargeOpt = False,
    no_fast_forward: NoFfwdOpt = False,
    no_baseline: NoBaselineOpt = False,
) -> None:
    """Run a scenario and print its metrics; options write the results and exports."""
    if design is not None:
        check_design(design)
    outs = {"--json": json_out, "--html": html, "--trace-out": trace_out,
            "--ftrace-out": ftrace_out, "--kvm-stat": kvm_stat,
            "--perf-stat-csv": perf_stat_out}
    with Outputs(outs, inputs=[scenario]) as files, ExitStack() as stack:
        sc = load(scenario, set_, allow_large=allow_large)
        # --ftrace-out and --kvm-stat are built as the records are emitted; the HTML
        # timeline and the Perfetto export lay out the whole trace, so it is kept for them
        ftrace = stack.enter_context(closing(FtraceWriter(isa=_isa(sc))))
        exits = KvmStat()
        sinks = [s for s, o in ((ftrace, ftrace_out), (exits, kvm_stat)) if o is not None]
        keep_trace = html is not None or trace_out is not None
        done = execute(scenario, sc, design, keep=keep_trace or perf_stat_out is not None,
                       keep_trace=keep_trace, sinks=sinks, fast_forward=not no_fast_forward,
                       bare_metal=None if no_baseline else BareMetalRuns())
        data, out = done.results, done.outcome
        summarize([data], scenario.name, [done.label])
        recs = out.records if out and keep_trace else []
        end = out.end_ps if out else 0
        written(files.commit({
            "--json": lambda: dumps(data),
            "--html": lambda: render_html([ReportRun(done.label, data, recs, end)],
                                          title=scenario.name),
            "--trace-out": lambda: dumps_chrome_trace(recs, end_ps=end, title=scenario.name),
            "--ftrace-out": lambda: ftrace.write,
            "--kvm-stat": exits.report,
            "--perf-stat-csv": lambda: perf_stat_csv(out.tool_runs() if out else []),
        }))


@command()
def compare(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    design: Annotated[list[str], typer.Option(
        "--design", "-d", help="A design to compare (repeat: two or more).")],
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write a JSON list of the results here.")] = None,
    html: HtmlOpt = None,
    set_: SetOpt = None,
    allow_large: AllowLargeOpt = False,
    no_fast_forward: NoFfwdOpt = False,
    no_baseline: NoBaselineOpt = False,
) -> None:
    """Run a scenario under several designs and print their metrics side by side."""
    if len(design) < 2:
        raise bad("--design", "must be given at least twice to compare")
    for d in design:
        check_design(d)
    with Outputs({"--json": json_out, "--html": html}, inputs=[scenario]) as files:
        sc = load(scenario, set_, allow_large=allow_large)
        bare_metal = None if no_baseline else BareMetalRuns()
        runs = [execute(scenario, sc, d, keep=html is not None, keep_trace=html is not None,
                        fast_forward=not no_fast_forward, bare_metal=bare_metal)
                for d in design]
        for d, r in zip(design, runs, strict=True):
            r.results["design_spec"] = d
        data = [r.results for r in runs]
        summarize(data, scenario.name, design)
        report = [ReportRun(r.label, r.results, r.outcome.records, r.outcome.end_ps)
                  for r in runs if r.outcome is not None]
        written(files.commit({"--json": lambda: dumps_list(data),
                              "--html": lambda: render_html(report, title=scenario.name)}))
