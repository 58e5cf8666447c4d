"""Export a run's records as Chrome trace-event JSON, the format ui.perfetto.dev and
chrome://tracing open.

Time: records hold integer picoseconds; the format's ``ts`` and ``dur`` are microseconds,
written as ``t_ps / 1e6`` (the shortest decimal that reads back as the same double, at most six
decimals: picoseconds survive the round trip). ``displayTimeUnit`` is "ns". Perfetto keeps
nanoseconds: its JSON importer truncates ``ts * 1000`` and ``dur * 1000`` to integers
separately, and two things follow (see ``_us`` and ``_lanes``): a value such as 1.001 µs is
1000.99999... ns as a double, so such values are written one ulp higher; and a child that ends
on its parent's last picosecond could end 1 ns after it there, so its written duration is cut
to end in the parent's last Perfetto nanosecond (about 1 ns at most per nesting level; 25 of
50,000 slices of seed-001 at 20 ms, by 0.6 ns at most). Every other duration is exact, and
the args keep the records' own costs.

Tracks (one thread each; ``tid = index + 1 + stride * slot`` with ``stride`` a power of ten, at
least 1000, above every CPU and vCPU index):

- Process "host" (pid 1), for each physical CPU N:
  - "CPU N sched" (slot 1): the running task between context switches ("CPU 0/KVM", "idle",
    ...), from 0 (the first switch's previous task) to ``end_ps``.
  - "CPU N mode" (slot 2): the CPU's execution mode (guest-user, in-kvm, host-kernel, ...)
    from each ``ModeChange`` to the next one or ``end_ps``, as slices. Modes change at every
    exit and entry; a band of slices costs one event per change, like instants would, but
    reads as a timeline and leaves the exits on "CPU N" uncluttered.
  - "CPU N PMU owner" (slot 3; in runs with ``PmuContext`` records, i.e. a mediated vPMU):
    "guest vm/vcpuN" from the end of a load to the start of the next put, "host" otherwise.
  - "CPU N" (slot 0, so ``tid = N + 1``): VM-exits (named by reason, e.g. MSR_WRITE), perf
    kernel-API calls ("perf " + api), mediated PMU switches ("PMU load" / "PMU put"), and
    instants: interrupts ("irq tick"), perf samples, RDPMC reads ("rdpmc", or "rdpmc LEAK"
    when the value came from a guest), perf_event_open, guest selectors left enabled, and
    the LBR's: stacks saved, restored and reset ("LBR save", with the cost in the args),
    changes of holder and decided claims ("LBR host-refused", ...), host perf's reads of it
    ("lbr read", "lbr read LEAK" with guest records, "lbr read (no stack)").
  - "host (no CPU)" (slot 4): instants of records with ``cpu == -1`` (task perf events).
- One process per VM (pid 100, 101, ... in order of first appearance, named by the VM), for
  each vCPU N:
  - "vCPU N" (slot 0): the vCPU's VM-exits, as on its CPU's track.
  - "vCPU N PMI" (slot 1): guest PMI handlers, from delivery for ``latency_ps``. A PMI is
    delivered while the exit that injects it still runs and the handler outlives that exit,
    so on one track the two would overlap partially: the handler has its own track.

The sched, mode and owner tracks tile their span by construction. On the others the complete
("X") slices of one thread must still nest (Perfetto misdraws partial overlaps): each track's
slices are placed, by (start, longest first), on the first lane where they nest; a slice that
overlaps one partially goes to an overflow thread "<track> (overflow k)" (slot
``slot + 5 * k``). None of the example scenarios needs one.

Records of a type this module does not know (future ones) are skipped and counted in
``metadata["skipped"]``. Events are written metadata first, then by (ts, longest first,
emission order), one per line; the same records give the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from vpmu.trace.records import (
    ContextSwitch,
    CounterRead,
    GuestPmi,
    GuestSelectors,
    Interrupt,
    LbrContext,
    LbrOwner,
    LbrRead,
    ModeChange,
    PerfCall,
    PerfOpen,
    PerfSample,
    PmuContext,
    Record,
    VmExit,
)

HOST_PID = 1
"""The host process."""
VM_PID_BASE = 100
"""The first VM's pid; the next VMs follow in order of first appearance."""

