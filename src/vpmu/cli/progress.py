"""A progress bar that appears only when a run takes longer than a second."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

SHOW_AFTER_S = 1.0
"""Runs shorter than this print no bar (most examples at short durations)."""


class RunProgress:
    """``progress(now_ps, duration_ps)`` callback for ``vpmu.scenario.run.run``: silent for
    the first second, then a transient Rich bar of simulated time (on a terminal only)."""

    def __init__(self, console: Console, label: str) -> None:
        self.console, self.label = console, label
        self._t0 = time.monotonic()
        self._bar: Progress | None = None
        self._task = TaskID(0)

    def __call__(self, now_ps: int, duration_ps: int) -> None:
        if self._bar is None:
            if time.monotonic() - self._t0 < SHOW_AFTER_S or not self.console.is_terminal:
                return
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[sim]} simulated"),
                                 TimeElapsedColumn(), console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=duration_ps, sim="")
        self._bar.update(self._task, completed=now_ps, sim=f"{now_ps / 1e9:.1f}/"
                                                            f"{duration_ps / 1e9:.1f} ms")

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
