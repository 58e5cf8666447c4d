"""vpmu.sim: the discrete-event kernel. It knows nothing of PMUs and imports nothing of the project.

Vocabulary
----------
Time
    An ``int`` of picoseconds, with the unit in the name (``now_ps``, ``delay_ps``, ``t_ps``).
    ``ns``, ``us``, ``ms`` and ``PS_PER_NS``, ``PS_PER_US``, ``PS_PER_MS``, ``PS_PER_S`` build
    durations; ``cycles_to_ps`` and ``ps_to_cycles`` are the one place a clock frequency (in MHz)
    turns cycles into time and back, both rounding down.
Queue
    ``Environment`` keeps a heap of ``(time_ps, priority, seq, event)``. At equal time, lower
    priority runs first: ``URGENT`` (0: process starts, interrupt deliveries) before ``NORMAL``
    (1: everything else); any int is allowed. ``seq`` makes remaining ties FIFO, so a run is
    reproducible.
Events
    ``Event`` (pending, then triggered with a value, then processed), ``Timeout`` (triggers
    itself after a delay), ``Handle`` (a plain callback from ``Environment.schedule``, cancellable
    in O(1)), ``Process`` (a ``ProcessGenerator`` that yields events; itself an event that
    triggers with the generator's return value). ``Process.interrupt`` throws ``Interrupt``
    into a waiting process: an IPI or PMI arriving while a CPU waits. ``Callback`` is what an
    event calls when processed.
Choice points
    ``Environment.choose(name, options)`` marks a place where the real system could go either
    way. A ``Chooser`` decides (by default the first option) and every choice is recorded in
    ``Environment.choices`` as ``(name, index)``, so the explorer can enumerate and replay
    interleavings.
Randomness
    ``Environment.rng`` is the one ``random.Random`` of a run, seeded once from the seed.
"""

from vpmu.sim._core import Chooser, Environment
from vpmu.sim._events import (
    NORMAL,
    URGENT,
    Callback,
    Event,
    Handle,
    Interrupt,
    Process,
    ProcessGenerator,
    Timeout,
)
from vpmu.sim._time import (
    PS_PER_MS,
    PS_PER_NS,
    PS_PER_S,
    PS_PER_US,
    cycles_to_ps,
    ms,
    ns,
    ps_to_cycles,
    us,
)

__all__ = [
    "NORMAL",
    "PS_PER_MS",
    "PS_PER_NS",
    "PS_PER_S",
    "PS_PER_US",
    "URGENT",
    "Callback",
    "Chooser",
    "Environment",
    "Event",
    "Handle",
    "Interrupt",
    "Process",
    "ProcessGenerator",
    "Timeout",
    "cycles_to_ps",
    "ms",
    "ns",
    "ps_to_cycles",
    "us",
]
