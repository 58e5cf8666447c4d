"""From a KVM trace capture back to what each vCPU's guest did with its PMU.

A real capture has no PMU tracepoint (mainline has no ``kvm:kvm_pmu*`` event; arch/x86/kvm/trace.h
has ``kvm_exit`` and ``kvm_msr``): the guest's PMU
programming shows only as ``kvm_msr`` lines on PMU MSRs and as exits. Per vCPU thread this
recovers what the guest's ``perf`` asked for and how often it was interrupted:

- the events: each general-purpose selector written with EN (event, umask, USR, OS) and each
  fixed counter enabled in FIXED_CTR_CTRL, named as perf names them (generic name or raw
  ``rUUEE``);
- the sampling periods: a counter write of ``v`` arms a period of ``2^48 - v`` (perf writes
  ``-left & cntval_mask``); one period everywhere means ``-c``, varying ones frequency mode;
- the PMIs: a PMI handler disables the PMU (GLOBAL_CTRL = 0), reads a non-zero GLOBAL_STATUS,
  and re-enables it; the status bits say which counters overflowed. When the PMU MSRs do not
  exit (a mediated vPMU), a PMI is an exit on the mediated PMI vector 0xF5;
- the runs of a frequency-mode ``perf record``: each starts its events at period 1;
- the time the guest ran: the wall time minus the exit-to-entry time of its exits.

Only Intel's architectural PMU (and the mediated vector) is decoded; an AMD capture still gets
its exit counts, but no programming (stated in the replay's findings).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE
from vpmu.arch.x86.msrs import kernel_msr_name
from vpmu.guest.linux.event_map import (
    INTEL_FIXED_EVENTS,
    INTEL_GENERIC_ENCODINGS,
    INTEL_REF_CYCLES,
)
from vpmu.trace.parse import Capture, KvmEntry, KvmEvent, KvmExit, KvmMsr

COUNTER_WIDTH = 48
"""perf's ``cntval_mask`` on every Intel part the presets model."""
GP_COUNTERS = 8
FIXED_COUNTERS = 4

_BY_ENCODING = {enc: name for name, enc in INTEL_GENERIC_ENCODINGS.items()}
FIXED_NAMES = {idx: _BY_ENCODING[enc] for enc, idx in INTEL_FIXED_EVENTS.items()}
"""perf's generic event on each fixed counter (intel/core.c FIXED_EVENT_CONSTRAINT)."""
UNMODELLED_FIXED = {3: "TOPDOWN.SLOTS, perf's slots"}
"""Fixed counters a guest may enable that the guest model's perf has no event for."""
GENERIC_NAMES = {enc: name for enc, name in _BY_ENCODING.items() if enc != INTEL_REF_CYCLES}
"""A selector's ``umask << 8 | event`` -> perf's generic name: the guest's Intel event map
inverted, without ref-cycles' pseudo encoding (it is never a GP selector's event)."""


@dataclass
class CounterUse:
    """One counter the guest programmed: its perf event name and the periods it armed."""

    index: int
    """Global index: 0-7 GP, 32+ fixed."""
    event: str
    usr: bool = True
    os: bool = True
    periods: list[int] = field(default_factory=list)
    overflows: int = 0
    starts: int = 0
    """Arms at frequency mode's first period outside a PMI handler (a run starting)."""


