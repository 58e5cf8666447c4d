"""A run's baselines as the results carry them: the guests' completion times of the same work
unprofiled and on bare metal (measured by ``vpmu.scenario.baseline``), and how much longer
a run took than one of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Baseline:
    """The guests' completion times (ps, one per VM) of a run's baselines; None where one was
    not measured (``--no-baseline``)."""

    unprofiled_ps: tuple[int, ...] | None
    bare_metal_ps: tuple[int, ...] | None
    bare_metal_unprofiled_ps: tuple[int, ...] | None = None

    def pick(self, select: Callable[[tuple[int, ...]], int]
             ) -> tuple[int | None, int | None, int | None]:
        """``select`` (one VM's time, or the latest) of each baseline: unprofiled, bare
        metal, bare metal unprofiled; None where it was not measured."""
        def one(ends: tuple[int, ...] | None) -> int | None:
            return None if ends is None else select(ends)
        return one(self.unprofiled_ps), one(self.bare_metal_ps), one(self.bare_metal_unprofiled_ps)


NO_BASELINE = Baseline(None, None)


def relative(measured_ps: int, baseline_ps: int) -> float | None:
    """How much longer ``measured`` took than ``baseline`` (0.05 = 5% longer), to 1e-5."""
    return round(measured_ps / baseline_ps - 1, 5) if baseline_ps > 0 else None