_ENCODER = json.JSONEncoder(separators=(",", ":"))
"""Compact JSON, one encoder for every event."""


class _Role(NamedTuple):
    """A kind of track: its tid block, its place among its CPU's or vCPU's tracks, its name."""

    slot: int
    order: int
    label: str


_ROLES = {
    "cpu": _Role(0, 3, "CPU {i}"),
    "sched": _Role(1, 0, "CPU {i} sched"),
    "mode": _Role(2, 1, "CPU {i} mode"),
    "owner": _Role(3, 2, "CPU {i} PMU owner"),
    "nocpu": _Role(4, 0, "host (no CPU)"),
    "vcpu": _Role(0, 0, "vCPU {i}"),
    "pmi": _Role(1, 1, "vCPU {i} PMI"),
}
_SLOTS = 5
"""Tid blocks per lane: overflow lane k of a role uses block ``slot + _SLOTS * k``."""

TrackKey = tuple[int, str, int]
"""(pid, role, CPU or vCPU index) of a track, before overflow lanes."""
ArgsOf = Callable[[Any], dict[str, Any]]
"""Makes an event's args from its source (a record), when the event is written: the records
already hold the values, so a million-record run keeps no second copy as dicts."""


class _Slice(NamedTuple):
    start_ps: int
    end_ps: int
    seq: int
    name: str
    cat: str
    src: Any
    args_of: ArgsOf | None


class _Instant(NamedTuple):
    t_ps: int
    seq: int
    name: str
    cat: str
    src: Any
    args_of: ArgsOf


def _us(t_ps: int) -> float:
    """Picoseconds as the format's microseconds: ``t_ps / 1e6``, nudged up by ulps where
    needed so that Perfetto's ``int64(us * 1000.0)`` is exactly ``t_ps // 1000``."""
    us = t_ps / 1e6
    while int(us * 1000.0) < t_ps // 1000:
        us = math.nextafter(us, math.inf)
    return us


def _hex(x: int) -> str:
    return hex(x)


