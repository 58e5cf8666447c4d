"""The per-CPU PMU ownership timeline of the HTML report, from trace records only.

Vocabulary (docs/mediated.md, ``vpmu.metrics.mediated``):

- *host*: the host's perf context owns the CPU's PMU. Under ``emulated`` and ``none`` there
  are no ``PmuContext`` records: the host owns every PMU for the whole run and a guest's
  counters are host perf events.
- *guest loaded*: a mediated vCPU's context is on the hardware, from the end of a "guest"
  ``PmuContext`` (a load) to the next "host" one (a put).
- *switching*: a load's or a put's own time, ``[t_ps, t_ps + cost_ps)``.

A load while loaded and a put while the host owns the PMU change nothing (as in the metrics).
Markers are the records that changed or read counters: guest PMU MSR exits (with the value
written or read), guest PMIs, host RDPMC reads (a guest-produced non-zero value is a leak),
perf calls and host perf samples.

A run with more segments and markers than its page keeps one by one is stored in buckets of
time: ``buckets`` groups its markers, ``spans`` gives each bucket of a CPU to the state that
held its PMU longest (``vpmu.report.html_timeline``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from vpmu.arch.names import names_for
from vpmu.trace import CounterRead, GuestPmi, PerfCall, PerfSample, PmuContext, Record, VmExit


class Segment(NamedTuple):
    """``[start_ps, end_ps)`` of one CPU's PMU in ``state`` (host, guest or switching);
    ``guest`` is the ``vm/vcpuN`` loaded or switched, ``detail`` what a switch was."""

    start_ps: int
    end_ps: int
    state: str
    guest: str = ""
    detail: str = ""


class Marker(NamedTuple):
    """A record drawn as a marker of ``kind`` (a key of ``vpmu.report.html_timeline.LANES``)."""

    t_ps: int
    cpu: int
    kind: str
    record: Any


def pmu_msr_kind(addr: int) -> str | None:
    """"counter", "selector" or "global" for a PMU register, None for any other."""
    return names_for().kind(addr)


def cpus_of(records: Sequence[Record]) -> list[int]:
    """The physical CPUs the records name, in order."""
    return sorted({r.cpu for r in records if r.cpu >= 0})


def ownership(records: Sequence[Record], end_ps: int) -> dict[int, list[Segment]]:
    """Each CPU's PMU ownership over ``[0, end_ps)``: time-ordered, disjoint segments."""
    switches: dict[int, list[PmuContext]] = {cpu: [] for cpu in cpus_of(records)}
    for r in records:
        if type(r) is PmuContext and r.cpu >= 0:
            switches[r.cpu].append(r)
    return {cpu: list(_cpu_segments(sorted(rs, key=lambda r: r.t_ps), end_ps))
            for cpu, rs in switches.items()}


def _cpu_segments(switches: Sequence[PmuContext], end_ps: int) -> Iterator[Segment]:
    """One CPU's segments; a switch that starts before the previous one ended is clipped."""
    cursor, loaded = 0, ""

    def seg(start: int, end: int, state: str, guest: str = "", detail: str = "") -> Segment:
        return Segment(max(start, cursor), min(end, end_ps), state, guest, detail)

    for r in switches:
        guest = f"{r.vm}/vcpu{r.vcpu}"
        if (r.state == "guest") == bool(loaded):
            continue  # a load while loaded, or a put while the host owns the PMU
        before = seg(cursor, r.t_ps, "guest" if loaded else "host", loaded)
        switch = seg(r.t_ps, r.t_ps + r.cost_ps, "switching", guest,
                     f"{'load' if r.state == 'guest' else 'put'} ({r.why or '?'})")
        yield from (s for s in (before, switch) if s.start_ps < s.end_ps)
        cursor, loaded = max(cursor, r.t_ps + r.cost_ps), guest if r.state == "guest" else ""
    last = seg(cursor, end_ps, "guest" if loaded else "host", loaded)
    if last.start_ps < last.end_ps:
        yield last


