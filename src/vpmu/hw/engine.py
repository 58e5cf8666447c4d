"""The lazy-counting engine every architecture's hardware PMU is built on.

A counter is not advanced event by event: the CPU executes a *segment* (a workload stream over
a known duration, ``vpmu.hw.counting``), and each counter that counts gets its segment total
once, when what it counts changes. Its value at any instant is interpolated (``sync``), the
next wrap of any counting counter is predicted and a timer is set for it, and several register
writes can be batched into one recomputation. What counts, and what an overflow does, are the
architecture's rules: a subclass supplies ``count_config`` (the counting rule, with the PMI bit),
``_mark_overflow`` (a status bit) and ``_on_pmi_raised`` (a freeze), and says with
``guest_filter_sensitive`` whether entering or leaving guest mode changes what counts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from mypy_extensions import mypyc_attr

from vpmu.arch import events as ev
from vpmu.arch.presets import CpuPreset
from vpmu.arch.regs import set_bits
from vpmu.hw.branches import BranchRecorder
from vpmu.hw.counting import (
    RING_KERNEL,
    Qualifiers,
    Segment,
    count_at,
    qualified_total,
    time_to_reach,
)
from vpmu.sim import Environment, Handle
from vpmu.workloads.streams import Stream


@dataclass(slots=True)
class Counter:
    """One hardware counter's lazily synced state."""

    gidx: int
    """The counter's index in its architecture's global counter space (x86: GP i is i, fixed i
    is 32 + i; arm64: event counter i is i, the cycle counter 31)."""
    width: int
    value: int = 0
    synced_ps: int = 0
    total: int = 0
    """Events this counter counts over the current segment under its current configuration."""
    pmi: bool = False
    """While it counts: an overflow raises a PMI (x86: INT, or the fixed counter's PMI bit).
    Only a counting counter can overflow, so the bit of one that does not count is not kept."""
    origin: str = ""
    """Who produced the value: the PMU's ``writer`` at the last write ("" for the host), or
    the tag a hypervisor gives the guest values it loads, so a later read can tell a leak."""
    ovf: int = 0
    """Bits at whose carry the counter overflows, if fewer than ``width`` (Arm PMUv3p5's
    64-bit event counters overflow at 32 bits unless PMCR_EL0.LP); 0: at ``width``."""


@dataclass(frozen=True, slots=True)
class CountConfig:
    """What a counter counts while enabled: keys, rings, qualifiers, PMI on overflow."""

    keys: tuple[str, ...]
    rings: tuple[int, ...]
    qualifiers: Qualifiers
    pmi: bool


ALL = -1
"""Every counter, as a mask of global indices (every bit set)."""


class Batch:
    """What ``CountingPmu.batch()`` returns: a context manager that defers the PMU's
    recomputation to the end of the outermost batch. A class with ``__enter__`` and
    ``__exit__`` rather than a ``contextlib.contextmanager`` generator: a batch is on the hot
    path (every host counter programming), and the generator costs a generator, a wrapper
    object and several Python calls per use; one ``Batch`` per PMU costs none of that."""

    __slots__ = ("_pmu",)

    def __init__(self, pmu: CountingPmu) -> None:
        self._pmu = pmu

    def __enter__(self) -> None:
        self._pmu._deferred += 1

    def __exit__(self, *_exc: object) -> None:
        """Ends the batch whether or not its body raised (as ``finally`` would); never
        swallows the exception."""
        self._pmu._end_batch()


