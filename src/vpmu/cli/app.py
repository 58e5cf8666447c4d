"""The Typer application, the console, the exit codes and the checks every command shares."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from vpmu.scenario import ScenarioError, load_scenario
from vpmu.scenario.schema import Scenario
from vpmu.vpmu.design import make_design

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
"""A conformance check failed."""
EXIT_BAD_INPUT = 2
"""A bad option, argument, scenario or trace line (Click's own usage-error code)."""
EXIT_RUN_FAILED = 3
"""A run could not complete (its guests did not finish in time)."""

app = typer.Typer(help="vpmu: a laboratory for PMU virtualization.", no_args_is_help=True,
                  add_completion=False, rich_markup_mode="rich")
console = Console()
err_console = Console(stderr=True)


def bad(message: str) -> typer.Exit:
    """Print one error naming the place and return the bad-input exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(EXIT_BAD_INPUT)


def check_design(spec: str, option: str = "--design") -> None:
    """A bad design spec is bad input: one error naming the option."""
    try:
        make_design(spec)
    except ValueError as err:
        raise bad(f"{option}: {err}") from None


def check_out(path: Path | None, option: str) -> None:
    """An output file must be writable before a run starts, so no computed result is lost
    to a typo in its directory."""
    if path is None:
        return
    if path.is_dir():
        raise bad(f"{option} {path}: is a directory")
    if not path.parent.exists():
        raise bad(f"{option} {path}: directory {path.parent} does not exist")


def load(path: Path, overrides: list[str] | None) -> Scenario:
    """Read a scenario file with ``--set`` overrides; errors are bad input."""
    try:
        return load_scenario(path, overrides=overrides or ())
    except ScenarioError as err:
        raise bad(str(err)) from None
    except OSError as err:
        raise bad(f"{path}: {err.strerror}") from None
