"""The Arm PMUv3 hardware: the register file of its system registers and the counting rules
(Arm ARM DDI 0487, D13 "The Performance Monitors Extension").

Register semantics come from ``vpmu.arch.arm64.sysregs`` through ``vpmu.arch.regs``; this
module adds what no declaration says:

- **Counting rule.** Counter ``n`` counts iff PMCR_EL0.E and PMCNTENSET_EL0[n] are set, its
  event is one the model's workloads provide (``vpmu.arch.arm64.events.COUNTS``; the cycle
  counter counts CPU_CYCLES), and its filter admits the current exception level: at EL0 iff
  U == NSU, at the kernel's EL iff P == NSK (EL1) or NSH (EL2, a VHE kernel).
- **Widths.** Event counters store 32 bits, 64 from PMUv3p5; they overflow at 32 bits unless
  PMCR_EL0.LP (PMUv3p5). The cycle counter stores 64 bits and overflows at 32 unless
  PMCR_EL0.LC (forced to 1 without AArch32 at EL0). PMCR_EL0 keeps LP as 0 without PMUv3p5
  (RES0) and LC as 1 without AArch32 (RES1).
- **Overflow.** Sets PMOVSSET_EL0[n]. An even counter's 32-bit overflow increments the odd
  counter above it when that counter counts CHAIN (0x1E), is enabled and its filter admits
  the current exception level: the pair is one 64-bit counter. The interrupt is a level:
  asserted while PMCR_EL0.E and PMOVSSET & PMINTENSET, on a GIC PPI (``vpmu.hw.arm64.gic``).
- **Actions.** PMCR_EL0.P zeroes every event counter, .C the cycle counter; PMSWINC_EL0 adds 1
  to each enabled counter counting SW_INCR (0x00) whose filter admits the writer's exception
  level, which may overflow and chain.
- **Indirection.** PMXEVTYPER_EL0 / PMXEVCNTR_EL0 are the registers PMSELR_EL0.SEL selects
  (31: PMCCFILTR_EL0 / PMCCNTR_EL0).
- **Partitioning** (MDCR_EL2.HPMN and .HPME; Arm ARM D13.3 "Controlling the PMU counters
  and PMU interrupts at EL2"): EL2 sets HPMN <= N. Counters [0, HPMN) and the cycle counter
  are EL1's: PMCR_EL0.E enables them and PMCR_EL0.P resets them. Counters [HPMN, N) are
  EL2's: MDCR_EL2.HPME enables them and raises their interrupt, PMCR_EL0.P written below EL2
  leaves them. Below EL2, PMCR_EL0.N reads HPMN, their bits in the bitmap registers and
  PMSWINC_EL0 are RAZ/WI and an access naming one is UNDEFINED (assumption: the Arm ARM's
  ``AArch64.GetNumEventCountersAccessible`` test; some versions trap it to EL2 instead, which
  KVM turns into the same UNDEF). At reset HPMN = N: nothing is EL2's.

Not modelled: PMCR_EL0.D (the cycle counter's divide-by-64), .DP and .X, Secure state and EL3
filtering (M, SH), FEAT_PMUv3_ICNTR, threshold counting, event freezing on overflow,
MDCR_EL2.HPMD / HCCD (they prohibit EL1's counters at EL2, where a guest's counters never
count anyway: KVM keeps a guest's NSH bit clear).
"""

from __future__ import annotations

from collections.abc import Callable

from vpmu.arch import events as ev
from vpmu.arch.arm64 import events as arm_ev
from vpmu.arch.arm64.caps import CYCLE_IDX, ArmPmuCaps
from vpmu.arch.arm64.sysregs import access_fault, pmu_sysregs
from vpmu.arch.faults import Fault
from vpmu.arch.presets import CpuPreset
from vpmu.arch.regs import RegisterSpec, Role, apply_write, by_address, read_value
from vpmu.hw.arm64.gic import PpiLine
from vpmu.hw.counting import RING_KERNEL, RING_USER, Qualifiers
from vpmu.hw.engine import CountConfig, Counter, CountingPmu
from vpmu.sim import Environment

