"""The Typer application, the console, the exit codes and the checks every command shares.

Every command is declared with :func:`command`, whose edge turns the two failures that are not
bugs into exit codes: :class:`~vpmu.errors.InputError` (bad input, one ``error:`` line per place)
into exit 2, :class:`~vpmu.errors.RunIncompleteError` into exit 3. Nothing else is caught: an
exception that is neither is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vpmu.errors import InputError, RunIncompleteError
from vpmu.scenario import load_scenario
from vpmu.scenario.limits import check_size
from vpmu.scenario.schema import Scenario
from vpmu.vpmu.design import make_design

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
"""A conformance check failed."""
EXIT_BAD_INPUT = 2
"""A bad option, argument, scenario, trace line or output path (Click's usage-error code)."""
EXIT_RUN_FAILED = 3
"""A run could not complete (its guests did not finish in time)."""

app = typer.Typer(help="vpmu: a laboratory for PMU virtualization.", no_args_is_help=True,
                  add_completion=False, rich_markup_mode="rich")
console = Console()
err_console = Console(stderr=True, soft_wrap=True)
"""Errors are never wrapped: one problem is one line, whatever the terminal's width."""

F = TypeVar("F", bound=Callable[..., Any])


def error(line: str) -> None:
    """Print one ``error:`` line."""
    err_console.print(f"[bold red]error:[/] {escape(line)}")


def _edge(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as err:
            for line in err.lines():
                error(line)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except RunIncompleteError as err:
            error(str(err))
            raise typer.Exit(EXIT_RUN_FAILED) from None
    return wrapper  # type: ignore[return-value]


def command(name: str | None = None) -> Callable[[F], F]:
    """``app.command`` with the edge that maps InputError to exit 2 and RunIncompleteError to 3."""
    def register(fn: F) -> F:
        app.command(name)(_edge(fn))
        return fn
    return register


def bad(place: str, message: str) -> InputError:
    """Bad input at ``place`` (an option, a file, a key path): raise what this returns."""
    return InputError(place, message)


def check_design(spec: str, option: str = "--design") -> None:
    """A bad design spec is bad input: one error naming the option."""
    try:
        make_design(spec)
    except ValueError as err:
        raise bad(option, str(err)) from None


def check_preset(preset: str, presets: dict[str, Any]) -> None:
    """``--preset`` must name a preset."""
    if preset not in presets:
        raise bad("--preset", f"must be one of {sorted(presets)}, not {preset!r}")


def load(path: Path, overrides: list[str] | None, *, allow_large: bool = False) -> Scenario:
    """Read a scenario file with ``--set`` overrides; refuse one whose simulated work is
    beyond the bounds of ``vpmu.scenario.limits`` unless ``--allow-large``."""
    scenario = load_scenario(path, overrides=overrides or ())
    if not allow_large:
        check_size(scenario, str(path))
    return scenario
