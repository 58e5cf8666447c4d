"""The ``vpmu`` command line: the only layer that touches argv, files and the terminal."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vpmu.arch.presets import PRESETS
from vpmu.arch.x86.msrs import lvtpc_msr, pmu_msrs
from vpmu.guest.conformance import SUITES, CheckResult
from vpmu.machine.conformance import run_conformance
from vpmu.report.results import dumps, dumps_list, results
from vpmu.report.tables import summary_table
from vpmu.scenario import ScenarioError, load_scenario
from vpmu.scenario.run import build, run
from vpmu.scenario.schema import Scenario
from vpmu.vpmu.design import make_design

EXIT_CHECK_FAILED = 1
"""A conformance check failed."""
EXIT_BAD_INPUT = 2
"""A bad option or argument (Click's own usage-error code)."""
EXIT_RUN_FAILED = 3
"""A run could not complete (its guests did not finish in time)."""

app = typer.Typer(help="vpmu: a laboratory for PMU virtualization.", no_args_is_help=True,
                  add_completion=False)
console = Console()


@app.callback()
def _root() -> None:
    """vpmu: a laboratory for PMU virtualization."""


def _bad(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(EXIT_BAD_INPUT)


@app.command()
def presets() -> None:
    """List the built-in CPU presets."""
    table = Table(title="CPU presets")
    for col in ("name", "vendor", "PMU", "GP", "fixed", "core MHz", "description"):
        table.add_column(col)
    for p in PRESETS.values():
        c = p.caps
        pmu = f"v{c.version}" if c.is_intel else ("PerfMonV2" if c.perfmon_v2 else "legacy")
        table.add_row(p.name, c.vendor, pmu, str(c.n_gp), str(len(c.fixed_indices)),
                      str(p.core_mhz), p.description)
    console.print(table)


@app.command()
def msrs(
    preset: Annotated[str, typer.Option("--preset", "-p", help="CPU preset.")] = "intel-icx",
) -> None:
    """Print the PMU MSRs a preset implements, derived from their declarations."""
    if preset not in PRESETS:
        raise _bad(f"--preset must be one of {sorted(PRESETS)}, not {preset!r}")
    table = Table(title=f"PMU MSRs of {preset}")
    for col in ("address", "name", "fields (msb:lsb access)", "reset", "gate"):
        table.add_column(col, overflow="fold")
    specs = [*pmu_msrs(PRESETS[preset].caps), lvtpc_msr()]
    for spec in specs:
        fields = ", ".join(f"{f.name} {f.msb}:{f.lsb} {f.access.value}" for f in spec.fields)
        table.add_row(f"{spec.addr:#x}", spec.name, fields, f"{spec.reset:#x}", spec.gate)
    console.print(table)


@app.command()
def conformance(
    preset: Annotated[list[str] | None, typer.Option(
        "--preset", "-p", help="CPU preset (repeatable); default: every x86 preset.")] = None,
    suite: Annotated[list[str] | None, typer.Option(
        "--suite", "-s", help="Suite name (repeatable); default: all.")] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="One row per sweep point instead of per test case.")] = False,
    design: Annotated[str | None, typer.Option(
        "--design", "-d", help="Run under a vPMU design (NAME or NAME:key=value,...); "
        "default: bare metal.")] = None,
) -> None:
    """Run the ported conformance suites on bare metal or under a design; pass/fail per test."""
    names = preset or list(PRESETS)
    if design is not None:
        _check_design(design)
    for name in names:
        if name not in PRESETS:
            raise _bad(f"--preset must be one of {sorted(PRESETS)}, not {name!r}")
    for s in suite or ():
        if s not in SUITES:
            raise _bad(f"--suite must be one of {sorted(SUITES)}, not {s!r}")
    failed = 0
    for name in names:
        results = run_conformance(name, suites=tuple(suite) if suite else None, design=design)
        failed += _print_results(name, results, verbose=verbose, platform=design or "bare metal")
    if failed:
        console.print(f"[bold red]{failed} test(s) failed[/]")
        raise typer.Exit(EXIT_CHECK_FAILED)
    console.print("[bold green]all conformance tests passed[/]")


