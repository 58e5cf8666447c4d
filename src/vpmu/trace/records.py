"""Trace records: frozen facts every layer emits, the only input of ``vpmu.metrics``.

A record says what happened, when (``t_ps``) and where (``cpu``; -1 when no CPU applies).
Records are plain values: comparing two runs' record lists is how determinism is tested
("same seed, same trace").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Record:
    """Base of every record."""

    t_ps: int
    cpu: int


@dataclass(frozen=True, slots=True)
class ContextSwitch(Record):
    """The scheduler switched ``cpu`` from task ``prev`` to task ``next`` (names; "idle")."""

    prev: str
    next: str


@dataclass(frozen=True, slots=True)
class ModeChange(Record):
    """``cpu`` started executing in ``mode`` (a ``vpmu.host.modes.Mode`` value) for ``task``."""

    mode: str
    task: str


@dataclass(frozen=True, slots=True)
class Interrupt(Record):
    """An interrupt was handled on ``cpu``: ``kind`` is tick, pmi, ipi or wakeup."""

    kind: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PerfCall(Record):
    """A call into the perf subsystem's kernel API, with the time it cost."""

    api: str
    event: int
    cost_ps: int


@dataclass(frozen=True, slots=True)
class PerfSample(Record):
    """A sampling event overflowed and perf wrote a sample."""

    event: int
    task: str
    mode: str
    period: int


@dataclass(frozen=True, slots=True)
class CounterRead(Record):
    """A host task read a counter with RDPMC and saw ``value``."""

    task: str
    ecx: int
    value: int
    origin: str = ""
    """Who produced the value in the hardware counter: "" for the host, else the guest's
    ``vm/vcpuN`` whose context left it there (a leak when non-zero, seed 003, docs/sources.md)."""


@dataclass(frozen=True, slots=True)
class VmExit(Record):
    """A VM-exit of ``vm``'s vCPU ``vcpu`` on ``cpu`` and its handling until the next entry:
    VMX ``reason``; for MSR exits the MSR and direction; ``fastpath`` if the inner loop
    handled it; ``cost_ps`` from exit to re-entry (including the vPMU's work and perf calls,
    but not a mediated vPMU's context load, which runs just before the guest code that
    follows and has its own ``PmuContext`` record).
    ``value`` is what an MSR exit wrote or read (``kvm_msr``'s data), ``fault`` that the access
    got #GP; ``vector`` is the vector of the interrupt an EXTERNAL_INTERRUPT exit took (-1 if
    unknown or not an interrupt exit)."""

    vm: str
    vcpu: int
    reason: str
    msr: int = -1
    write: bool = False
    fastpath: bool = False
    cost_ps: int = 0
    value: int = 0
    fault: bool = False
    vector: int = -1


@dataclass(frozen=True, slots=True)
class GuestPmi(Record):
    """A PMI delivered to ``vm``'s vCPU ``vcpu`` at ``t_ps`` whose guest handler ended
    ``latency_ps`` later (every exit inside it included)."""

    vm: str
    vcpu: int
    latency_ps: int


@dataclass(frozen=True, slots=True)
class FailEntry(Record):
    """KVM_RUN of ``vm``'s vCPU ``vcpu`` returned KVM_EXIT_FAIL_ENTRY at ``t_ps``: the vCPU
    was loaded on ``cpu``, outside the VM's supported CPUs (arm64 with
    KVM_ARM_VCPU_PMU_V3_SET_PMU; ``reason`` is hardware_entry_failure_reason,
    KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED = 1, and ``cpu`` is fail_entry.cpu)."""

    vm: str
    vcpu: int
    reason: int = 1


@dataclass(frozen=True, slots=True)
class PmuContext(Record):
    """A mediated vPMU switched ``cpu``'s PMU: ``state`` "guest" is a load of ``vm``'s vCPU
    ``vcpu`` context (host exclude_guest events are off from ``t_ps``), "host" a put (they are
    back at ``t_ps + cost_ps``). ``cost_ps`` is the switch's time; ``why`` what caused it
    (the switch point, or "ipi" for a host event that preempted the guest)."""

    state: str
    vm: str
    vcpu: int
    cost_ps: int
    why: str = ""


@dataclass(frozen=True, slots=True)
class LbrContext(Record):
    """``vm``'s vCPU ``vcpu``'s LBR stack was saved from (``op`` "save") or restored to
    ("restore") ``cpu``'s LBR at a save point (``why``: "thread-switch" when perf switches the
    vCPU thread's LBR context, "vm-transition" at VM-exit / VM-entry): ``msrs`` MSR accesses
    taking ``cycles`` core cycles, ``cost_ps``."""

    op: str
    vm: str
    vcpu: int
    why: str
    msrs: int
    cycles: int
    cost_ps: int


