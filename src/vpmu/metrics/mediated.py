"""The mediated vPMU's results sections (seeds 000 and 003), computed from records only.

Vocabulary (DESIGN.md "Metrics vocabulary"):

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
Records need not be time-sorted: each function sorts per CPU by ``t_ps`` (stably, so of two
records at the same time on one CPU the later-emitted one holds from then on).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from vpmu.metrics.results import ns, records_of
from vpmu.trace import CounterRead, GuestSelectors, ModeChange, PerfOpen, PmuContext, Record, VmExit

HOST_MODES = frozenset({"host-user", "host-kernel", "in-kvm"})
"""``vpmu.host.modes.Mode`` values that are host code (metrics may not import ``vpmu.host``)."""
MAX_OBSERVATIONS = 100
"""Leak observations listed in full; the count and per-guest totals cover all of them."""

X = TypeVar("X")
Y = TypeVar("Y")
Span = tuple[int, int, X]
"""``[start_ps, end_ps)`` with a tag; lists of spans are sorted and disjoint."""


def _by_cpu(records: Sequence[Record], kind: type[Record]) -> dict[int, list[Any]]:
    """The records of one kind per CPU, each list stably sorted by time."""
    out: dict[int, list[Any]] = {}
    for r in records_of(records, kind):
        out.setdefault(r.cpu, []).append(r)
    return {cpu: sorted(rs, key=lambda r: r.t_ps) for cpu, rs in out.items()}


def _overlap(a: Sequence[Span[X]], b: Sequence[Span[Y]]) -> Iterator[tuple[int, int, X, Y]]:
    """The non-empty intersections of two sorted, disjoint span lists, in time order."""
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            yield start, end, a[i][2], b[j][2]
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1


def _steps(changes: Sequence[Any], end_ps: int) -> Iterator[tuple[int, int, Any]]:
    """Each time-sorted record as the span it holds: until the next one, the last until end."""
    for i, cur in enumerate(changes):
        end = min(changes[i + 1].t_ps, end_ps) if i + 1 < len(changes) else end_ps
        if cur.t_ps < end:
            yield cur.t_ps, end, cur


def _host_code(modes: Sequence[ModeChange], end_ps: int) -> list[Span[str]]:
    """One CPU's host-code spans, tagged with the mode."""
    return [(s, e, r.mode) for s, e, r in _steps(modes, end_ps) if r.mode in HOST_MODES]


