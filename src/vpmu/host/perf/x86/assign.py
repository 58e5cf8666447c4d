"""Counter assignment: which events may use which counters, and who gets which.

Modelled on Linux ``arch/x86/events/core.c`` (``x86_schedule_events``, ``perf_assign_events``,
``struct perf_sched``) and ``intel/core.c`` (``FIXED_EVENT_CONSTRAINT``,
``intel_pmu_check_event_constraints``), written from memory of that code, not checked against a
kernel tree.

Counters are named by the *global counter index* of ``vpmu.arch.x86.caps`` (GP ``i`` is
``i``, fixed ``i`` is ``32 + i``), which is also the kernel's ``hwc->idx`` and the bit of a
constraint's ``idxmsk64``. An assignment is a list of global counter indices, one per event.

What the kernel does and this module does too:
- An event's config is matched against the fixed-counter constraints under
  ``FIXED_EVENT_FLAGS``: a config with EDGE, INV, CMASK, IN_TX or IN_TXCP set does not match,
  because fixed counters have no such qualifiers; USR/OS/INT/EN are not part of the match.
- A real encoding of a fixed event (0x00c0, 0x003c) may use its fixed counter and every GP
  counter; the pseudo-encodings (``umask << 8`` with event code 0: 0x0300 ref-TSC, 0x0400
  slots) are fixed-only; a fixed counter CPUID does not enumerate is removed, which may leave
  weight 0 (the event can never be scheduled).
- Everything else is ``unconstrained``: any GP counter. AMD: GP counters only.
- Fast path: every event keeps its previous counter if that is still allowed and free.
- Slow path: events in increasing weight (ties in list order), fixed counters tried before
  GP ones, lowest index first; all-or-nothing.

Where this model is simpler than the kernel:
- Only the fixed-counter constraints are modelled, not the per-model tables' GP
  restrictions (e.g. Skylake's INST_RETIRED.PREC_DIST on counter 1, Ice Lake's 0x0100 /
  0x01c0 on fixed 0, topdown metric pseudo-events, AMD Fam15h/17h constraints and counter
  pairs). Those configs are treated as unconstrained.
- ``perf_sched`` saves state at constraints flagged ``overlap`` (AMD Fam15h) and backtracks
  to them; no modelled constraint is flagged, so there is no backtracking. The greedy pass is
  exact when any two constraints are nested or disjoint, and also for the shapes
  ``constraint_for`` produces ({fixed i} + GP, GP, {fixed i}: GP-only events go first, and a
  fixed-or-GP event prefers its private fixed counter). It can miss an assignment for
  crossing constraints such as ``[{0, 2}, {0, 1}, {0, 1}]`` -- the kernel misses it too.
- ``max_gp`` (halved by the HT-exclusion workaround, reduced by AMD pairs) is not modelled:
  an event may use every GP counter.
- ``taken`` (counters owned by someone else, e.g. a mediated vPMU's guest) is applied by
  skipping those counters; the kernel gets the same effect by shrinking the counter masks.
  Weights are those of the constraints as the kernel computes them, ignoring ``taken``.
"""

from __future__ import annotations

from collections.abc import Sequence

from vpmu.arch.regs import bits
from vpmu.arch.x86.caps import FIXED_IDX_BASE, X86PmuCaps
from vpmu.arch.x86.events import INTEL_FIXED_PSEUDO_ENCODING
from vpmu.host.perf.constraint import Constraint

INTEL_PMC_IDX_FIXED = FIXED_IDX_BASE
"""Global counter index of fixed counter 0 (the kernel's name)."""
X86_PMC_IDX_MAX = 64
"""Width of a counter mask (``idxmsk64``)."""

ARCH_PERFMON_EVENTSEL_EVENT = bits(7, 0)
ARCH_PERFMON_EVENTSEL_UMASK = bits(15, 8)
ARCH_PERFMON_EVENTSEL_EDGE = 1 << 18
ARCH_PERFMON_EVENTSEL_ANY = 1 << 21
ARCH_PERFMON_EVENTSEL_INV = 1 << 23
ARCH_PERFMON_EVENTSEL_CMASK = bits(31, 24)
HSW_IN_TX = 1 << 32
HSW_IN_TX_CHECKPOINTED = 1 << 33

X86_RAW_EVENT_MASK = (ARCH_PERFMON_EVENTSEL_EVENT | ARCH_PERFMON_EVENTSEL_UMASK
                      | ARCH_PERFMON_EVENTSEL_EDGE | ARCH_PERFMON_EVENTSEL_INV
                      | ARCH_PERFMON_EVENTSEL_CMASK)
FIXED_EVENT_FLAGS = X86_RAW_EVENT_MASK | HSW_IN_TX | HSW_IN_TX_CHECKPOINTED
"""The config bits a fixed-event constraint matches on. ANY is not among them: fixed
counters have an AnyThread bit of their own (FIXED_CTR_CTRL), so ANY does not rule one out."""


def gp_mask(caps: X86PmuCaps) -> int:
    """Global counter indices of the GP counters (``cntr_mask``)."""
    return caps.gp_mask


def fixed_mask(caps: X86PmuCaps) -> int:
    """Global counter indices of the fixed counters CPUID enumerates."""
    return caps.fixed_global_mask


def all_counters(caps: X86PmuCaps) -> int:
    """Every counter perf may assign (``x86_pmu.intel_ctrl``)."""
    return gp_mask(caps) | fixed_mask(caps)