@dataclass(frozen=True, slots=True)
class LbrOwner(Record):
    """Who holds ``cpu``'s LBR changed, or a claim on it was decided (``why``: "guest-in",
    "guest-out", "host-in", "host-out", "host-refused", "host-preempted", "guest-refused",
    "guest-reclaimed", "end"). ``held_by`` ("guest", "host" or "") held it since the CPU's
    previous record, ``holder`` holds it now; over that stretch the LBR recorded in guest
    mode for ``guest_ps`` and took ``guest_records`` records in guest mode and
    ``host_records`` in host mode. ``guest`` is the last guest on the CPU (its vCPU's
    ``vm/vcpuN``; "" before any)."""

    why: str
    held_by: str
    holder: str
    guest: str
    guest_ps: int
    guest_records: int
    host_records: int


@dataclass(frozen=True, slots=True)
class LbrRead(Record):
    """Host perf read ``cpu``'s LBR for a sample of event ``event``: ``records`` entries, of
    which ``guest_records`` were recorded in guest mode (by ``guest``, the last guest on the
    CPU); ``records`` is -1 when the sample carried no branch stack (a guest held the LBR:
    perf's vlbr_exclude_host)."""

    event: int
    records: int
    guest_records: int
    guest: str


@dataclass(frozen=True, slots=True)
class PerfOpen(Record):
    """A host perf event was opened (``cpu`` is its CPU; -1 for a task event) or refused:
    ``errno`` is "" when it was opened, else the error perf_event_open returned."""

    event: int
    name: str
    exclude_guest: bool
    task: str = ""
    errno: str = ""


@dataclass(frozen=True, slots=True)
class GuestSelectors(Record):
    """From ``t_ps`` on, the counters in ``enabled`` (a global-index mask) of ``cpu`` hold
    selectors ``vm``'s vCPU ``vcpu`` programmed, enabled, while the host runs; ``counting``
    is the subset the host's global control and filters let count host code (pollution)."""

    vm: str
    vcpu: int
    enabled: int
    counting: int


@dataclass(frozen=True, slots=True)
class TaskMigrate(Record):
    """The scheduler moved waiting task ``task`` from CPU ``src`` (cluster ``src_cluster``)
    to ``cpu`` (cluster ``cluster``): load balancing (docs/host.md, "The scheduler")."""

    task: str
    src: int
    src_cluster: int
    cluster: int


@dataclass(frozen=True, slots=True)
class VcpuLoad(Record):
    """arm64: ``vm``'s vCPU ``vcpu`` (thread ``task``) was loaded on ``cpu`` (kvm_arch_vcpu_load,
    after KVM's own load). ``pmu`` is the host PMU the vCPU's counters count on at ``cpu``
    (the VM's one; with fixed-counters-only, ``cpu``'s own; the VM's, or "" before one is
    chosen, when none covers ``cpu``) and ``counting`` whether one does (a perf event counts
    only on its PMU's CPUs).
    ``cycles`` is the guest's cycle counter (PMCCNTR_EL0) then, -1 while it has no perf event."""

    vm: str
    vcpu: int
    task: str
    pmu: str
    counting: bool
    cycles: int = -1


@dataclass(frozen=True, slots=True)
class PmuPartition(Record):
    """arm64, a partitioned PMU: ``vm``'s vCPU ``vcpu`` took (``state`` "guest", at its load)
    or gave back ("host", at its put) the counters ``reserved`` (a bitmap, the cycle counter
    at bit 31) on ``cpu``; ``cost_ps`` is the switch's time. At a load, ``moved`` host
    events had to leave the guest's counters (perf_pmu_resched_update), ``lost`` of them
    found no other counter, and ``pinned`` of the moved ones were pinned (the series'
    "Pinned host event squeezed out" warning)."""

    state: str
    vm: str
    vcpu: int
    reserved: int
    cost_ps: int
    moved: int = 0
    lost: int = 0
    pinned: int = 0
    why: str = ""
    """What caused it: "vcpu-load", "first-access" (the PMU became the guest's),
    "vcpu-put"."""


@dataclass(frozen=True, slots=True)
class VcpuPut(Record):
    """arm64: ``vm``'s vCPU ``vcpu`` (thread ``task``) was put on ``cpu`` (kvm_arch_vcpu_put,
    after KVM's own put); ``cycles`` as in ``VcpuLoad``."""

    vm: str
    vcpu: int
    task: str
    cycles: int = -1


