"""Which counters an Arm event may take, and who gets which (``armv8pmu_get_event_idx``,
drivers/perf/arm_pmuv3.c@7d6904bf26b9), in the architecture's counter numbering (event
counter n is n, the cycle counter 31; the kernel's own ``idx`` of that tree is offset by one,
which changes nothing but names).

- CPU_CYCLES takes the cycle counter when it is free ("Always prefer to place a cycle counter
  into the cycle counter"), else an event counter.
- A 64-bit event (``config1`` bit 0, ``ARMPMU_EVT_64BIT``) on a PMU whose event counters are
  32 bits (before PMUv3p5) is *chained*: an odd counter with the even one below it, the even
  counting the event and the odd counting CHAIN (``armv8pmu_get_chain_idx``). On the cycle
  counter, which is 64 bits, it is not chained.
- Everything else takes the lowest free event counter (``armv8pmu_get_single_idx``).

Linux adds events one at a time (``armpmu_add``), in perf's scheduling order, and an event
keeps its counter until perf deletes it: so here every event whose previous counter is still
free keeps it, then the others take counters in order, and the set fails if one finds none.
The sysctl ``perf_user_access`` events (``config1`` bit 1) are not modelled.

A partitioned PMU (the partitioned PMU series, "[PATCH v8 05/21]" and "06/21", 12 Jun 2026,
not merged) changes two things: counters are taken only from the driver's ``cntr_mask``
(which loses the guest's counters, the cycle counter among them, while a guest owns them),
and event counters are searched from the highest down, so host events sit away from the
guest's range and a guest's reservation rarely has to move them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.arm64.caps import CYCLE_IDX, ArmPmuCaps
from vpmu.host.perf.constraint import Constraint
from vpmu.linux.arm_pmuv3 import ARMV8_PMU_EVTYPE_EVENT

ARMPMU_EVT_64BIT = 1 << 32
"""``hwc->flags`` ARMPMU_EVT_64BIT, carried in the model's ``hw_config`` above the 32-bit
PMEVTYPER value: the event asked for a 64-bit counter (``attr.config1`` bit 0)."""


@dataclass(frozen=True, slots=True)
class ArmConstraint(Constraint):
    """A constraint whose event needs the even counter below the odd one it takes (a chained
    64-bit event), except on the cycle counter."""

    chained: bool = False


def event_constraint(caps: ArmPmuCaps, config: int) -> ArmConstraint:
    """The counters an event of ``config`` (event | ARMPMU_EVT_64BIT) may take: none for CHAIN
    (opening it alone is -EINVAL)."""
    event = config & ARMV8_PMU_EVTYPE_EVENT
    if event == arm_ev.CHAIN:
        return ArmConstraint(0)
    chained = bool(config & ARMPMU_EVT_64BIT) and not caps.long_event_counters
    n = caps.n_counters
    mask = sum(1 << i for i in range(1, n, 2)) if chained else (1 << n) - 1
    if event == arm_ev.CPU_CYCLES:
        mask |= 1 << CYCLE_IDX
    return ArmConstraint(mask, chained)


def _used(c: Constraint, idx: int) -> int:
    """The counters an event on ``idx`` occupies (two for a chained pair)."""
    pair = isinstance(c, ArmConstraint) and c.chained and idx != CYCLE_IDX
    return 1 << idx | (1 << (idx - 1) if pair else 0)


def get_event_idx(c: Constraint, used: int, high_to_low: bool = False) -> int | None:
    """``armv8pmu_get_event_idx``: the cycle counter first if allowed and free, then the
    lowest free (odd, with its even neighbour free, when chained) event counter; the highest
    on a partitioned PMU. ``used`` holds the counters not free (the ones outside
    ``cntr_mask`` among them)."""
    if c.allows(CYCLE_IDX) and not used >> CYCLE_IDX & 1:
        return CYCLE_IDX
    for idx in (reversed(c.counters) if high_to_low else c.counters):
        if idx != CYCLE_IDX and not used & _used(c, idx):
            return idx
    return None


def schedule(constraints: Sequence[Constraint], previous: Sequence[int | None],
             unavailable: int = 0, high_to_low: bool = False) -> list[int] | None:
    """A counter for every event, or None: events keep a previous counter that is still
    allowed and free, the rest take ``get_event_idx`` in order. ``unavailable``: counters
    outside the driver's ``cntr_mask``."""
    used = unavailable
    out: list[int | None] = [None] * len(constraints)
    for i, (c, idx) in enumerate(zip(constraints, previous, strict=True)):
        if idx is not None and c.allows(idx) and not used & _used(c, idx):
            out[i] = idx
            used |= _used(c, idx)
    for i, c in enumerate(constraints):
        if out[i] is not None:
            continue
        idx = get_event_idx(c, used, high_to_low)
        if idx is None:
            return None
        out[i] = idx
        used |= _used(c, idx)
    return [idx for idx in out if idx is not None]