NO_QUALIFIERS = Qualifiers()
PMCR_E, PMCR_P, PMCR_C, PMCR_LC, PMCR_LP = 1 << 0, 1 << 1, 1 << 2, 1 << 6, 1 << 7
PMCR_N_SHIFT, PMCR_N_MASK = 11, 0x1F << 11
BITMAPS = frozenset({"PMCNTENSET_EL0", "PMINTENSET_EL1", "PMOVSSET_EL0", "PMSWINC_EL0"})
"""Storage of the per-counter bitmaps (and PMSWINC_EL0's bits): EL2's counters are RAZ/WI
below EL2."""
CONTROLS = frozenset({"PMCR_EL0", "PMCNTENSET_EL0"})
"""Storage whose change can change what any counter counts or how wide it overflows."""
IRQ_STATE = frozenset({"PMCR_EL0", "PMOVSSET_EL0", "PMINTENSET_EL1"})
"""Storage the interrupt level depends on."""
MULTI_KEY_EVENTS: dict[int, tuple[str, ...]] = {
    arm_ev.BY_NAME["MEM_ACCESS"]: (ev.LOADS, ev.STORES),
}
"""Common events that count the sum of several workload keys (``COUNTS`` maps one key per
event): MEM_ACCESS (0x13) counts every data memory read or write the PE makes (Arm ARM D13.12,
"MEM_ACCESS, Data memory access"), the stream's loads plus its stores (assumption: a stream's
loads and stores are single accesses; barriers and instruction fetches are not data
accesses)."""