@dataclass
class _Builder:
    """One pass over the records: slices and instants per track, and the per-CPU records
    (switches, modes, PMU contexts) that become timelines at the end."""

    end_ps: int
    slices: dict[TrackKey, list[_Slice]] = field(default_factory=dict)
    instants: dict[TrackKey, list[_Instant]] = field(default_factory=dict)
    vm_pids: dict[str, int] = field(default_factory=dict)
    switches: dict[int, list[ContextSwitch]] = field(default_factory=dict)
    modes: dict[int, list[ModeChange]] = field(default_factory=dict)
    contexts: dict[int, list[PmuContext]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    seq: int = 0

    def vm_pid(self, vm: str) -> int:
        return self.vm_pids.setdefault(vm, VM_PID_BASE + len(self.vm_pids))

    def slice(self, key: TrackKey, start_ps: int, dur_ps: int, name: str, cat: str,
              src: Any = None, args_of: ArgsOf | None = None) -> None:
        self.seq += 1
        name = self.names.setdefault(name, name)  # one string per distinct name
        self.slices.setdefault(key, []).append(
            _Slice(start_ps, start_ps + max(dur_ps, 0), self.seq, name, cat, src, args_of))

    def instant(self, r: Record, name: str, cat: str, args_of: ArgsOf) -> None:
        self.seq += 1
        name = self.names.setdefault(name, name)
        self.instants.setdefault(_cpu_key(r.cpu), []).append(
            _Instant(r.t_ps, self.seq, name, cat, r, args_of))


def _cpu_key(cpu: int) -> TrackKey:
    return (HOST_PID, "cpu", cpu) if cpu >= 0 else (HOST_PID, "nocpu", -1)


# -- args, made when an event is written -------------------------------------------------------
def _exit_args(r: VmExit) -> dict[str, Any]:
    """msr/write only for MSR exits, vector only when known; values in hex."""
    args: dict[str, Any] = {"vm": r.vm, "vcpu": r.vcpu, "cpu": r.cpu}
    if r.msr >= 0:
        args |= {"msr": _hex(r.msr), "write": r.write}
    args |= {"value": _hex(r.value), "fault": r.fault, "fastpath": r.fastpath}
    if r.vector >= 0:
        args["vector"] = r.vector
    args["cost_ns"] = r.cost_ps / 1000
    return args


def _pmi_args(r: GuestPmi) -> dict[str, Any]:
    return {"cpu": r.cpu, "latency_ns": r.latency_ps / 1000}


def _perf_call_args(r: PerfCall) -> dict[str, Any]:
    return {"event": r.event, "cost_ns": r.cost_ps / 1000}


def _pmu_args(r: PmuContext) -> dict[str, Any]:
    return {"vm": r.vm, "vcpu": r.vcpu, "why": r.why, "cost_ns": r.cost_ps / 1000}


def _owner_args(r: PmuContext) -> dict[str, Any]:
    return {"vm": r.vm, "vcpu": r.vcpu}


def _mode_args(r: ModeChange) -> dict[str, Any]:
    return {"task": r.task}


def _irq_args(r: Interrupt) -> dict[str, Any]:
    return {"kind": r.kind, "detail": r.detail} if r.detail else {"kind": r.kind}


def _sample_args(r: PerfSample) -> dict[str, Any]:
    return {"event": r.event, "task": r.task, "mode": r.mode, "period": r.period}


def _read_args(r: CounterRead) -> dict[str, Any]:
    return {"task": r.task, "ecx": _hex(r.ecx), "value": _hex(r.value), "origin": r.origin}


def _open_args(r: PerfOpen) -> dict[str, Any]:
    return {"event": r.event, "name": r.name, "exclude_guest": r.exclude_guest,
            "task": r.task, "errno": r.errno}


def _lbr_context_args(r: LbrContext) -> dict[str, Any]:
    return {"vm": r.vm, "vcpu": r.vcpu, "why": r.why, "msrs": r.msrs, "cycles": r.cycles,
            "cost_ns": r.cost_ps / 1000}


def _lbr_owner_args(r: LbrOwner) -> dict[str, Any]:
    return {"held_by": r.held_by, "holder": r.holder, "guest": r.guest,
            "guest_records": r.guest_records, "host_records": r.host_records}


def _lbr_read_args(r: LbrRead) -> dict[str, Any]:
    return {"event": r.event, "records": r.records, "guest_records": r.guest_records,
            "guest": r.guest}


def _selectors_args(r: GuestSelectors) -> dict[str, Any]:
    return {"vm": r.vm, "vcpu": r.vcpu, "enabled": _hex(r.enabled),
            "counting": _hex(r.counting)}


# -- one handler per record type ---------------------------------------------------------------
def _vm_exit(b: _Builder, r: VmExit) -> None:
    b.slice((b.vm_pid(r.vm), "vcpu", r.vcpu), r.t_ps, r.cost_ps, r.reason, "exit", r,
            _exit_args)
    b.slice(_cpu_key(r.cpu), r.t_ps, r.cost_ps, r.reason, "exit", r, _exit_args)


def _guest_pmi(b: _Builder, r: GuestPmi) -> None:
    b.slice((b.vm_pid(r.vm), "pmi", r.vcpu), r.t_ps, r.latency_ps, "guest PMI handler", "pmi",
            r, _pmi_args)


def _perf_call(b: _Builder, r: PerfCall) -> None:
    b.slice(_cpu_key(r.cpu), r.t_ps, r.cost_ps, f"perf {r.api}", "perf", r, _perf_call_args)


def _pmu_context(b: _Builder, r: PmuContext) -> None:
    b.vm_pid(r.vm)
    name = {"guest": "PMU load", "host": "PMU put"}.get(r.state, f"PMU {r.state}")
    b.slice(_cpu_key(r.cpu), r.t_ps, r.cost_ps, name, "pmu", r, _pmu_args)
    if r.cpu >= 0:
        b.contexts.setdefault(r.cpu, []).append(r)


def _context_switch(b: _Builder, r: ContextSwitch) -> None:
    if r.cpu >= 0:
        b.switches.setdefault(r.cpu, []).append(r)


def _mode_change(b: _Builder, r: ModeChange) -> None:
    if r.cpu >= 0:
        b.modes.setdefault(r.cpu, []).append(r)


def _interrupt(b: _Builder, r: Interrupt) -> None:
    b.instant(r, f"irq {r.kind}", "irq", _irq_args)


def _perf_sample(b: _Builder, r: PerfSample) -> None:
    b.instant(r, "perf sample", "perf", _sample_args)


def _counter_read(b: _Builder, r: CounterRead) -> None:
    b.instant(r, "rdpmc LEAK" if r.origin else "rdpmc", "rdpmc", _read_args)


def _perf_open(b: _Builder, r: PerfOpen) -> None:
    b.instant(r, f"perf_event_open {r.errno}" if r.errno else "perf_event_open", "perf",
              _open_args)


def _lbr_context(b: _Builder, r: LbrContext) -> None:
    b.instant(r, f"LBR {r.op}", "lbr", _lbr_context_args)


def _lbr_owner(b: _Builder, r: LbrOwner) -> None:
    b.instant(r, f"LBR {r.why}", "lbr", _lbr_owner_args)


def _lbr_read(b: _Builder, r: LbrRead) -> None:
    name = ("lbr read (no stack)" if r.records < 0 else
            "lbr read LEAK" if r.guest_records else "lbr read")
    b.instant(r, name, "lbr", _lbr_read_args)


def _guest_selectors(b: _Builder, r: GuestSelectors) -> None:
    b.vm_pid(r.vm)
    b.instant(r, "guest selectors", "pmu", _selectors_args)


_HANDLERS: dict[type, Callable[[_Builder, Any], None]] = {
    VmExit: _vm_exit, GuestPmi: _guest_pmi, PerfCall: _perf_call, PmuContext: _pmu_context,
    ContextSwitch: _context_switch, ModeChange: _mode_change, Interrupt: _interrupt,
    PerfSample: _perf_sample, CounterRead: _counter_read, PerfOpen: _perf_open,
    GuestSelectors: _guest_selectors, LbrContext: _lbr_context, LbrOwner: _lbr_owner,
    LbrRead: _lbr_read,
}
"""By exact type: a subclass (a future record) is unknown, hence skipped."""


# -- per-CPU timelines -------------------------------------------------------------------------
def _sched_track(b: _Builder, cpu: int, switches: list[ContextSwitch]) -> None:
    """The running task from 0 (the first switch's ``prev``) to ``end_ps``."""
    switches.sort(key=lambda r: r.t_ps)  # stable; records are in order already
    key, t, task = (HOST_PID, "sched", cpu), 0, switches[0].prev
    for r in switches:
        if r.t_ps > t:
            b.slice(key, t, r.t_ps - t, task, "sched")
        t, task = max(t, r.t_ps), r.next
    if b.end_ps > t:
        b.slice(key, t, b.end_ps - t, task, "sched")


def _mode_track(b: _Builder, cpu: int, modes: list[ModeChange]) -> None:
    """The mode from the first change on; a change to the same mode and task is none."""
    modes.sort(key=lambda r: r.t_ps)
    key, cur = (HOST_PID, "mode", cpu), modes[0]
    t = cur.t_ps
    for r in modes:
        if (r.mode, r.task) == (cur.mode, cur.task):
            continue
        if r.t_ps > t:
            b.slice(key, t, r.t_ps - t, cur.mode, "mode", cur, _mode_args)
        t, cur = max(t, r.t_ps), r
    if b.end_ps > t:
        b.slice(key, t, b.end_ps - t, cur.mode, "mode", cur, _mode_args)


def _owner_track(b: _Builder, cpu: int, contexts: list[PmuContext]) -> None:
    """The guest from the end of a load to the start of the next put, the host otherwise;
    boundaries kept monotonic and within ``end_ps``, so the slices tile [0, end_ps]."""
    contexts.sort(key=lambda r: r.t_ps)
    key, t = (HOST_PID, "owner", cpu), 0
    guest: PmuContext | None = None
    for r in [*contexts, None]:
        if r is None:  # the end of the run closes the last owner
            at = b.end_ps
        elif r.state == "guest":
            at = r.t_ps + r.cost_ps
        elif guest is not None:
            at = r.t_ps
        else:  # a put while the host owns the PMU changes nothing
            continue
        at = min(max(at, t), max(b.end_ps, t))
        if at > t and guest is None:
            b.slice(key, t, at - t, "host", "pmu")
        elif at > t and guest is not None:
            b.slice(key, t, at - t, f"guest {guest.vm}/vcpu{guest.vcpu}", "pmu", guest,
                    _owner_args)
        t, guest = at, (r if r is not None and r.state == "guest" else None)


def _timelines(b: _Builder) -> None:
    for cpu, switches in sorted(b.switches.items()):
        _sched_track(b, cpu, switches)
    for cpu, modes in sorted(b.modes.items()):
        _mode_track(b, cpu, modes)
    if b.contexts:
        cpus = {k[2] for k in [*b.slices, *b.instants] if k[1] in ("cpu", "sched", "mode")}
        for cpu in sorted(cpus):
            _owner_track(b, cpu, b.contexts.get(cpu, []))


# -- lanes: slices that nest -------------------------------------------------------------------
class _Open(NamedTuple):
    """A slice still open on a lane: its true end, its written end, and the end Perfetto
    computes from the written ``ts`` and ``dur`` (each truncated to ns, then added)."""

    end_ps: int
    written_end_ps: int
    perfetto_end_ns: int


def _fit(lanes: list[list[_Open]], s: _Slice) -> int:
    """The first lane where ``s`` nests (closing the slices that ended before it), else a
    new one."""
    for lane, stack in enumerate(lanes):
        while stack and stack[-1].written_end_ps <= s.start_ps:
            stack.pop()
        if not stack or stack[-1].end_ps >= s.end_ps:
            return lane
    lanes.append([])
    return len(lanes) - 1


def _lanes(slices: list[_Slice]) -> list[tuple[int, int]]:
    """Sort ``slices`` by (start, longest first, seq); give each a lane where it nests and
    the duration to write: the true one, except that a child Perfetto would see ending after
    its parent's last nanosecond ends there (never past the parent's written end either), so
    slices nest for a picosecond reader and for Perfetto alike."""
    slices.sort(key=lambda s: (s.start_ps, -s.end_ps, s.seq))
    lanes: list[list[_Open]] = []
    out: list[tuple[int, int]] = []
    for s in slices:
        lane = _fit(lanes, s)
        stack = lanes[lane]
        dur, start_ns = s.end_ps - s.start_ps, s.start_ps // 1000
        if stack:
            parent = stack[-1]
            dur = max(0, min(dur, parent.written_end_ps - s.start_ps,
                             (parent.perfetto_end_ns - start_ns) * 1000 + 999))
        stack.append(_Open(s.end_ps, s.start_ps + dur, start_ns + dur // 1000))
        out.append((lane, dur))
    return out


# -- tids, metadata and events -----------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    """The tid and the name of each (track, lane)."""

    stride: int

    def tid(self, key: TrackKey, lane: int) -> int:
        return key[2] + 1 + self.stride * (_ROLES[key[1]].slot + _SLOTS * lane)

    @staticmethod
    def name(key: TrackKey, lane: int) -> str:
        label = _ROLES[key[1]].label.format(i=key[2])
        return f"{label} (overflow {lane})" if lane else label


def _stride(keys: Sequence[TrackKey]) -> int:
    top, stride = max((k[2] + 1 for k in keys), default=0), 1000
    while stride <= top:
        stride *= 10
    return stride


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": args}


def _metadata_events(b: _Builder, layout: _Layout,
                     tracks: list[tuple[TrackKey, int]]) -> Iterator[dict[str, Any]]:
    """Process and thread names and sort indices: the host first, then the VMs; per CPU
    (vCPU) its tracks in ``_Role.order``, overflow lanes after their track."""
    procs = {HOST_PID: "host"} | {pid: vm for vm, pid in b.vm_pids.items()}
    for order, (pid, name) in enumerate(sorted(procs.items())):
        yield _meta("process_name", pid, 0, {"name": name})
        yield _meta("process_sort_index", pid, 0, {"sort_index": order})
    ordered = sorted(tracks, key=lambda kl: (kl[0][0], kl[0][2], _ROLES[kl[0][1]].order, kl[1]))
    for order, (key, lane) in enumerate(ordered):
        tid = layout.tid(key, lane)
        yield _meta("thread_name", key[0], tid, {"name": layout.name(key, lane)})
        yield _meta("thread_sort_index", key[0], tid, {"sort_index": order})


class _Timed(NamedTuple):
    """An event in writing order: by ts, then longest first, then emission order."""

    t_ps: int
    neg_dur_ps: int
    seq: int
    pid: int
    tid: int
    item: _Slice | _Instant


def _timed(b: _Builder, layout: _Layout,
           lanes: dict[TrackKey, list[tuple[int, int]]]) -> list[_Timed]:
    out: list[_Timed] = []
    for key, slices in b.slices.items():
        for s, (lane, dur) in zip(slices, lanes[key], strict=True):
            out.append(_Timed(s.start_ps, -dur, s.seq, key[0], layout.tid(key, lane), s))
    for key, instants in b.instants.items():
        tid = layout.tid(key, 0)
        out.extend(_Timed(i.t_ps, 0, i.seq, key[0], tid, i) for i in instants)
    out.sort(key=lambda e: (e.t_ps, e.neg_dur_ps, e.seq))
    return out


def _event(e: _Timed) -> dict[str, Any]:
    item = e.item
    ev: dict[str, Any] = {"name": item.name, "cat": item.cat}
    if isinstance(item, _Slice):
        ev |= {"ph": "X", "ts": _us(e.t_ps), "dur": _us(-e.neg_dur_ps), "pid": e.pid,
               "tid": e.tid}
    else:
        ev |= {"ph": "i", "s": "t", "ts": _us(e.t_ps), "pid": e.pid, "tid": e.tid}
    if item.args_of is not None:
        ev["args"] = item.args_of(item.src)
    return ev


@dataclass
class _Export:
    """A built export: events in writing order, made one at a time, and the metadata."""

    metadata_events: list[dict[str, Any]]
    timed: list[_Timed]
    metadata: dict[str, Any]

    def events(self) -> Iterator[dict[str, Any]]:
        yield from self.metadata_events
        for e in self.timed:
            yield _event(e)


def _export(records: Sequence[Record], end_ps: int, title: str) -> _Export:
    if isinstance(end_ps, bool) or not isinstance(end_ps, int) or end_ps < 0:
        raise ValueError(f"end_ps must be a non-negative integer of picoseconds, not {end_ps!r}")
    b = _Builder(end_ps)
    for r in records:
        handler = _HANDLERS.get(type(r))
        if handler is None:
            name = type(r).__name__
            b.skipped[name] = b.skipped.get(name, 0) + 1
        else:
            handler(b, r)
    _timelines(b)
    lanes = {key: _lanes(slices) for key, slices in b.slices.items()}
    tracks = sorted({(k, lane) for k, ls in lanes.items() for lane, _ in ls}
                    | {(k, 0) for k in b.instants})
    layout = _Layout(_stride([k for k, _ in tracks]))
    meta = {"title": title, "source": "vpmu", "end_ps": end_ps, "records": len(records),
            "skipped": b.skipped}
    return _Export(list(_metadata_events(b, layout, tracks)), _timed(b, layout, lanes), meta)


def chrome_trace(records: Sequence[Record], *, end_ps: int, title: str = "") -> dict[str, Any]:
    """The trace-event JSON object of ``records`` from a run that ended at ``end_ps``:
    ``{"traceEvents": [...], "displayTimeUnit": "ns", "metadata": {...}}``."""
    ex = _export(records, end_ps, title)
    return {"traceEvents": list(ex.events()), "displayTimeUnit": "ns", "metadata": ex.metadata}


def dumps_chrome_trace(records: Sequence[Record], *, end_ps: int, title: str = "") -> str:
    """``chrome_trace`` as canonical JSON text: compact, one event per line, the same records
    give the same bytes. Events are encoded one at a time (no list of all events as dicts)."""
    ex = _export(records, end_ps, title)
    lines = ",\n".join(map(_ENCODER.encode, ex.events()))
    tail = _ENCODER.encode({"displayTimeUnit": "ns", "metadata": ex.metadata})
    return '{"traceEvents":[\n' + lines + "\n]," + tail[1:] + "\n"
