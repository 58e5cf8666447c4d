"""What the guest's perf core needs of a PMU driver, whatever the architecture: ``struct pmu``
as kernel/events/core.c calls it.

A driver (``x86.X86Pmu`` and its vendors, ``arm_pmuv3.ArmV8Pmu``) implements ``event_init``,
``add`` / ``delete`` / ``start`` / ``stop`` / ``read`` (pmu->add, del, start, stop, read), the
group transaction ``start_txn`` / ``commit_txn`` / ``cancel_txn`` with ``validate_group`` (the
check at perf_event_open that a group fits an empty PMU), ``pmu_disable`` /
``pmu_enable`` (pmu->pmu_disable / pmu_enable, which the core's perf_pmu_disable /
perf_pmu_enable call at the outermost level: ``PerfCore``), its interrupt handler
``handle_irq``, and ``counting_period`` (the period a counting event is armed with). Every
method that touches a register is a generator of port operations.

``PerfPmu`` is a protocol, not a base class: the x86 drivers are compiled with mypyc, and a
compiled class cannot inherit from an interpreted one.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol, TypeAlias, TypeVar

from vpmu.guest.linux.event import HwPerfEvent, PerfEvent, PerfEventAttr
from vpmu.guest.linux.event_map import EventSpec
from vpmu.guest.port import Op

T = TypeVar("T")
Gen: TypeAlias = Generator[Op, Any, T]
"""A guest sub-program returning a ``T``."""

OverflowFn: TypeAlias = Callable[[PerfEvent, int], Gen[bool]]
"""perf_event_overflow(event, last_period): True when the event must be throttled."""


def no_overflow(_event: PerfEvent, _last_period: int) -> Gen[bool]:
    """Placeholder until the perf core registers its overflow handler."""
    yield from ()
    return False


def next_period(hw: HwPerfEvent, *, min_left: int, max_left: int) -> tuple[int, bool]:
    """The period arithmetic of the drivers' set_period (x86_perf_event_set_period,
    armpmu_event_set_period): a period missed altogether (left <= -period) starts afresh, an
    elapsed one (left <= 0) carries into the next; ``hw.period_left`` and ``last_period`` are
    updated. Returns what the counter is armed for, ``left`` clamped to [min_left, max_left]
    (each driver's clamp), and whether a period elapsed."""
    left, period, ret = hw.period_left, hw.sample_period, False
    if left <= -period:
        left = hw.period_left = hw.last_period = period
        ret = True
    if left <= 0:
        left += period
        hw.period_left, hw.last_period, ret = left, period, True
    return min(max(left, min_left), max_left), ret


class PerfPmu(Protocol):
    """One CPU's PMU driver as the perf core sees it (``struct pmu`` plus its per-CPU
    state)."""

    active_events: int
    """Hardware events in existence (the x86 NMI handler ignores NMIs when 0)."""
    overflow: OverflowFn
    """perf_event_overflow, registered by the perf core."""

    @property
    def counting_period(self) -> int:
        """The period a counting (non-sampling) event is armed with."""
        ...

    def event_init(self, spec: EventSpec, attr: PerfEventAttr, period: int) -> HwPerfEvent | None:
        """pmu->event_init: the event's hardware config; None = not supported."""
        ...

    def add(self, e: PerfEvent, *, start: bool = True) -> Gen[bool]:
        """pmu->add (x86 touches no register, Arm programs the counter); False: no counter
        for it."""
        ...

    def delete(self, e: PerfEvent) -> Gen[None]:
        """pmu->del."""
        ...

    def start(self, e: PerfEvent, *, reload: bool) -> Gen[None]:
        """pmu->start, with PERF_EF_RELOAD or not."""
        ...

    def stop(self, e: PerfEvent, *, update: bool) -> Gen[None]:
        """pmu->stop, with PERF_EF_UPDATE or not."""
        ...

    def read(self, e: PerfEvent) -> Gen[None]:
        """pmu->read: fold the counter into the event's count."""
        ...

    def validate_group(self, group: list[HwPerfEvent]) -> bool:
        """The driver's validate_group at event init: could ``group`` (the leader, its
        siblings and the new event) go on an empty PMU together?"""
        ...

    def start_txn(self) -> None:
        """pmu->start_txn(PERF_PMU_TXN_ADD), after the core's perf_pmu_disable."""
        ...

    def commit_txn(self) -> bool:
        """pmu->commit_txn: whether every event added since start_txn fits (the core then
        calls perf_pmu_enable); False leaves the transaction for cancel_txn."""
        ...

    def cancel_txn(self) -> None:
        """pmu->cancel_txn: forget the transaction's adds (the core then calls
        perf_pmu_enable)."""
        ...

    def pmu_disable(self) -> Gen[None]:
        """pmu->pmu_disable."""
        ...

    def pmu_enable(self) -> Gen[None]:
        """pmu->pmu_enable."""
        ...

    def handle_irq(self) -> Gen[int]:
        """The driver's overflow interrupt handler; returns the overflows handled."""
        ...
