"""Trace records: frozen facts every layer emits, the only input of ``vpmu.metrics``.

A record says what happened, when (``t_ps``) and where (``cpu``; -1 when no CPU applies).
Records are plain values: comparing two runs' record lists is how determinism is tested
("same seed, same trace").
"""

from __future__ import annotations

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
    ``vm/vcpuN`` whose context left it there (a leak when non-zero, seed 003)."""


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


class Trace:
    """An append-only list of records (the sink every layer writes to).

    A fast-forward over a period that repeats (``vpmu.machine.ffwd``) appends that period's
    records ``times`` more times, shifted in time, with :meth:`repeat`; they are stored once
    and expanded when :attr:`records` is first read, so skipping an hour of idle ticks does
    not build millions of records unless something reads them.
    """

    def __init__(self) -> None:
        self._records: list[Record] = []
        """The records emitted since the last :meth:`repeat` (all of them if none)."""
        self._parts: list[list[Record] | _Repeat] = [self._records]

    def __repr__(self) -> str:
        return f"Trace(records={len(self)})"

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)

    @property
    def records(self) -> list[Record]:
        """Every record, in emission order. That is time order within one CPU for instants,
        but a record of an interval (``VmExit``, ``GuestPmi``) is emitted when it ends, after
        the records inside it: sort by ``t_ps`` for a timeline."""
        if len(self._parts) > 1:
            flat: list[Record] = []
            for part in self._parts:
                flat.extend(part.expand() if isinstance(part, _Repeat) else part)
            self._records = flat
            self._parts = [flat]
        return self._records

    def emit(self, record: Record) -> None:
        """Append one record."""
        self._records.append(record)

    @property
    def tail(self) -> list[Record]:
        """The records emitted since the last :meth:`repeat` (never expands one)."""
        return self._records

    def repeat(self, block: list[Record], times: int, shift_ps: int) -> None:
        """Append ``block`` ``times`` more times, the k-th copy ``k * shift_ps`` later."""
        if times <= 0 or not block:
            return
        self._parts.append(_Repeat(tuple(block), times, shift_ps))
        self._records = []
        self._parts.append(self._records)

    def of(self, kind: type[Record]) -> list[Record]:
        """The records of one kind, in order."""
        return [r for r in self.records if type(r) is kind]


class _Repeat:
    """``block`` repeated ``times`` times, the k-th copy (from 1) shifted by ``k * shift_ps``."""

    def __init__(self, block: tuple[Record, ...], times: int, shift_ps: int) -> None:
        self.block, self.times, self.shift_ps = block, times, shift_ps

    def __len__(self) -> int:
        return len(self.block) * self.times

    def expand(self) -> list[Record]:
        """The copies, built field by field (the records are frozen)."""
        rows = [(type(r), r.t_ps, [getattr(r, f.name) for f in fields(r)][1:])
                for r in self.block]
        out: list[Record] = []
        append = out.append
        for k in range(1, self.times + 1):
            dt = k * self.shift_ps
            for cls, t_ps, rest in rows:
                append(cls(t_ps + dt, *rest))
        return out
