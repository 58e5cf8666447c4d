"""``vpmu conformance``: the ported kvm-unit-tests and KVM selftests, pass/fail per test."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.table import Table

from vpmu.arch.presets import PRESETS
from vpmu.cli.app import (
    EXIT_CHECK_FAILED,
    bad,
    check_design,
    check_preset,
    command,
    console,
)
from vpmu.guest.conformance import SUITES, CheckResult
from vpmu.machine import conformance as machine_conformance
from vpmu.vpmu import registry
from vpmu.vpmu.design import DesignSpec


@command()
def conformance(
    preset: Annotated[list[str] | None, typer.Option(
        "--preset", "-p", help="CPU preset (repeatable); default: every preset, each with "
        "its architecture's suites.")] = None,
    suite: Annotated[list[str] | None, typer.Option(
        "--suite", "-s", help="Suite name (repeatable); default: all.")] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="One row per sweep point instead of per test case.")] = False,
    design: Annotated[str | None, typer.Option(
        "--design", "-d", help="Run under a vPMU design (NAME or NAME:key=value,...); "
        "default: bare metal.")] = None,
) -> None:
    """Run the ported conformance suites on bare metal or under a design; pass/fail per test.

    Exit code 1 when a test fails, 2 on a bad option."""
    names = preset or list(PRESETS)
    if design is not None:
        check_design(design)
    for name in names:
        check_preset(name, PRESETS)
        if design is not None:
            check_design_arch(design, PRESETS[name].caps.arch)
            refusal = registry.host_refusal(DesignSpec.parse(design).name, PRESETS[name].caps)
            if refusal:
                raise bad("--design", f"{design!r} needs {refusal}, which preset {name!r} "
                                      f"lacks")
    for s in suite or ():
        if s not in SUITES:
            raise bad("--suite", f"must be one of {sorted(SUITES)}, not {s!r}")
    failed = 0
    for name in names:
        results = machine_conformance.run_conformance(
            name, suites=tuple(suite) if suite else None, design=design)
        failed += print_results(name, results, verbose=verbose, platform=design or "bare metal")
    if failed:
        console.print(f"[bold red]{failed} test(s) failed[/]")
        raise typer.Exit(EXIT_CHECK_FAILED)
    console.print("[bold green]all conformance tests passed[/]")


def check_design_arch(design: str, arch: str) -> None:
    """A design that does not run on the preset's architecture is bad input for --design."""
    try:
        registry.check_arch(DesignSpec.parse(design).name, arch)
    except ValueError as err:
        raise bad("--design", str(err)) from None


def print_results(preset: str, results: list[CheckResult], *, verbose: bool,
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
        bad_rows = [r for r in rows if not r.passed]
        skipped = all(r.skipped for r in rows)
        failed_tests += bool(bad_rows)
        status = ("[yellow]skip[/]" if skipped
                  else "[red]FAIL[/]" if bad_rows else "[green]pass[/]")
        detail = rows[0].detail if skipped else "; ".join(
            f"{r.test} {r.check}: {r.detail}" for r in bad_rows[:3])
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
