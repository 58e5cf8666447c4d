"""Event selects and FIXED_CTR_CTRL read through their declared fields, once per value.

What a counter counts is decided by its selector's fields (SDM 20.2.1.1 and 20.2.2; APM
13.2.1): EN, OS/USR, the event and unit mask, CMASK/INV/EDGE, INT, and on AMD the event's
high bits and HostOnly/GuestOnly. The fields are taken from the register declarations in
``vpmu.arch.x86.msrs`` (a field a part does not declare, like IN_TX without TSX, reads 0: a
write that sets it faults). Software writes few distinct selector values, and the counting
rule is evaluated for every counter at every register write, so each decoded value is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vpmu.arch.regs import Field, RegisterSpec, Role
from vpmu.arch.x86 import events as ev
from vpmu.arch.x86.caps import X86PmuCaps
from vpmu.hw.counting import RING_KERNEL, RING_USER, Qualifiers
from vpmu.hw.engine import CountConfig

MAX_KEPT = 4096
"""Decoded values kept per PMU before the memo starts over (a fuzzer writes many)."""


@dataclass(frozen=True, slots=True)
class GpSelect:
    """A general-purpose event select, decoded."""

    config: CountConfig | None
    """What it counts when it counts; None when EN is clear or no ring is selected."""
    pmi: bool
    """INT: an overflow raises a PMI."""
    guest_only: bool
    """AMD GuestOnly (bit 40)."""
    host_only: bool
    """AMD HostOnly (bit 41)."""


class SelectorDecoder:
    """Decodes the selectors and the fixed-counter control of one PMU shape."""

    def __init__(self, caps: X86PmuCaps, specs: Iterable[RegisterSpec]) -> None:
        self.caps = caps
        self._sel: dict[str, Field] = {}
        self._fixed_ctrl: dict[str, Field] = {}
        for spec in specs:
            if spec.role is Role.SELECTOR and not self._sel:
                self._sel = {f.name: f for f in spec.fields}
            elif spec.storage == "FIXED_CTR_CTRL":
                self._fixed_ctrl = {f.name: f for f in spec.fields}
        self._gp: dict[int, GpSelect] = {}
        self._fixed: dict[tuple[int, int], tuple[CountConfig | None, bool]] = {}

    def gp(self, sel: int) -> GpSelect:
        """The decoded selector value ``sel``."""
        decoded = self._gp.get(sel)
        if decoded is None:
            if len(self._gp) >= MAX_KEPT:
                self._gp.clear()
            decoded = self._gp[sel] = self._decode_gp(sel)
        return decoded

    def fixed(self, ctrl: int, i: int) -> tuple[CountConfig | None, bool]:
        """Fixed counter ``i`` under FIXED_CTR_CTRL ``ctrl``: what it counts (None: neither
        OS nor USR is set) and whether its overflow raises a PMI."""
        decoded = self._fixed.get((ctrl, i))
        if decoded is None:
            if len(self._fixed) >= MAX_KEPT:
                self._fixed.clear()
            decoded = self._fixed[(ctrl, i)] = self._decode_fixed(ctrl, i)
        return decoded

    def _get(self, fields: dict[str, Field], name: str, value: int) -> int:
        f = fields.get(name)
        return f.get(value) if f is not None else 0

    def _decode_gp(self, sel: int) -> GpSelect:
        def get(name: str) -> int:
            return self._get(self._sel, name, sel)
        pmi, guest_only, host_only = bool(get("INT")), bool(get("GUEST_ONLY")), \
            bool(get("HOST_ONLY"))
        rings = tuple(r for r, name in ((RING_KERNEL, "OS"), (RING_USER, "USR")) if get(name))
        if not get("EN") or not rings:
            return GpSelect(None, pmi, guest_only, host_only)
        event, umask = get("EVENT_SELECT"), get("UMASK")
        if self.caps.is_intel and get("IN_TX"):
            keys: tuple[str, ...] = ()  # IN_TX: only inside transactions; none are modelled
        elif self.caps.is_intel:
            keys = ev.intel_event_keys(event, umask)
        else:
            keys = ev.amd_event_keys(event | get("EVENT_SELECT_HI") << 8, umask)
        q = Qualifiers(cmask=get("CMASK"), inv=bool(get("INV")), edge=bool(get("EDGE")))
        return GpSelect(CountConfig(keys, rings, q, pmi), pmi, guest_only, host_only)

    def _decode_fixed(self, ctrl: int, i: int) -> tuple[CountConfig | None, bool]:
        def get(name: str) -> int:
            return self._get(self._fixed_ctrl, name, ctrl)
        pmi = bool(get(f"PMI{i}"))
        rings = tuple(r for r, name in ((RING_KERNEL, f"EN{i}_OS"), (RING_USER, f"EN{i}_USR"))
                      if get(name))
        if not rings:
            return None, pmi
        key = ev.INTEL_FIXED_EVENTS[i] if i < len(ev.INTEL_FIXED_EVENTS) else ""
        return CountConfig((key,) if key else (), rings, Qualifiers(), pmi), pmi
