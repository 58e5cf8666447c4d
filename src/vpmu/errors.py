"""The two ways a command can fail that are not bugs, as exception types every layer shares.

:class:`InputError` is bad user input: a scenario key, a ``--set``, an option, a trace line.
It carries the place (``file: key.path``, ``file:line:column`` or ``--option``) and the command
line maps it to exit 2. :class:`RunIncompleteError` is a run that could not finish: exit 3. The
command line catches exactly these two at its edge (``vpmu.cli.app.command``); anything else
escaping a command is a bug and keeps its traceback.

This module imports nothing of the project, so the lowest layers (the trace importer) can raise
these too.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input, at one place or several (``lines()`` gives one line per place)."""

    def __init__(self, place: str, message: str) -> None:
        super().__init__(place, message)
        self.place = place
        """Where: ``x.toml: vm[0].guest[0].events[1]``, ``t.txt:12:40``, ``--json``."""
        self.message = message
        """What was expected and what was given."""

    def lines(self) -> list[str]:
        """The error as the command line prints it, one line per problem."""
        return [str(self)]

    def __str__(self) -> str:
        return f"{self.place}: {self.message}" if self.place else self.message


class RunIncompleteError(RuntimeError):
    """A run that could not finish (its guests had not ended within the run's time limit).

    A RuntimeError so that callers written against the earlier API still catch it; the command
    line catches this type only, never RuntimeError (Click's ``Exit`` is one too)."""
