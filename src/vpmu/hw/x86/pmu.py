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

from collections.abc import Callable

from vpmu.arch.faults import Fault
from vpmu.arch.presets import CpuPreset
from vpmu.arch.regs import RegisterSpec, Role, apply_write, bits, by_address, read_value
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, RDPMC_FAST, RDPMC_FIXED, x86_caps
from vpmu.hw.engine import ALL, CountConfig, Counter, CountingPmu
from vpmu.hw.x86.lbr import X86Lbr
from vpmu.hw.x86.selectors import GpSelect, SelectorDecoder
from vpmu.sim import Environment


class X86Pmu(CountingPmu):
    """One logical CPU's x86 PMU: the register file of its MSRs and the counting rule."""

    def __init__(self, preset: CpuPreset, env: Environment,
                 on_pmi: Callable[[], None]) -> None:
        super().__init__(preset, env, on_pmi)
        self.caps = x86_caps(preset.caps)
        """What this PMU implements."""
        self.guest_filter_sensitive = not self.caps.is_intel  # HostOnly/GuestOnly (AMD)
        self.specs: dict[int, RegisterSpec] = by_address(msrs.pmu_msrs(self.caps))
        """Every implemented MSR by address; an address not here takes #GP."""
        self._decode = SelectorDecoder(self.caps, self.specs.values())
        self._fixed_indices = self.caps.fixed_indices
        self.regs: dict[str, int] = {}
        """Plain storage by key (controls, status, capabilities, LBR)."""
        self.sels: dict[int, int] = {}
        """General-purpose event selectors by counter index."""
        self._init_storage()
        self.svme = False
        """AMD EFER.SVME: decides HostOnly/GuestOnly counting."""
        self._global_gated = self.caps.has_global_ctrl
        self._streamlined_freeze = self.caps.is_intel and self.caps.version >= 4
        self.lbr: X86Lbr | None = X86Lbr(self) if msrs.has_legacy_lbr(self.caps) else None
        """The legacy LBR stack, if this PMU has one."""
        self._lbr_addrs = frozenset(
            a for a, spec in self.specs.items()
            if self.lbr is not None and (spec.storage in msrs.LBR_CONTROLS
                                         or spec.target in msrs.LBR_CONTROLS))
        """Writes that change what the LBR records: it is synced before and updated after."""
        self.reconfigure()

    def __repr__(self) -> str:
        return f"X86Pmu(preset={self.preset.name!r})"

    def _init_storage(self) -> None:
        for spec in self.specs.values():
            if spec.role is Role.COUNTER:
                self.counters.setdefault(spec.index, Counter(spec.index, spec.fields[0].width))
            elif spec.role is Role.SELECTOR:
                self.sels.setdefault(spec.index, spec.reset)
            elif not spec.target and spec.role is not Role.RECORD:
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
        """WRMSR at CPL 0: apply the declared semantics, then recompute what the write can
        have changed: nothing if no storage changed, the next overflow after a counter
        write, one counter's rule after its selector's, else every counter's."""
        spec = self.specs.get(addr)
        if spec is None:
            return Fault.GP
        self.sync()
        old = self._stored(spec)
        result = apply_write(spec, old, value)
        if result.fault:
            return Fault.GP
        lbr = self.lbr if addr in self._lbr_addrs else None
        if lbr is not None:
            lbr.sync()
        if result.store is not None:
            self._store(spec, result.store)
        if spec.role is Role.COUNTER:
            self.repredict()
            return None
        which = 0
        if result.store is not None:
            which = self._affected(spec.storage, spec.index, old, result.store)
        if spec.target:
            target = self.regs[spec.target]
            self.regs[spec.target] = new = (target & ~result.clear) | result.set
            which |= self._affected(spec.target, -1, target, new)
        if which:
            self.reconfigure(which)
        if lbr is not None:
            lbr.update()
        return None

    def _affected(self, storage: str, index: int, before: int, after: int) -> int:
        """The counters whose counting rule (``count_config``) can change when ``storage``
        goes from ``before`` to ``after``, as a mask of global indices (ALL: any)."""
        if before == after:
            return 0
        if index >= 0:  # a selector: its own counter
            return 1 << index
        if storage == "GLOBAL_CTRL":
            return before ^ after
        if storage == "GLOBAL_STATUS":
            return ALL if (before ^ after) >> msrs.STATUS_CTR_FRZ & 1 else 0
        if storage == "FIXED_CTR_CTRL":
            fixed = self._decode.fixed
            return sum(1 << (FIXED_IDX_BASE + i) for i in self._fixed_indices
                       if fixed(before, i) != fixed(after, i))
        return ALL

    def _stored(self, spec: RegisterSpec) -> int:
        if spec.role is Role.COUNTER:
            return self.counters[spec.index].value
        if spec.role is Role.SELECTOR:
            return self.sels[spec.index]
        if spec.role is Role.RECORD and self.lbr is not None:
            return self.lbr.read(spec)
        return self.regs.get(spec.storage, 0)

    def _store(self, spec: RegisterSpec, value: int) -> None:
        if spec.role is Role.COUNTER:
            counter = self.counters[spec.index]
            counter.value = value & bits(counter.width - 1, 0)
            counter.origin = self.writer
        elif spec.role is Role.SELECTOR:
            self.sels[spec.index] = value
        elif spec.role is Role.RECORD and self.lbr is not None:
            self.lbr.write(spec, value)
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

    def count_config(self, c: Counter) -> CountConfig | None:
        """What ``c`` counts now, or None if it does not count (the counting rule above)."""
        if self._streamlined_freeze and self.regs["GLOBAL_STATUS"] >> msrs.STATUS_CTR_FRZ & 1:
            return None
        if self._global_gated and not self.regs["GLOBAL_CTRL"] >> c.gidx & 1:
            return None
        if c.gidx >= FIXED_IDX_BASE:
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

    def _mark_overflow(self, c: Counter) -> None:
        self.regs["GLOBAL_STATUS"] |= 1 << c.gidx

    def _on_pmi_raised(self) -> None:
        self._freeze_on_pmi()

    def _freeze_on_pmi(self) -> None:
        """DEBUGCTL.FREEZE_*_ON_PMI (SDM 18.4.7, 20.8.1): v4+ sets CTR_FRZ / LBR_FRZ in
        GLOBAL_STATUS ("streamlined freeze"); v2-v3 clear GLOBAL_CTRL / DEBUGCTL.LBR."""
        debugctl = self.regs.get("IA32_DEBUGCTL", 0)
        v = self.caps.version
        if not self.caps.is_intel or v < 2:
            return
        if self.lbr is not None:
            self.lbr.sync()  # the stack holds the branches up to the PMI
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
        if self.lbr is not None:
            self.lbr.update()