def _print_results(preset: str, results: list[CheckResult], *, verbose: bool,
                   platform: str = "bare metal") -> int:
    """Print one table for a preset; return the number of failed tests.

    A row is a test case with all its sweep points (``gp_counters[...]``) folded together;
    ``--verbose`` gives one row per sweep point.
    """
    table = Table(title=f"conformance on {preset} ({platform})")
    for col in ("suite", "test", "runs", "checks", "result", "detail"):
        table.add_column(col, overflow="fold")
    failed_tests = 0
    for (suite_name, test), rows in _group(results, fold=not verbose).items():
        bad = [r for r in rows if not r.passed]
        skipped = all(r.skipped for r in rows)
        failed_tests += bool(bad)
        status = "[yellow]skip[/]" if skipped else ("[red]FAIL[/]" if bad else "[green]pass[/]")
        detail = rows[0].detail if skipped else "; ".join(
            f"{r.test} {r.check}: {r.detail}" for r in bad[:3])
        runs = len({r.test for r in rows})
        checks = sum(not r.skipped for r in rows)
        table.add_row(suite_name, test, str(runs), str(checks), status, detail)
    console.print(table)
    counts = Counter("skip" if r.skipped else ("pass" if r.passed else "fail") for r in results)
    console.print(f"{preset}: {counts['pass']} passed, {counts['fail']} failed, "
                  f"{counts['skip']} skipped checks")
    return failed_tests


def _group(results: list[CheckResult], *,
           fold: bool) -> dict[tuple[str, str], list[CheckResult]]:
    """Group results by (suite, test); ``fold`` merges a case's sweep points."""
    groups: dict[tuple[str, str], list[CheckResult]] = {}
    for r in results:
        test = r.test.split("[", 1)[0] if fold else r.test
        groups.setdefault((r.suite, test), []).append(r)
    return groups


def _check_design(spec: str) -> None:
    """A bad design spec is bad input: one error naming the option."""
    try:
        make_design(spec)
    except ValueError as err:
        raise _bad(f"--design: {err}") from None


def _load(path: Path, overrides: list[str] | None) -> Scenario:
    try:
        return load_scenario(path, overrides=overrides or ())
    except ScenarioError as err:
        raise _bad(str(err)) from None
    except OSError as err:
        raise _bad(f"{path}: {err.strerror}") from None


def _run_one(path: Path, scenario: Scenario, design: str | None) -> dict[str, Any]:
    try:
        outcome = build(scenario, design)
    except ValueError as err:
        raise _bad(f"{path}: {err}") from None
    try:
        return results(run(outcome))
    except RuntimeError as err:
        console.print(f"[bold red]error:[/] {escape(str(err))}")
        raise typer.Exit(EXIT_RUN_FAILED) from None


@app.command("run")
def run_cmd(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    design: Annotated[str | None, typer.Option(
        "--design", "-d", help="Design for every VM: NAME or NAME:key=value,...")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results JSON here.")]
    = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a scenario key: key.path=value (repeatable).")] = None,
) -> None:
    """Run a scenario and print its metrics; --json writes the full results."""
    if design is not None:
        _check_design(design)
    sc = _load(scenario, set_)
    data = _run_one(scenario, sc, design)
    if json_out is not None:
        json_out.write_text(dumps(data))
    console.print(summary_table([data], title=f"{scenario.name}"))


@app.command()
def compare(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    design: Annotated[list[str], typer.Option(
        "--design", "-d", help="A design to compare (repeat: two or more).")],
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write a JSON list of the results here.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a scenario key: key.path=value (repeatable).")] = None,
) -> None:
    """Run a scenario under several designs and print their metrics side by side."""
    if len(design) < 2:
        raise _bad("--design must be given at least twice to compare")
    for d in design:
        _check_design(d)
    sc = _load(scenario, set_)
    runs = [_run_one(scenario, sc, d) for d in design]
    for d, r in zip(design, runs, strict=True):
        r["design_spec"] = d
    if json_out is not None:
        json_out.write_text(dumps_list(runs))
    console.print(summary_table(runs, title=f"{scenario.name}", labels=design))


def main() -> None:
    """Console-script entry point."""
    app()
