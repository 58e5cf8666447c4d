"""The mediated vPMU's results sections (seeds 000 and 003, docs/sources.md) as pure
functions of records.

Vocabulary (docs/guide/README.md, "Metrics"; ``vpmu.metrics.timeline`` sweeps it):

- *host code*: a CPU in mode host-user, host-kernel or in-kvm (``ModeChange``; a CPU is in a
  mode from its change until its next one; before its first change nothing is counted).
- *guest context*: ``[load, put end)`` on one CPU, from a ``PmuContext`` "guest" record's
  ``t_ps`` to the next "host" record's ``t_ps + cost_ps`` (end of the run if no put follows).
  Host ``exclude_guest`` events do not count inside it, whoever runs.
- *blind time*: host code inside a guest context after a host ``exclude_guest`` event opened
  on that CPU; split into in-kvm time inside a fastpath ``VmExit`` ("fastpath"), other
  in-kvm time ("kvm") and host-user/host-kernel time ("other").
- *pollution*: host code while a guest's enabled selectors are on the CPU (``GuestSelectors``).

Times are ps inside and ns (rounded to 0.1) in the output, as in ``vpmu.metrics.results``.
Records need not be time-sorted: they are fed to the accumulators stably sorted by
``t_ps`` (so of two records of a kind at the same time on one CPU the later-emitted one
holds from then on); none may be later than ``end_ps``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vpmu.metrics.exposure import MAX_OBSERVATIONS
from vpmu.metrics.results import ended
from vpmu.metrics.stream import RunMetrics
from vpmu.metrics.timeline import HOST_MODES
from vpmu.trace import Record

__all__ = ["HOST_MODES", "MAX_OBSERVATIONS", "host_profiling", "leaks", "pollution"]


def host_profiling(records: Iterable[Record], end_ps: int) -> dict[str, Any] | None:
    """Seed 000's blind spot of host ``exclude_guest`` events under a mediated vPMU.

    Null when no CPU-bound (``cpu >= 0``, no task) ``exclude_guest`` event was opened and none
    was refused. Otherwise, in this key order:

    - ``events``: one entry per opened event, by CPU then event id: ``cpu``, ``event``,
      ``name``, ``opened_ns``, ``host_ns`` (host code on its CPU from the open to the end),
      ``blind_ns`` {``fastpath``, ``kvm``, ``other``, ``total``}, ``blind_fraction``
      (total / host_ns to 6 places; null without host time), ``worst_gap_ns`` (the most blind
      time in one guest context, clipped at the open) and ``gaps`` (contexts with blind time);
    - ``refused``: every refused open (any kind), in time order: ``t_ns``, ``cpu``, ``name``,
      ``errno``;
    - ``blind_ns_total``: the events' blind time summed; ``worst_gap_ns``: their worst gap
      (0.0 without events).
    """
    return ended(records, end_ps).host_profiling.section()


def leaks(records: Iterable[Record]) -> dict[str, Any]:
    """Seed 003's leaks: guest-produced counter values a host task read with RDPMC.

    Each ``CounterRead`` with an ``origin`` (the guest whose context left the value) and a
    non-zero value is one observation; a zero carries no information about the guest (it is
    also what a cleared counter reads), so it is not a leak. Keys: ``count``, ``by_guest``
    (origin -> count, by name), ``observations`` (the first ``MAX_OBSERVATIONS`` in time
    order: ``t_ns``, ``cpu``, ``observer``, ``path``, ``counter``, ``value``, ``guest``) and
    ``truncated`` (whether more were seen than listed).
    """
    return RunMetrics.of(records).leaks.leaks()


def pollution(records: Iterable[Record], end_ps: int) -> dict[str, Any]:
    """Host code run while a guest's enabled selectors sat on the CPU (``GuestSelectors``).

    Keys: ``host_ns`` (host code with ``enabled`` != 0), ``counting_ns`` (the part with
    ``counting`` != 0: the selectors counted host code), ``by_cpu`` (rows ``cpu``, ``guest``,
    ``host_ns``, ``counting_ns`` by CPU then guest ``vm/vcpuN``, only rows with time) and
    ``worst_ns`` (the longest unbroken stretch of such host time on one CPU, whichever guest's
    selectors they were).
    """
    return ended(records, end_ps).pollution.pollution()