def unconstrained(caps: X86PmuCaps) -> Constraint:
    """The constraint of an ordinary event: any GP counter (``&unconstrained``)."""
    return Constraint(gp_mask(caps))


def use_fixed_pseudo_encoding(code: int) -> bool:
    """Event code 0 marks a pseudo-encoding: only the fixed counter can count it."""
    return not code & ARCH_PERFMON_EVENTSEL_EVENT


def fixed_event_constraint(caps: X86PmuCaps, fixed: int) -> Constraint:
    """``FIXED_EVENT_CONSTRAINT(code, fixed)`` after ``intel_pmu_check_event_constraints``:
    the fixed counter if it exists, plus every GP counter unless the code is a pseudo one."""
    code = INTEL_FIXED_PSEUDO_ENCODING[fixed]
    mask = 1 << (INTEL_PMC_IDX_FIXED + fixed) if caps.fixed_supported(fixed) else 0
    if not use_fixed_pseudo_encoding(code):
        mask |= gp_mask(caps)
    return Constraint(mask)


def constraint_for(caps: X86PmuCaps, config: int) -> Constraint:
    """``x86_get_event_constraints``: the first fixed constraint the config matches, else
    unconstrained. ``config`` is the event select (``hwc->config``) as a raw event has it."""
    if caps.is_intel:
        code = config & FIXED_EVENT_FLAGS
        for fixed, fixed_code in enumerate(INTEL_FIXED_PSEUDO_ENCODING):
            if code == fixed_code:
                return fixed_event_constraint(caps, fixed)
    return unconstrained(caps)


def _check_assign_args(constraints: Sequence[Constraint], taken: int,
                       previous: Sequence[int | None] | None) -> None:
    """Bad arguments are the caller's bug: say which one, eagerly."""
    if not isinstance(taken, int) or taken < 0:
        raise ValueError(f"taken must be a non-negative counter mask, not {taken!r}")
    if not all(isinstance(c, Constraint) for c in constraints):
        raise ValueError(f"constraints must be Constraint objects, not {constraints!r}")
    if previous is not None and len(previous) != len(constraints):
        raise ValueError(f"previous must have one entry per constraint ({len(constraints)}), "
                         f"not {len(previous)}")


def _reuse_previous(constraints: Sequence[Constraint], previous: Sequence[int | None],
                    free: int) -> list[int] | None:
    """The fast path: every event keeps its counter if still allowed and not yet used.

    One failure sends every event to the slow path, as in the kernel (it does not keep the
    events that could stay); that keeps counters stable across reschedules of the same set.
    """
    used = 0
    for c, idx in zip(constraints, previous, strict=True):
        if idx is None or not c.allows(idx) or not free >> idx & 1 or used >> idx & 1:
            return None
        used |= 1 << idx
    return [idx for idx in previous if idx is not None]


def _find_counter(mask: int, used: int) -> int | None:
    """``__perf_sched_find_counter``: a free fixed counter first, then the lowest free GP."""
    free = mask & ~used
    fixed = free >> INTEL_PMC_IDX_FIXED << INTEL_PMC_IDX_FIXED
    for candidates in (fixed, free & ~fixed):
        if candidates:
            return (candidates & -candidates).bit_length() - 1
    return None


def perf_assign_events(constraints: Sequence[Constraint], free: int) -> list[int] | None:
    """The slow path: events by increasing weight (stable), each takes a counter in ``free``.

    Returns one counter per event or None if any event finds none (the kernel returns the
    number unscheduled and the caller rejects the whole set).
    """
    order = sorted(range(len(constraints)), key=lambda i: constraints[i].weight)
    result: list[int | None] = [None] * len(constraints)
    used = 0
    for i in order:
        idx = _find_counter(constraints[i].idxmsk & free, used)
        if idx is None:
            return None
        used |= 1 << idx
        result[i] = idx
    return [idx for idx in result if idx is not None]


def _weighed(caps: X86PmuCaps, constraints: Sequence[Constraint]) -> list[Constraint]:
    """Constraints limited to counters that exist, as the kernel trims them at boot, so
    weights count only real counters."""
    exist = all_counters(caps)
    return [c if c.idxmsk & ~exist == 0 else Constraint(c.idxmsk & exist) for c in constraints]


def assign(caps: X86PmuCaps, constraints: Sequence[Constraint], *, taken: int = 0,
           previous: Sequence[int | None] | None = None) -> list[int] | None:
    """Give every event a distinct counter, or None: a set is scheduled whole or not at all.

    ``taken``: counters (global-index mask) reserved by someone else, never handed out.
    ``previous``: each event's counter from the last schedule (None: never assigned); if
    all still fit they are kept, so a reschedule does not move counters.
    """
    _check_assign_args(constraints, taken, previous)
    trimmed = _weighed(caps, constraints)
    free = all_counters(caps) & ~taken
    if previous is not None:
        kept = _reuse_previous(trimmed, previous, free)
        if kept is not None:
            return kept
    return perf_assign_events(trimmed, free)


def x86_schedule_events(caps: X86PmuCaps, configs: Sequence[int], *, taken: int = 0,
                        previous: Sequence[int | None] | None = None) -> list[int] | None:
    """Constraints from the configs, then ``assign``: the kernel's entry point."""
    return assign(caps, [constraint_for(caps, cfg) for cfg in configs], taken=taken,
                  previous=previous)