@dataclass
class VcpuProfile:
    """What one vCPU thread of a capture did."""

    pid: int
    comm: str
    vcpu: int
    cpus: Counter[int] = field(default_factory=Counter)
    start_ps: int = -1
    end_ps: int = 0
    exit_ps: int = 0
    """Total exit-to-entry time."""
    exits: Counter[str] = field(default_factory=Counter)
    msrs: Counter[str] = field(default_factory=Counter)
    counters: dict[int, CounterUse] = field(default_factory=dict)
    pmis: list[int] = field(default_factory=list)
    pmu_accesses: int = 0
    line: int = 0
    """The capture line that first named this thread's vCPU (else its first line), for
    errors about what the thread implies."""
    unmodelled: set[str] = field(default_factory=set)
    """Counters the guest enabled that the model cannot run (left out of the scenario)."""
    handler_ps: list[int] = field(default_factory=list)
    """Per PMI seen through its MSR exits: from the handler's PMU disable (GLOBAL_CTRL = 0)
    to the entry after its LVTPC write (the last exit of intel_pmu_handle_irq)."""
    handler_guest_ps: int = 0
    """Guest time inside those handlers (their length less their exits)."""

    @property
    def guest_ps(self) -> int:
        """The time the guest ran (wall time minus exits)."""
        return max(self.end_ps - self.start_ps - self.exit_ps, 0)

    @property
    def workload_ps(self) -> int:
        """The guest time outside its PMI handlers: the workload's own run time."""
        return max(self.guest_ps - self.handler_guest_ps, 0)

    @property
    def runs(self) -> int:
        """Frequency-mode runs: every event restarts at period 1 together, so the counter
        with the fewest such restarts counts the runs (a tick's re-estimate can also arm a
        tiny period on one of them)."""
        return min((c.starts for c in self.counters.values() if c.periods), default=0)

    @property
    def cpu(self) -> int:
        """The pCPU the thread ran on most."""
        return self.cpus.most_common(1)[0][0] if self.cpus else 0

    @property
    def sampling(self) -> bool:
        """The guest sampled and its periods show: it took PMIs and armed periods."""
        return bool(self.pmis) and any(c.periods for c in self.counters.values())

    def mode(self) -> tuple[str, int]:
        """("period", P) for ``perf record -c P``: every counter's longest armed period is P
        and most re-arms are within 10% of it (a re-arm after an overshoot is a little
        shorter); else ("freq", PMIs per second per counter, the rate the guest reached)."""
        armed = [c.periods for c in self.counters.values() if c.periods]
        tops = {max(ps) for ps in armed}
        if len(tops) == 1 and (top := tops.pop()) > 2:
            near = sum(p >= top * 0.9 for ps in armed for p in ps)
            if near >= 0.8 * sum(len(ps) for ps in armed):
                return "period", top
        seconds = self.guest_ps / 1e12 or 1.0
        rates = [c.overflows / seconds for c in self.counters.values() if c.overflows]
        return "freq", round(statistics.median(rates)) if rates else 0


def _period(value: int) -> int:
    width = COUNTER_WIDTH if value < 1 << COUNTER_WIDTH else 64
    return -value % (1 << width)


def _counter_index(index: int) -> int | None:
    """Global counter index of a counter MSR (legacy or full-width GP, fixed)."""
    for base in (msrs.IA32_PMC0, msrs.IA32_A_PMC0):
        if base <= index < base + GP_COUNTERS:
            return index - base
    if msrs.IA32_FIXED_CTR0 <= index < msrs.IA32_FIXED_CTR0 + FIXED_COUNTERS:
        return FIXED_IDX_BASE + index - msrs.IA32_FIXED_CTR0
    return None


def gp_event_name(evtsel: int) -> str:
    """perf's name of a selector's event: the generic name, else raw ``rUUEE``."""
    code = evtsel & 0xFFFF
    return GENERIC_NAMES.get(code, f"r{code:04x}")