@mypyc_attr(allow_interpreted_subclasses=True)  # another architecture's PMU may be pure Python
class CountingPmu(ABC):
    """One logical CPU's counters, counted lazily. ``on_pmi`` is called when an overflow
    generates a PMI."""

    guest_filter_sensitive = False
    """Counters filter host and guest execution themselves (AMD HostOnly/GuestOnly), so
    entering or leaving guest mode changes what counts."""

    def __init__(self, preset: CpuPreset, env: Environment,
                 on_pmi: Callable[[], None]) -> None:
        self.preset = preset
        """The CPU preset this PMU belongs to (clocks, pipeline width)."""
        self.env = env
        self.on_pmi = on_pmi
        self.counters: dict[int, Counter] = {}
        """Counters by global index."""
        self.segment: Segment | None = None
        """What the CPU is executing now (None: halted or between streams)."""
        self.cpl = RING_KERNEL
        self.guest = False
        """The CPU runs guest code (between VM-entry and VM-exit)."""
        self.writer = ""
        """Who executes register writes now ("" for the host; a vCPU's name while its guest
        instructions run on the hardware): the origin of the counter values written."""
        self._timer: Handle | None = None
        self._timer_ps: int | None = None
        self._deferred = 0
        self._dirty = 0
        """Counters whose rule a deferred write concerned (``batch``)."""
        self._batch = Batch(self)
        self._totals: dict[tuple[CountConfig, int, int], tuple[int, Stream]] = {}
        self._configs: dict[int, tuple[Counter, CountConfig]] = {}
        """The counters that count, by global index, with what they count (``reconfigure``).
        Empty: nothing counts, so nothing is active and no overflow timer is set."""
        self._active: list[Counter] = []
        """Counters with events to count in the current segment: the only ones sync visits."""
        self.recorder: BranchRecorder | None = None
        """The branch record stack (an LBR), if the architecture has one."""
        self.recording = False
        """The recorder records: it is synced before the stream, privilege level or guest
        mode changes (the architecture sets this with its enable)."""

    # -- the architecture's rules --------------------------------------------------------
    @abstractmethod
    def count_config(self, c: Counter) -> CountConfig | None:
        """What ``c`` counts now, or None if it does not count."""

    @abstractmethod
    def _mark_overflow(self, c: Counter) -> None:
        """Record that ``c`` wrapped (its overflow status bit)."""

    @abstractmethod
    def _on_pmi_raised(self) -> None:
        """What the PMU does itself when it raises a PMI (a freeze, or nothing)."""

    @property
    def counting(self) -> bool:
        """Some counter counts (executing a stream can change a counter or its overflow)."""
        return bool(self._configs)

    @property
    def observed(self) -> bool:
        """Executing a stream changes this PMU's state: a counter counts or branches are
        recorded."""
        return bool(self._configs) or self.recording

    def _sync_recorder(self) -> None:
        """Bring the recorder up to now (callers check ``recording`` first)."""
        if self.recorder is not None:
            self.recorder.sync()

    # -- counting ------------------------------------------------------------------------
    def set_segment(self, segment: Segment | None) -> None:
        """The CPU starts (or stops) executing a stream: only the totals change (none
        while nothing counts: no counter to sync, no overflow to predict)."""
        if self.recording:
            self._sync_recorder()
        if not self._configs:
            self.segment = segment
            return
        self.sync()
        self.segment = segment
        self._retotal()

    def set_guest(self, guest: bool) -> None:
        """The CPU enters or leaves guest mode: what counts changes only where the counters
        have a host/guest filter of their own (``guest_filter_sensitive``)."""
        if self.recording:
            self._sync_recorder()
        self.sync()
        self.guest = guest
        if self.guest_filter_sensitive:
            self.reconfigure()

    def set_cpl(self, cpl: int) -> None:
        """The CPU changes privilege level (affects scripted streams and the filters)."""
        if self.recording:
            self._sync_recorder()
        if not self._configs:
            self.cpl = cpl
            return
        self.sync()
        self.cpl = cpl
        self._retotal()  # the filters do not change; the totals may

    def sync(self) -> None:
        """Bring every counter up to now; handle any overflow that happened on the way."""
        now = self.env.now_ps
        overflowed: list[Counter] = []
        for c in self._active:
            if self._advance(c, now):
                overflowed.append(c)
        if overflowed:
            self._overflow(overflowed)

    def _advance(self, c: Counter, now: int) -> bool:
        seg, start = self.segment, c.synced_ps
        c.synced_ps = now
        if seg is None or c.total == 0 or now <= start:
            return False
        a, b = max(start - seg.start_ps, 0), now - seg.start_ps
        delta = count_at(c.total, seg.duration_ps, b) - count_at(c.total, seg.duration_ps, a)
        limit = 1 << c.width
        if c.ovf:
            low = 1 << c.ovf
            wrapped = c.value % low + delta >= low
            c.value = (c.value + delta) % limit
            return wrapped
        c.value += delta
        if c.value < limit:
            return False
        c.value %= limit
        return True

    def batch(self) -> Batch:
        """Several register writes as one change (the host kernel programming a counter):
        what counts is recomputed once, at the end, for the counters the writes concerned.
        Counters are synced before each write. ``with pmu.batch(): ...``; batches nest."""
        return self._batch

    def _end_batch(self) -> None:
        """Leave a batch; leaving the outermost one recomputes what its writes changed."""
        self._deferred -= 1
        if not self._deferred:
            which, self._dirty = self._dirty, 0
            if which:
                self.reconfigure(which)
            else:
                self._predict()  # counter values may have been written

    def reconfigure(self, which: int = ALL) -> None:
        """Recompute what the counters in ``which`` (a mask of global indices; all by
        default) count after a register, privilege or freeze change, then every counting
        counter's segment total and the next overflow. Counters must be synced first."""
        if self._deferred:
            self._dirty |= which
            return
        if which == ALL:
            self._configs = {}
            for c in self.counters.values():
                self._configure(c)
        else:
            for gidx in set_bits(which):
                counter = self.counters.get(gidx)
                if counter is not None:
                    self._configs.pop(gidx, None)
                    self._configure(counter)
        self._retotal()

    def repredict(self) -> None:
        """A counter's value changed, not what anything counts: only the next overflow
        moves (counters synced first)."""
        if not self._deferred:
            self._predict()

    def _configure(self, c: Counter) -> None:
        cfg = self.count_config(c)
        if cfg is None:
            c.pmi = False
            c.total = 0
        else:
            c.pmi = cfg.pmi
            self._configs[c.gidx] = (c, cfg)

    def _retotal(self) -> None:
        """Recompute the segment totals of the counters that count; re-predict. A counter
        that does not count keeps a total of 0 from ``reconfigure`` and is never advanced.

        Every counter is synced to now when this runs, so each restarts its delta here.
        """
        now = self.env.now_ps
        active = []
        for c, cfg in self._configs.values():
            c.total = total = self._segment_total(cfg)
            c.synced_ps = now
            if total:
                active.append(c)
        self._active = active
        self._predict()

    def _segment_total(self, cfg: CountConfig) -> int:
        seg = self.segment
        if seg is None or not cfg.keys:
            return 0
        key = (cfg, id(seg.stream), seg.cpl)
        hit = self._totals.get(key)
        if hit is not None and hit[1] is seg.stream:
            return hit[0]
        total = self._compute_total(seg, cfg)
        if len(self._totals) > 4096:
            self._totals.clear()
        self._totals[key] = (total, seg.stream)  # the stream is kept: its id stays unique
        return total

    def _compute_total(self, seg: Segment, cfg: CountConfig) -> int:
        total = 0
        for ring in cfg.rings:
            events = sum(seg.ring_share(self._key_total(seg, k), ring) for k in cfg.keys)
            cycles = seg.ring_share(seg.stream.cycles, ring)
            total += qualified_total(events, cycles, cfg.qualifiers)
        return total

    def _key_total(self, seg: Segment, key: str) -> int:
        """A key's total in a segment, deriving the CPU-dependent ones from cycles."""
        stream, p = seg.stream, self.preset
        if key in stream.counts:
            return stream.get(key)
        if key == ev.REF_CYCLES:
            return int(Fraction(stream.cycles * p.tsc_mhz, p.core_mhz))
        if key == ev.SLOTS:
            return stream.cycles * p.pipeline_width
        if key == ev.TOPDOWN_RETIRING:
            return stream.get(ev.INSTRUCTIONS)  # assumption: one uop per instruction
        return 0

    # -- overflow ------------------------------------------------------------------------
    def _predict(self) -> None:
        """Schedule a sync at the earliest instant a counting counter wraps."""
        seg, now = self.segment, self.env.now_ps
        best: int | None = None
        if seg is not None:
            for c in self._active:
                base = count_at(c.total, seg.duration_ps, now - seg.start_ps)
                room = (1 << c.width) - c.value if not c.ovf else \
                    (1 << c.ovf) - c.value % (1 << c.ovf)
                dt = time_to_reach(c.total, seg.duration_ps, base + room)
                if dt is not None:
                    t = max(seg.start_ps + dt, now)
                    best = t if best is None else min(best, t)
        if best == self._timer_ps:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_ps = best
        if best is not None:
            self._timer = self.env.schedule(self._on_timer, delay_ps=best - now)

    def _on_timer(self) -> None:
        self._timer, self._timer_ps = None, None
        self.sync()
        self._predict()

    def _overflow(self, overflowed: list[Counter]) -> None:
        """Mark each overflow; a PMI if any overflowed counter asks for one, after what the
        architecture does on a PMI (``_on_pmi_raised``: a freeze)."""
        for c in overflowed:
            self._mark_overflow(c)
        if any(c.pmi for c in overflowed):
            self._on_pmi_raised()
            self.reconfigure()
            self.on_pmi()

