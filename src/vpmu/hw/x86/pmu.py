"""The x86 hardware PMU: Intel architectural PMU v1-v5 and AMD K7/F15H/PerfMonV2.

Register semantics come from the declarations in ``vpmu.arch.x86.msrs`` through
``vpmu.arch.regs.apply_write``; this module adds what no declaration can say: which counters
count right now, how far they have counted (lazily, ``vpmu.hw.counting``), when the next one
overflows, and what an overflow does (status bit, PMI, freeze).

Counting rule (SDM 20.2, APM 13.2): a counter counts iff it is locally enabled (EN, or a fixed
counter's OS/USR field), its privilege filter matches the current ring, on Intel v2+ / AMD
PerfMonV2 its GLOBAL_CTRL bit is set, and (v4+) GLOBAL_STATUS.CTR_FRZ is clear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

from vpmu.arch.faults import Fault
from vpmu.arch.presets import CpuPreset
from vpmu.arch.regs import RegisterSpec, Role, apply_write, bits, by_address, read_value
from vpmu.arch.x86 import events as ev
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, RDPMC_FAST, RDPMC_FIXED
from vpmu.hw.counting import (
    RING_KERNEL,
    Segment,
    count_at,
    qualified_total,
    time_to_reach,
)
from vpmu.hw.x86.selectors import CountConfig, GpSelect, SelectorDecoder
from vpmu.sim import Environment, Handle
from vpmu.workloads.streams import Stream


@dataclass(slots=True)
class Counter:
    """One hardware counter's lazily synced state."""

    gidx: int
    """Global counter index: GP i is i, fixed i is 32 + i."""
    width: int
    value: int = 0
    synced_ps: int = 0
    total: int = 0
    """Events this counter counts over the current segment under its current configuration."""
    pmi: bool = False
    """Overflow raises a PMI (INT, or the fixed counter's PMI bit)."""
    origin: str = ""
    """Who produced the value: the PMU's ``writer`` at the last write ("" for the host), or
    the tag a hypervisor gives the guest values it loads, so a later read can tell a leak."""

    @property
    def is_fixed(self) -> bool:
        """A fixed-function counter."""
        return self.gidx >= FIXED_IDX_BASE