class ArmPmu(CountingPmu):
    """One core's PMUv3: its system registers, counted lazily."""

    def __init__(self, preset: CpuPreset, env: Environment, on_irq: Callable[[], None], *,
                 kernel_el: int = 1) -> None:
        self.irq = PpiLine(on_irq)
        """The overflow interrupt's PPI (level-sensitive)."""
        super().__init__(preset, env, self._update_irq)
        caps: object = preset.caps  # CpuPreset.caps is typed as x86's until presets are neutral
        if not isinstance(caps, ArmPmuCaps):
            raise ValueError(f"ArmPmu needs an Arm preset, not {preset.name!r}")
        self.caps = caps
        self.kernel_el = kernel_el
        """The EL the kernel runs at (1; 2 for a VHE host): which filter bit its ring uses."""
        self.guest_filter_sensitive = True
        """Entering a guest moves the kernel ring from the host kernel's EL to EL1."""
        self.specs: dict[int, RegisterSpec] = by_address(pmu_sysregs(caps))
        self.by_name = {s.name: s for s in self.specs.values()}
        """The registers by name (the port's ``Mrs(name)`` / ``Msr(name, value)``)."""
        self.regs: dict[str, int] = {}
        self.types: dict[int, int] = {}
        """PMEVTYPER<n>_EL0 by counter index, and PMCCFILTR_EL0 at 31."""
        for spec in self.specs.values():
            if spec.role is Role.COUNTER:
                self.counters[spec.index] = Counter(spec.index, spec.fields[0].width)
            elif spec.role is Role.SELECTOR:
                self.types[spec.index] = spec.reset
            elif spec.role is Role.REG and spec.target in ("", spec.name):
                self.regs[spec.storage] = spec.reset
        self.regs["PMCR_EL0"] = self._pmcr_image(self.regs["PMCR_EL0"])
        self.hpmn = caps.n_counters
        """MDCR_EL2.HPMN: counters [0, HPMN) and the cycle counter are EL1's (reset: N)."""
        self.hpme = False
        """MDCR_EL2.HPME: counters [HPMN, N) are enabled."""
        self.el1_mask = caps.counter_mask
        """The counters EL1 and EL0 see: [0, HPMN) and the cycle counter."""
        self._el1_caps = caps
        self._set_widths()
        self.reconfigure()

    def __repr__(self) -> str:
        return f"ArmPmu(preset={self.preset.name!r})"

    # -- register access (MRS / MSR) -----------------------------------------------------
    def mrs(self, addr: int, *, el: int = 1) -> int | Fault:
        """An MRS of a PMU register at ``el``: its value, or UNDEFINED."""
        spec = self.resolve(self.specs.get(addr), el, write=False)
        if isinstance(spec, Fault):
            return spec
        return self.read_at(spec, el)

    def read_at(self, spec: RegisterSpec, el: int) -> int:
        """``read`` as an access at ``el`` sees it: below EL2, PMCR_EL0.N is HPMN and EL2's
        counters' bits read as zero."""
        value = self.read(spec)
        if el >= 2 or not self.partitioned:
            return value
        if spec.name == "PMCR_EL0":
            return value & ~PMCR_N_MASK | self.hpmn << PMCR_N_SHIFT
        if (spec.target or spec.storage) in BITMAPS:
            return value & self.el1_mask
        return value

    def read(self, spec: RegisterSpec) -> int:
        """The value of a register an access has reached (``resolve``)."""
        self.sync()
        return read_value(spec, self._stored(spec))

    def msr(self, addr: int, value: int, *, el: int = 1) -> Fault | None:
        """An MSR to a PMU register at ``el``: its declared semantics and actions."""
        spec = self.resolve(self.specs.get(addr), el, write=True)
        if isinstance(spec, Fault):
            return spec
        self.write(spec, value, el=el)
        return None

    def write(self, spec: RegisterSpec, value: int, *, el: int = 2) -> None:
        """Write a register an access at ``el`` has reached (``resolve``; the host's driver
        writes at EL2): its declared semantics and actions, then what they change. Below
        EL2, EL2's counters' bits are ignored."""
        self.sync()
        if el < 2 and self.partitioned and (spec.target or spec.storage) in BITMAPS:
            value &= self.el1_mask
        result = apply_write(spec, self._stored(spec), value & (1 << 64) - 1)
        if result.store is not None:
            self._store(spec, result.store)
        target = spec.target
        if target:
            self.regs[target] = (self.regs[target] & ~result.clear) | result.set
        if result.action:
            self._act(spec, result.action, el)
        storage = target or spec.storage
        if storage in CONTROLS:
            self._set_widths()
            self.reconfigure()
        elif spec.role is Role.SELECTOR:
            self.reconfigure(1 << spec.index)
        elif spec.role is Role.COUNTER:
            self.repredict()
        if storage in IRQ_STATE:
            self._update_irq()

    def resolve(self, spec: RegisterSpec | None, el: int, *,
                write: bool) -> RegisterSpec | Fault:
        """The register an access to ``spec`` reaches (through PMSELR_EL0.SEL for the PMXEV*
        windows), or UNDEFINED (None: no such PMU register)."""
        if spec is None:
            return Fault.UNDEF
        sel = self.regs["PMSELR_EL0"] & 0x1F
        caps = self.caps if el >= 2 else self._el1_caps
        fault = access_fault(spec, caps, el=el, userenr=self.regs["PMUSERENR_EL0"],
                             sel=sel, write=write)
        if fault is not None:
            return fault
        if spec.role is Role.INDIRECT:
            if sel == CYCLE_IDX:
                return self.by_name["PMCCNTR_EL0" if spec.storage == "PMEVCNTR"
                                     else "PMCCFILTR_EL0"]
            return self.by_name[f"{spec.storage}{sel}_EL0"]
        return spec

    def _stored(self, spec: RegisterSpec) -> int:
        if spec.role is Role.COUNTER:
            return self.counters[spec.index].value
        if spec.role is Role.SELECTOR:
            return self.types[spec.index]
        return self.regs.get(spec.storage, 0)

    def _store(self, spec: RegisterSpec, value: int) -> None:
        if spec.role is Role.COUNTER:
            c = self.counters[spec.index]
            c.value, c.origin = value, self.writer
        elif spec.role is Role.SELECTOR:
            self.types[spec.index] = value
        elif spec.storage == "PMCR_EL0":
            self.regs["PMCR_EL0"] = self._pmcr_image(value)
        else:
            self.regs[spec.storage] = value

    def _pmcr_image(self, value: int) -> int:
        """PMCR_EL0 as the PE keeps it: LP is RES0 without FEAT_PMUv3p5, LC is RES1 without
        AArch32 (Arm ARM D23.5, PMCR_EL0: "LP ... Otherwise RES0"; "LC ... If AArch32 is not
        supported at any Exception level, this bit is RES1"; the caps' ``aarch32_el0``
        stands for AArch32 support)."""
        if not self.caps.long_event_counters:
            value &= ~PMCR_LP
        if not self.caps.aarch32_el0:
            value |= PMCR_LC
        return value

    # -- MDCR_EL2 ------------------------------------------------------------------------
    @property
    def partitioned(self) -> bool:
        """EL2 keeps some counters for itself (MDCR_EL2.HPMN < N)."""
        return self.hpmn < self.caps.n_counters

    def set_mdcr(self, *, hpmn: int, hpme: bool) -> None:
        """EL2 writes MDCR_EL2.HPMN and .HPME: what counts and what EL1 sees change."""
        if not 0 <= hpmn <= self.caps.n_counters:
            raise ValueError(f"MDCR_EL2.HPMN must be 0-{self.caps.n_counters}, not {hpmn!r}")
        self.sync()
        self.hpmn, self.hpme = hpmn, hpme
        self.el1_mask = (1 << hpmn) - 1 | 1 << CYCLE_IDX
        self._el1_caps = self.caps.replace(n_counters=hpmn)
        self.reconfigure()
        self._update_irq()

    # -- actions -------------------------------------------------------------------------
    def _act(self, spec: RegisterSpec, bits: int, el: int = 2) -> None:
        if spec.name == "PMCR_EL0":
            for c in self.counters.values():
                if (c.gidx == CYCLE_IDX and bits & PMCR_C) or \
                        (c.gidx != CYCLE_IDX and bits & PMCR_P
                         and (el >= 2 or c.gidx < self.hpmn)):
                    c.value = 0
            self.repredict()
        else:  # PMSWINC_EL0
            self.software_increment(bits, el)

    def software_increment(self, mask: int, el: int) -> None:
        """PMSWINC_EL0 written at ``el``: +1 on each enabled counter in ``mask`` counting
        SW_INCR whose filter admits ``el`` (the writer's EL, which is the current one unless
        a hypervisor emulates the write for its guest)."""
        for idx in sorted(i for i in self.counters if mask >> i & 1 and i != CYCLE_IDX):
            if self._counts_at(idx, el) and self._event(idx) == arm_ev.SW_INCR:
                self._increment(self.counters[idx], el)
        self.repredict()
        self._update_irq()

    def _increment(self, c: Counter, el: int | None = None) -> None:
        """One event on ``c`` outside the lazy engine (SW_INCR, CHAIN) at ``el`` (None: the
        current EL): wrap and overflow."""
        low = 1 << (c.ovf or c.width)
        wrapped = c.value % low + 1 >= low
        c.value = (c.value + 1) % (1 << c.width)
        if wrapped:
            self._mark_overflow(c, el)

    # -- the counting rule ---------------------------------------------------------------
    def _enabled(self, idx: int) -> bool:
        """PMCNTENSET_EL0[idx], and PMCR_EL0.E (EL1's counters) or MDCR_EL2.HPME (EL2's)."""
        if not self.regs["PMCNTENSET_EL0"] >> idx & 1:
            return False
        if idx >= self.hpmn and idx != CYCLE_IDX:
            return self.hpme
        return bool(self.regs["PMCR_EL0"] & PMCR_E)

    def _counts_here(self, idx: int) -> bool:
        """Counter ``idx`` counts an event that happens now: enabled, and its filter admits
        the current exception level (``AArch64.CountPMUEvents``; SW_INCR and CHAIN are events
        like any other, Arm ARM D13 "PMUEvent")."""
        return self._enabled(idx) and self._ring_now() in self._rings(idx)

    def _ring_now(self) -> int:
        """The ring an event happening now is at: the CPU's, or inside a stream that splits
        its work between the rings (a guest's kernel code runs as such a stream), the ring
        most of it runs at (assumption: the model does not place an event within the
        split)."""
        seg = self.segment
        frac = seg.stream.user_fraction if seg is not None else None
        if frac is None:
            return RING_KERNEL if self.cpl == RING_KERNEL else RING_USER
        return RING_USER if frac * 2 > 1 else RING_KERNEL

    def _counts_at(self, idx: int, el: int | None) -> bool:
        """``_counts_here`` for an event at ``el`` (None: now): at EL0 iff U == NSU, at EL1
        iff P == NSK, at EL2 iff NSH."""
        if el is None:
            return self._counts_here(idx)
        return self._enabled(idx) and self._admits(idx, el)

    def _admits(self, idx: int, el: int) -> bool:
        """Counter ``idx``'s filter admits ``el``: EL0 iff U == NSU, EL1 iff P == NSK, EL2
        iff NSH."""
        t = self.types[idx]
        if el == 0:
            return t >> 30 & 1 == t >> 28 & 1
        if el == 1:
            return t >> 31 & 1 == t >> 29 & 1
        return bool(t >> 27 & 1)

    def _event(self, idx: int) -> int:
        if idx == CYCLE_IDX:
            return arm_ev.CPU_CYCLES
        return self.types[idx] & self.caps.event_mask

    def _rings(self, idx: int) -> tuple[int, ...]:
        # A guest's kernel runs at EL1 whatever the host's EL: on a VHE host (EL2) the
        # filter tells the two kernels apart, which is why guest mode is filter-sensitive.
        kernel_el = 1 if self.guest else self.kernel_el
        return tuple(r for r, ok in ((RING_KERNEL, self._admits(idx, kernel_el)),
                                     (RING_USER, self._admits(idx, 0))) if ok)

    def count_config(self, c: Counter) -> CountConfig | None:
        """What counter ``c`` counts now (None: disabled, filtered out everywhere, or an
        event the workloads do not provide: SW_INCR and CHAIN count outside the engine)."""
        if not self._enabled(c.gidx):
            return None
        keys = _event_keys(self._event(c.gidx))
        rings = self._rings(c.gidx)
        if not keys or not rings:
            return None
        return CountConfig(keys, rings, NO_QUALIFIERS, True)

    def _set_widths(self) -> None:
        """Where each counter overflows under PMCR_EL0.LC / LP."""
        pmcr = self.regs["PMCR_EL0"]
        lc, lp = bool(pmcr & PMCR_LC), bool(pmcr & PMCR_LP)
        for c in self.counters.values():
            w = self.caps.overflow_width(c.gidx, lc=lc, lp=lp)
            c.ovf = 0 if w == c.width else w

    # -- overflow and the interrupt ------------------------------------------------------
    def _mark_overflow(self, c: Counter, el: int | None = None) -> None:
        """PMOVSSET_EL0[n]; an even counter's 32-bit overflow is a CHAIN event for the odd
        counter above it."""
        self.regs["PMOVSSET_EL0"] |= 1 << c.gidx
        odd = c.gidx + 1
        if c.gidx % 2 == 0 and odd < min(self.caps.n_counters, CYCLE_IDX) and \
                (c.ovf or c.width) == 32 and self._counts_at(odd, el) and \
                self._event(odd) == arm_ev.CHAIN:
            self._increment(self.counters[odd], el)

    def _on_pmi_raised(self) -> None:
        """PMUv3 freezes nothing on an overflow (FEAT_PMUv3p7's PMCR_EL0.FZO is not
        modelled)."""

    @property
    def irq_level(self) -> bool:
        """The overflow interrupt request: an overflow with its interrupt enabled, on one of
        EL1's counters while PMCR_EL0.E or on one of EL2's while MDCR_EL2.HPME (PMCNTENSET
        is not part of it)."""
        r = self.regs
        pending = r["PMOVSSET_EL0"] & r["PMINTENSET_EL1"]
        if r["PMCR_EL0"] & PMCR_E and pending & self.el1_mask:
            return True
        return self.hpme and bool(pending & ~self.el1_mask)

    def _update_irq(self) -> None:
        self.irq.set_level(self.irq_level)


def _event_keys(event: int) -> tuple[str, ...]:
    """The workload keys ``event`` counts (empty: none the workloads provide)."""
    keys = MULTI_KEY_EVENTS.get(event)
    if keys is not None:
        return keys
    key = arm_ev.COUNTS.get(event)
    return () if key is None else (key,)