Sink = Callable[[Record], None]
"""Something that takes each record as it is emitted (a metrics accumulator, an exporter)."""


class TraceNotKeptError(RuntimeError):
    """The records of a run that did not keep its trace were asked for."""


class Trace:
    """The sink every layer writes to: each record goes, as it is emitted, to the sinks
    subscribed (a run's metrics, a streaming exporter) and, if the trace is kept, to a list.

    Keeping is for what needs the whole run at once (an exporter that sorts or lays out all
    of it, the HTML report's timeline, tests comparing runs): a kept trace grows with the
    simulated time, so a scenario run keeps none unless asked (``vpmu.scenario.run.build``).
    A bare ``Trace()`` (a host built by hand, as the tests do) keeps everything.
    """

    def __init__(self, *, keep: bool = True) -> None:
        self._kept: list[Record] | None = [] if keep else None
        self._sinks: list[Sink] = []
        self.emit: Sink = self._bind()
        """Hand one record to every sink, and to the list if kept (an attribute rebound when
        the sinks change, so that emitting costs one call: every layer emits on its hot
        paths)."""

    def __repr__(self) -> str:
        kept = "not kept" if self._kept is None else f"records={len(self._kept)}"
        return f"Trace({kept}, sinks={len(self._sinks)})"

    @property
    def kept(self) -> bool:
        """Whether every record is kept (``records`` can be read)."""
        return self._kept is not None

    @property
    def records(self) -> list[Record]:
        """Every record, in emission order. That is time order within one CPU for instants,
        but a record of an interval (``VmExit``, ``GuestPmi``) is emitted when it ends, after
        the records inside it: sort by ``t_ps`` for a timeline. TraceNotKeptError if the
        trace is not kept."""
        if self._kept is None:
            raise TraceNotKeptError(
                "this trace keeps no records (a scenario run streams them into its metrics); "
                "build the run with keep_trace=True to read them, or read outcome.metrics")
        return self._kept

    def keep(self, on: bool) -> None:
        """Keep every record from now on, or stop keeping them (dropping those kept)."""
        if on and self._kept is None:
            self._kept = []
        elif not on:
            self._kept = None
        self.emit = self._bind()

    def subscribe(self, sink: Sink) -> None:
        """Hand every later record to ``sink`` too. Subscribe before the run: a sink does not
        get the records emitted before (a scenario's machine emits none while it is built)."""
        self._sinks.append(sink)
        self.emit = self._bind()

    def _bind(self) -> Sink:
        """The cheapest callable that reaches every sink and the list."""
        targets = [*self._sinks, *([self._kept.append] if self._kept is not None else [])]
        if len(targets) == 1:
            return targets[0]
        if not targets:
            return _drop

        def fan_out(record: Record) -> None:
            for target in targets:
                target(record)
        return fan_out

    def repeat(self, block: Sequence[Record], times: int, shift_ps: int) -> None:
        """Emit ``block`` ``times`` more times, the k-th copy ``k * shift_ps`` later: what a
        fast-forward over a repeating period (``vpmu.machine.ffwd``) emits for the periods it
        skips. A sink with a ``repeat`` method of the same signature takes them in bulk; any
        other sink, and the kept list, gets every copy."""
        if times <= 0 or not block:
            return
        for sink in self._sinks:
            bulk = getattr(sink, "repeat", None)
            if bulk is not None:
                bulk(block, times, shift_ps)
            else:
                for record in shifted(block, times, shift_ps):
                    sink(record)
        if self._kept is not None:
            self._kept.extend(shifted(block, times, shift_ps))

    def of(self, kind: type[Record]) -> list[Record]:
        """The records of one kind, in order (of a kept trace)."""
        return [r for r in self.records if type(r) is kind]


def shifted(block: Sequence[Record], times: int, shift_ps: int) -> Iterator[Record]:
    """``block``'s records ``times`` times, the k-th copy (from 1) ``k * shift_ps`` later,
    built field by field (the records are frozen)."""
    rows = [(type(r), r.t_ps, [getattr(r, f.name) for f in fields(r)][1:]) for r in block]
    for k in range(1, times + 1):
        dt = k * shift_ps
        for cls, t_ps, rest in rows:
            yield cls(t_ps + dt, *rest)


def _drop(record: Record) -> None:
    """Where a record goes when nothing wants it."""