class X86Pmu:
    """One logical CPU's PMU. ``on_pmi`` is called when an overflow generates a PMI."""

    def __init__(self, preset: CpuPreset, env: Environment,
                 on_pmi: Callable[[], None]) -> None:
        self.preset = preset
        """The CPU preset this PMU belongs to (clocks, pipeline width)."""
        self.caps = preset.caps
        """What this PMU implements."""
        self.env = env
        self.on_pmi = on_pmi
        self.specs: dict[int, RegisterSpec] = by_address(msrs.pmu_msrs(self.caps))
        """Every implemented MSR by address; an address not here takes #GP."""
        self._decode = SelectorDecoder(self.caps, self.specs.values())
        self.regs: dict[str, int] = {}
        """Plain storage by key (controls, status, capabilities, LBR)."""
        self.counters: dict[int, Counter] = {}
        """Counters by global index (GP i at i, fixed i at 32 + i)."""
        self.sels: dict[int, int] = {}
        """General-purpose event selectors by counter index."""
        self._init_storage()
        self.segment: Segment | None = None
        """What the CPU is executing now (None: halted or between streams)."""
        self.cpl = RING_KERNEL
        self.svme = False
        """AMD EFER.SVME: decides HostOnly/GuestOnly counting."""
        self.guest = False
        """The CPU runs guest code (between VM-entry and VM-exit)."""
        self.writer = ""
        """Who executes register writes now ("" for the host; a vCPU's name while its guest
        instructions run on the hardware): the origin of the counter values written."""
        self._timer: Handle | None = None
        self._timer_ps: int | None = None
        self._global_gated = self.caps.has_global_ctrl
        self._streamlined_freeze = self.caps.is_intel and self.caps.version >= 4
        self._deferred = 0
        self._totals: dict[tuple[CountConfig, int, int], tuple[int, Stream]] = {}
        self._configs: list[tuple[Counter, CountConfig | None]] = []
        self._active: list[Counter] = []
        """Counters with events to count in the current segment: the only ones sync visits."""
        self.reconfigure()

    def __repr__(self) -> str:
        return f"X86Pmu(preset={self.preset.name!r})"

    def _init_storage(self) -> None:
        for spec in self.specs.values():
            if spec.role is Role.COUNTER:
                self.counters.setdefault(spec.index, Counter(spec.index, spec.fields[0].width))
            elif spec.role is Role.SELECTOR:
                self.sels.setdefault(spec.index, spec.reset)
            elif not spec.target:
                self.regs.setdefault(spec.storage, spec.reset)
        self.regs.setdefault("GLOBAL_STATUS", 0)
        self.regs.setdefault("GLOBAL_CTRL", 0)

    # -- register access -----------------------------------------------------------------
    def rdmsr(self, addr: int) -> int | Fault:
        """RDMSR at CPL 0: the register's value, or #GP if it is not implemented."""
        spec = self.specs.get(addr)
        if spec is None:
            return Fault.GP
        self.sync()
        return read_value(spec, self._stored(spec))

    def wrmsr_faults(self, addr: int, value: int) -> bool:
        """Whether WRMSR(addr, value) at CPL 0 takes #GP (no side effect)."""
        spec = self.specs.get(addr)
        return spec is None or apply_write(spec, self._stored(spec), value).fault

    def wrmsr(self, addr: int, value: int) -> Fault | None:
        """WRMSR at CPL 0: apply the declared semantics, then recompute what counts."""
        spec = self.specs.get(addr)
        if spec is None:
            return Fault.GP
        self.sync()
        result = apply_write(spec, self._stored(spec), value)
        if result.fault:
            return Fault.GP
        if result.store is not None:
            self._store(spec, result.store)
        if spec.target:
            target = self.regs[spec.target]
            self.regs[spec.target] = (target & ~result.clear) | result.set
        self.reconfigure()
        return None

    def _stored(self, spec: RegisterSpec) -> int:
        if spec.role is Role.COUNTER:
            return self.counters[spec.index].value
        if spec.role is Role.SELECTOR:
            return self.sels[spec.index]
        return self.regs.get(spec.storage, 0)

    def _store(self, spec: RegisterSpec, value: int) -> None:
        if spec.role is Role.COUNTER:
            counter = self.counters[spec.index]
            counter.value = value & bits(counter.width - 1, 0)
            counter.origin = self.writer
        elif spec.role is Role.SELECTOR:
            self.sels[spec.index] = value
        else:
            self.regs[spec.storage] = value

    def rdpmc(self, ecx: int) -> int | Fault:
        """RDPMC's PMU side: decode the index space (SDM RDPMC; APM RDPMC), read, mask."""
        counter = self._rdpmc_counter(ecx)
        if counter is None:
            return Fault.GP
        self.sync()
        value = counter.value & bits(counter.width - 1, 0)
        return value & 0xFFFF_FFFF if ecx & RDPMC_FAST else value

    def rdpmc_origin(self, ecx: int) -> str:
        """The origin tag of the counter RDPMC ``ecx`` reads ("" if none or host)."""
        counter = self._rdpmc_counter(ecx)
        return counter.origin if counter is not None else ""

    def _rdpmc_counter(self, ecx: int) -> Counter | None:
        if not 0 <= ecx < (1 << 32):
            return None
        if not self.caps.is_intel:
            return self.counters.get(ecx) if ecx < FIXED_IDX_BASE else None
        if ecx & RDPMC_FAST and not self.caps.rdpmc_fast_read:
            return None
        index = ecx & bits(29, 0)
        if ecx & RDPMC_FIXED:
            return self.counters.get(FIXED_IDX_BASE + index)
        return self.counters.get(index) if index < FIXED_IDX_BASE else None

    # -- counting ------------------------------------------------------------------------
    def set_segment(self, segment: Segment | None) -> None:
        """The CPU starts (or stops) executing a stream: only the totals change."""
        self.sync()
        self.segment = segment
        self._retotal()

    def set_guest(self, guest: bool) -> None:
        """The CPU enters or leaves guest mode: AMD HostOnly/GuestOnly follow it (with SVME).

        Intel counters have no host/guest filter of their own: host perf gets exclude_guest /
        exclude_host by switching GLOBAL_CTRL at VM-entry and VM-exit.
        """
        self.sync()
        self.guest = guest
        if not self.caps.is_intel:
            self.reconfigure()

    def set_cpl(self, cpl: int) -> None:
        """The CPU changes privilege level (affects scripted streams and the filters)."""
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
        c.value += delta
        if c.value < limit:
            return False
        c.value %= limit
        return True

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Several register writes as one change (the host kernel programming a counter):
        what counts is recomputed once, at the end. Counters are synced before each write."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1
            if not self._deferred:
                self.reconfigure()

    def reconfigure(self) -> None:
        """Recompute what each counter counts after a register, privilege or freeze change,
        then its segment total and the next overflow. Counters must be synced first."""
        if self._deferred:
            return
        self._configs = [(c, self.count_config(c)) for c in self.counters.values()]
        for c, cfg in self._configs:
            c.pmi = cfg.pmi if cfg else self._pmi_bit(c)
        self._retotal()

    def _retotal(self) -> None:
        """Recompute the segment totals from the cached configurations; re-predict.

        Every counter is synced to now when this runs, so each restarts its delta here.
        """
        now = self.env.now_ps
        for c, cfg in self._configs:
            c.total = self._segment_total(cfg) if cfg else 0
            c.synced_ps = now
        self._active = [c for c, _ in self._configs if c.total]
        self._predict()

    def count_config(self, c: Counter) -> CountConfig | None:
        """What ``c`` counts now, or None if it does not count (the counting rule above)."""
        if self._streamlined_freeze and self.regs["GLOBAL_STATUS"] >> msrs.STATUS_CTR_FRZ & 1:
            return None
        if self._global_gated and not self.regs["GLOBAL_CTRL"] >> c.gidx & 1:
            return None
        if c.is_fixed:
            return self._fixed_config(c.gidx - FIXED_IDX_BASE)
        return self._gp_config(c.gidx)

    def _fixed_config(self, i: int) -> CountConfig | None:
        return self._decode.fixed(self.regs.get("FIXED_CTR_CTRL", 0), i)[0]

    def _gp_config(self, i: int) -> CountConfig | None:
        sel = self._decode.gp(self.sels.get(i, 0))
        if sel.config is None or not self._host_guest_allows(sel):
            return None
        return sel.config

    def _host_guest_allows(self, sel: GpSelect) -> bool:
        """AMD HostOnly (41) / GuestOnly (40) (APM 13.2.1; svm_pmu_host_guest_test): with
        SVME clear a counter with either bit does not count; with SVME set, HostOnly counts
        only in the host, GuestOnly only in the guest, both or neither always."""
        if self.caps.is_intel:
            return True
        if not self.svme:
            return not (sel.guest_only or sel.host_only)
        if sel.guest_only == sel.host_only:
            return True
        return sel.guest_only == self.guest

    def _pmi_bit(self, c: Counter) -> bool:
        if c.is_fixed:
            return self._decode.fixed(self.regs.get("FIXED_CTR_CTRL", 0),
                                      c.gidx - FIXED_IDX_BASE)[1]
        return self._decode.gp(self.sels.get(c.gidx, 0)).pmi

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
                dt = time_to_reach(c.total, seg.duration_ps, base + (1 << c.width) - c.value)
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
        """Set status bits; a PMI if any overflowed counter asks for one; freeze on PMI."""
        for c in overflowed:
            self.regs["GLOBAL_STATUS"] |= 1 << c.gidx
        if any(c.pmi for c in overflowed):
            self._freeze_on_pmi()
            self.reconfigure()
            self.on_pmi()

    def _freeze_on_pmi(self) -> None:
        """DEBUGCTL.FREEZE_*_ON_PMI (SDM 18.4.7, 20.8.1): v4+ sets CTR_FRZ / LBR_FRZ in
        GLOBAL_STATUS ("streamlined freeze"); v2-v3 clear GLOBAL_CTRL / DEBUGCTL.LBR."""
        debugctl = self.regs.get("IA32_DEBUGCTL", 0)
        v = self.caps.version
        if not self.caps.is_intel or v < 2:
            return
        if debugctl >> msrs.DEBUGCTL_FREEZE_PERFMON_ON_PMI & 1:
            if v >= 4:
                self.regs["GLOBAL_STATUS"] |= 1 << msrs.STATUS_CTR_FRZ
            else:
                self.regs["GLOBAL_CTRL"] = 0
        if debugctl >> msrs.DEBUGCTL_FREEZE_LBRS_ON_PMI & 1:
            if v >= 4:
                self.regs["GLOBAL_STATUS"] |= 1 << msrs.STATUS_LBR_FRZ
            else:
                self.regs["IA32_DEBUGCTL"] = debugctl & ~(1 << msrs.DEBUGCTL_LBR)