class _Decoder:
    """Walks one thread's events in order, keeping the state a PMI handler leaves."""

    def __init__(self, profile: VcpuProfile) -> None:
        self.p = profile
        self.in_pmi = False
        self.exit_t: int | None = None
        self.last_exit = 0
        self.disable_t: int | None = None
        self.handler_t: int | None = None
        self.handler_end = False
        self.handler_exit0 = 0
        """Exit time before the handler's first exit (to subtract its exits)."""
        self.disable_exit0 = 0
        self.pending: dict[int, int] = {}
        """Counter values written before their counter was enabled (perf arms the period,
        then enables the selector)."""

    def exit(self, e: KvmExit) -> None:
        self.p.exits[e.reason] += 1
        self.exit_t = self.last_exit = e.t_ps
        if e.reason == "EXTERNAL_INTERRUPT" and e.intr_info & 0xFF == \
                msrs.PERF_GUEST_MEDIATED_PMI_VECTOR and e.intr_info >> 31:
            self.p.pmis.append(e.t_ps)

    def entry(self, e: KvmEntry) -> None:
        if self.exit_t is not None:
            self.p.exit_ps += e.t_ps - self.exit_t
            self.exit_t = None
        if self.handler_end and self.handler_t is not None:
            length = e.t_ps - self.handler_t
            self.p.handler_ps.append(length)
            self.p.handler_guest_ps += max(length - (self.p.exit_ps - self.handler_exit0), 0)
            self.handler_t, self.handler_end = None, False

    def msr(self, e: KvmMsr) -> None:
        name = kernel_msr_name(e.index)
        self.p.msrs[f"msr_{'write' if e.write else 'read'}, {name}"] += 1
        if e.gp:
            return
        if e.write:
            self._write(e.index, e.value, e.t_ps)
        elif e.index == msrs.IA32_PERF_GLOBAL_STATUS:
            self._status(e.value, e.t_ps)

    def _status(self, status: int, t_ps: int) -> None:
        self.p.pmu_accesses += 1
        if not status:
            return
        if not self.in_pmi:
            self.in_pmi = True
            self.handler_t = self.disable_t if self.disable_t is not None else t_ps
            self.p.pmis.append(self.handler_t)
            self.handler_exit0 = self.disable_exit0 if self.disable_t is not None \
                else self.p.exit_ps
        for idx, use in self.p.counters.items():
            if status >> idx & 1:
                use.overflows += 1

    def _write(self, index: int, value: int, t_ps: int) -> None:
        if index == msrs.X2APIC_LVTPC:
            self.handler_end = self.handler_t is not None
            return
        if index == msrs.IA32_PERF_GLOBAL_CTRL:
            self.p.pmu_accesses += 1
            self.disable_t = None if value else self.last_exit or t_ps
            self.disable_exit0 = self.p.exit_ps
            if value:
                self.in_pmi = False
            return
        if index == msrs.IA32_FIXED_CTR_CTRL:
            self.p.pmu_accesses += 1
            self._fixed_ctrl(value)
            return
        if msrs.IA32_PERFEVTSEL0 <= index < msrs.IA32_PERFEVTSEL0 + GP_COUNTERS:
            self.p.pmu_accesses += 1
            if value & msrs.EVTSEL_EN:
                self._use(index - msrs.IA32_PERFEVTSEL0, gp_event_name(value),
                          bool(value & msrs.EVTSEL_USR), bool(value & msrs.EVTSEL_OS))
            return
        idx = _counter_index(index)
        if idx is None:
            return
        self.p.pmu_accesses += 1
        use = self.p.counters.get(idx)
        if use is None:  # not (yet) enabled: a probe such as check_hw_exists, or a pre-arm
            self.pending[idx] = value
            return
        self._armed(use, value)

    def _armed(self, use: CounterUse, value: int) -> None:
        period = _period(value)
        if period <= 2 and not self.in_pmi:  # frequency mode's first period (1, armed as 2)
            use.starts += 1
        use.periods.append(period)

    def _fixed_ctrl(self, value: int) -> None:
        for i in range(FIXED_COUNTERS):
            bits = value >> 4 * i & 0xF
            if not bits & 0x3:
                continue
            if i not in FIXED_NAMES:  # fixed counter 3, TOPDOWN.SLOTS: perf's `slots`
                self.p.unmodelled.add(f"fixed counter {i} ({UNMODELLED_FIXED.get(i, '?')})")
                continue
            self._use(FIXED_IDX_BASE + i, FIXED_NAMES[i], bool(bits & 0x2), bool(bits & 0x1))

    def _use(self, idx: int, event: str, usr: bool = True, os: bool = True) -> CounterUse:
        use = self.p.counters.get(idx)
        if use is None or use.event != event:
            use = self.p.counters[idx] = CounterUse(idx, event, usr, os)
        if idx in self.pending:
            self._armed(use, self.pending.pop(idx))
        return use


def reconstruct(events: Capture | Iterable[KvmEvent]) -> list[VcpuProfile]:
    """One profile per vCPU thread (pid) of the capture, in order of first appearance; the
    events are read once, in order, so a stream (``CaptureReader.events``) will do.

    A ``kvm_msr`` line belongs to the thread that printed it; its vCPU is the one that
    thread's ``kvm_exit``/``kvm_entry`` lines name.
    """
    profiles: dict[int, VcpuProfile] = {}
    decoders: dict[int, _Decoder] = {}
    for e in events.events if isinstance(events, Capture) else events:
        p = profiles.get(e.pid)
        if p is None:
            p = profiles[e.pid] = VcpuProfile(e.pid, e.comm, -1, line=e.line)
            decoders[e.pid] = _Decoder(p)
        if isinstance(e, KvmExit | KvmEntry) and e.vcpu is not None:
            if p.vcpu != e.vcpu:
                p.line = e.line
            p.vcpu = e.vcpu
        p.cpus[e.cpu] += 1
        p.start_ps = e.t_ps if p.start_ps < 0 else p.start_ps
        p.end_ps = max(p.end_ps, e.t_ps)
        d = decoders[e.pid]
        if isinstance(e, KvmExit):
            d.exit(e)
        elif isinstance(e, KvmEntry):
            d.entry(e)
        elif isinstance(e, KvmMsr):
            d.msr(e)
    out = list(profiles.values())
    for i, p in enumerate(out):
        p.vcpu = i if p.vcpu < 0 else p.vcpu
    return out
