"""The ``vpmu`` command line: the only layer that touches argv, files and the terminal.

Exit codes: 0 success; 1 a conformance check failed; 2 bad input (an option, a scenario key,
a trace line, an output path); 3 a run did not finish.
"""

from __future__ import annotations

from vpmu.cli import conformance_cmd, info, replay_cmd, runs
from vpmu.cli.app import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK, EXIT_RUN_FAILED, app

__all__ = ["EXIT_BAD_INPUT", "EXIT_CHECK_FAILED", "EXIT_OK", "EXIT_RUN_FAILED", "app",
           "conformance_cmd", "info", "main", "replay_cmd", "runs"]


@app.callback()
def _root() -> None:
    """vpmu: a laboratory for PMU virtualization."""


def main() -> None:
    """Console-script entry point."""
    app()