def markers(records: Sequence[Record]) -> list[Marker]:
    """The counter events of the records, in record order."""
    out: list[Marker] = []
    for r in records:
        kind = _marker_kind(r)
        if kind is not None and r.cpu >= 0:
            out.append(Marker(r.t_ps, r.cpu, kind, r))
    return out


def _marker_kind(r: Record) -> str | None:
    if isinstance(r, VmExit):
        if r.reason == "RDPMC":
            return "pmu_read"
        if r.msr < 0 or pmu_msr_kind(r.msr) is None:
            return None
        return "pmu_write" if r.write else "pmu_read"
    if isinstance(r, CounterRead):
        return "leak" if r.origin and r.value != 0 else "rdpmc"
    return _SIMPLE_KINDS.get(type(r))


_SIMPLE_KINDS: dict[type[Record], str] = {GuestPmi: "pmi", PerfCall: "perf_call",
                                          PerfSample: "perf_sample"}


def buckets(marks: Sequence[Marker], bin_ps: int) -> list[tuple[Marker, int]]:
    """The markers grouped by kind, CPU and ``bin_ps`` bucket of time: each group's first
    marker and its count, groups in the order of their first marker."""
    groups: dict[tuple[str, int, int], list[Any]] = {}
    for m in marks:
        groups.setdefault((m.kind, m.cpu, m.t_ps // bin_ps), [m, 0])[1] += 1
    return [(m, n) for m, n in groups.values()]


Key = tuple[str, str]
"""What holds a CPU's PMU in a segment: its state and guest (``Segment[2:4]``)."""


class Span(NamedTuple):
    """``[start_ps, end_ps)`` of one CPU in buckets: ``key`` held the PMU longest in each of
    them; ``shares`` is the time each key held it there, most first."""

    start_ps: int
    end_ps: int
    key: Key
    shares: tuple[tuple[Key, int], ...]


def spans(segs: Sequence[Segment], bin_ps: int) -> list[Span]:
    """One CPU's time-ordered, contiguous segments in ``bin_ps`` buckets: each bucket goes to
    the key that held it longest (the first of them on a tie) and neighbouring buckets of one
    key merge. Buckets inside one segment are not visited one by one, so the work is linear
    in the segments, not in the buckets."""
    out: list[tuple[int, int, Key, Counter[Key]]] = []
    acc: Counter[Key] = Counter()
    bucket, acc_end = -1, 0

    def emit(start: int, end: int, shares: Counter[Key]) -> None:
        key = max(shares, key=shares.__getitem__)
        if out and out[-1][1] == start and out[-1][2] == key:
            out[-1][3].update(shares)
            out[-1] = (out[-1][0], end, key, out[-1][3])
        else:
            out.append((start, end, key, Counter(shares)))

    for s in segs:
        first, last = s.start_ps // bin_ps, (s.end_ps - 1) // bin_ps
        if first != bucket and acc:
            emit(bucket * bin_ps, acc_end, acc)
            acc = Counter()
        key, bucket = (s.state, s.guest), first
        if first < last:  # the segment leaves its first bucket
            acc[key] += (first + 1) * bin_ps - s.start_ps
            emit(first * bin_ps, (first + 1) * bin_ps, acc)
            if last > first + 1:
                emit((first + 1) * bin_ps, last * bin_ps,
                     Counter({key: (last - first - 1) * bin_ps}))
            acc, bucket = Counter(), last
        acc[key] += s.end_ps - max(s.start_ps, last * bin_ps)
        acc_end = s.end_ps
    if acc:
        emit(bucket * bin_ps, acc_end, acc)
    return [Span(start, end, key, tuple(sorted(shares.items(), key=lambda kv: -kv[1])))
            for start, end, key, shares in out]


def us(t_ps: int) -> float:
    """Picoseconds as microseconds (the timeline's x unit) to 1 ns."""
    return round(t_ps / 10**6, 3)