def _merged(spans: list[tuple[int, int]]) -> list[Span[int]]:
    """Sorted spans with overlapping ones joined, tagged with their index."""
    out: list[list[int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        elif start < end:
            out.append([start, end])
    return [(s, e, i) for i, (s, e) in enumerate(out)]


def _guest_contexts(switches: Sequence[PmuContext], end_ps: int) -> list[Span[int]]:
    """One CPU's guest-context spans (tag: gap index). A load while loaded and a put while the
    host's context is on change nothing; contexts that overlap (a put that ends after the next
    load) are one context."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for r in switches:
        if r.state == "guest" and start is None:
            start = r.t_ps
        elif r.state == "host" and start is not None:
            spans.append((start, min(r.t_ps + r.cost_ps, end_ps)))
            start = None
    if start is not None:
        spans.append((start, end_ps))
    return _merged(spans)


def _opened(records: Sequence[Record]) -> list[PerfOpen]:
    """Opened CPU-bound host exclude_guest events, by CPU then event id."""
    opens: list[PerfOpen] = records_of(records, PerfOpen)
    return sorted((o for o in opens if o.cpu >= 0 and not o.task and o.exclude_guest
                   and not o.errno), key=lambda o: (o.cpu, o.event, o.t_ps))


def _blind_event(ev: PerfOpen, host: list[Span[str]], contexts: list[Span[int]],
                 fastpath: list[Span[int]]) -> tuple[dict[str, Any], int, int]:
    """One event's section, its blind time and its worst gap (ps)."""
    clipped = [(max(s, ev.t_ps), e, i) for s, e, i in contexts if max(s, ev.t_ps) < e]
    pieces = list(_overlap(host, clipped))
    kvm = [(s, e, gap) for s, e, mode, gap in pieces if mode == "in-kvm"]
    split = Counter({"fastpath": sum(e - s for s, e, _, _ in _overlap(kvm, fastpath))})
    split["kvm"] = sum(e - s for s, e, _ in kvm) - split["fastpath"]
    split["other"] = sum(e - s for s, e, mode, _ in pieces if mode != "in-kvm")
    per_gap = Counter[int]()
    for s, e, _, gap in pieces:
        per_gap[gap] += e - s
    total, worst = sum(per_gap.values()), max(per_gap.values(), default=0)
    host_ps = sum(e - max(s, ev.t_ps) for s, e, _ in host if e > ev.t_ps)
    section = {
        "cpu": ev.cpu, "event": ev.event, "name": ev.name, "opened_ns": ns(ev.t_ps),
        "host_ns": ns(host_ps),
        "blind_ns": {k: ns(split[k]) for k in ("fastpath", "kvm", "other")} | {
            "total": ns(total)},
        "blind_fraction": round(total / host_ps, 6) if host_ps else None,
        "worst_gap_ns": ns(worst), "gaps": sum(1 for v in per_gap.values() if v > 0),
    }
    return section, total, worst


def host_profiling(records: Sequence[Record], end_ps: int) -> dict[str, Any] | None:
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
    opened = _opened(records)
    refused = sorted((o for o in records_of(records, PerfOpen) if o.errno),
                     key=lambda o: (o.t_ps, o.cpu, o.event))
    if not opened and not refused:
        return None
    modes, switches = _by_cpu(records, ModeChange), _by_cpu(records, PmuContext)
    exits: dict[int, list[VmExit]] = _by_cpu(records, VmExit)
    events: list[dict[str, Any]] = []
    total = worst = 0
    for ev in opened:
        fastpath = _merged([(x.t_ps, x.t_ps + x.cost_ps) for x in exits.get(ev.cpu, [])
                            if x.fastpath])
        section, blind, gap = _blind_event(ev, _host_code(modes.get(ev.cpu, []), end_ps),
                                           _guest_contexts(switches.get(ev.cpu, []), end_ps),
                                           fastpath)
        events.append(section)
        total, worst = total + blind, max(worst, gap)
    return {"events": events,
            "refused": [{"t_ns": ns(o.t_ps), "cpu": o.cpu, "name": o.name, "errno": o.errno}
                        for o in refused],
            "blind_ns_total": ns(total), "worst_gap_ns": ns(worst)}


def leaks(records: Sequence[Record]) -> dict[str, Any]:
    """Seed 003's leaks: guest-produced counter values a host task read with RDPMC.

    Each ``CounterRead`` with an ``origin`` (the guest whose context left the value) and a
    non-zero value is one observation; a zero carries no information about the guest (it is
    also what a cleared counter reads), so it is not a leak. Keys: ``count``, ``by_guest``
    (origin -> count, by name), ``observations`` (the first ``MAX_OBSERVATIONS`` in time
    order: ``t_ns``, ``cpu``, ``observer``, ``path``, ``counter``, ``value``, ``guest``) and
    ``truncated`` (whether more were seen than listed).
    """
    reads: list[CounterRead] = records_of(records, CounterRead)
    seen = sorted((r for r in reads if r.origin and r.value != 0),
                  key=lambda r: (r.t_ps, r.cpu))
    by_guest = Counter(r.origin for r in seen)
    return {
        "count": len(seen),
        "by_guest": dict(sorted(by_guest.items())),
        "observations": [{"t_ns": ns(r.t_ps), "cpu": r.cpu, "observer": r.task,
                          "path": "rdpmc", "counter": r.ecx, "value": r.value,
                          "guest": r.origin} for r in seen[:MAX_OBSERVATIONS]],
        "truncated": len(seen) > MAX_OBSERVATIONS,
    }


def pollution(records: Sequence[Record], end_ps: int) -> dict[str, Any]:
    """Host code run while a guest's enabled selectors sat on the CPU (``GuestSelectors``).

    Keys: ``host_ns`` (host code with ``enabled`` != 0), ``counting_ns`` (the part with
    ``counting`` != 0: the selectors counted host code), ``by_cpu`` (rows ``cpu``, ``guest``,
    ``host_ns``, ``counting_ns`` by CPU then guest ``vm/vcpuN``, only rows with time) and
    ``worst_ns`` (the longest unbroken stretch of such host time on one CPU, whichever guest's
    selectors they were).
    """
    modes = _by_cpu(records, ModeChange)
    rows: dict[tuple[int, str], list[int]] = {}
    worst = 0
    for cpu, changes in sorted(_by_cpu(records, GuestSelectors).items()):
        held = [(s, e, r) for s, e, r in _steps(changes, end_ps) if r.enabled]
        stretch_end, stretch = -1, 0
        for s, e, _, sel in _overlap(_host_code(modes.get(cpu, []), end_ps), held):
            row = rows.setdefault((cpu, f"{sel.vm}/vcpu{sel.vcpu}"), [0, 0])
            row[0] += e - s
            row[1] += (e - s) if sel.counting else 0
            stretch = stretch + e - s if s == stretch_end else e - s
            stretch_end, worst = e, max(worst, stretch)
    return {
        "host_ns": ns(sum(r[0] for r in rows.values())),
        "counting_ns": ns(sum(r[1] for r in rows.values())),
        "by_cpu": [{"cpu": cpu, "guest": guest, "host_ns": ns(h), "counting_ns": ns(c)}
                   for (cpu, guest), (h, c) in sorted(rows.items()) if h],
        "worst_ns": ns(worst),
    }
