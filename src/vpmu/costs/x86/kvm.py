"""The KVM part of the x86 presets' cost tables.

One value per generation and kernel era is fitted to a published measurement: the plain exit
round trip (``PLAIN_EXIT_FITTED``); the shape of the exit path (transition : full exit :
handler, ``VMX_TRANSITION_CYCLES`` and the rest) is the seed-001 table's, scaled to it. ICX's
is the seed-001 table itself (its transition fitted to the is_paused thread's guest PMI
handler latency). A part with no figure of its own borrows a measured part's exit path
(``PLAIN_EXIT_BORROWED``), said in its source. benchmarks/calibrate.py runs every fit and
every prediction; ``sources.py`` says where each number comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.costs.kvm import KvmCosts, scale_exit_path

VMX_TRANSITION_CYCLES = 2_600
FULL_EXIT_CYCLES = 800
EXIT_HANDLER_CYCLES: Mapping[str, int] = MappingProxyType({
    "EXCEPTION_NMI": 300, "EXTERNAL_INTERRUPT": 200, "NMI_WINDOW": 200, "CPUID": 300,
    "HLT": 500, "RDPMC": 300, "MSR_READ": 300, "MSR_WRITE": 300})
INJECT_CYCLES = 300
PMC_REPROGRAM_CYCLES = 150
HRTIMER_CYCLES = 800
MEDIATED_SWITCH_CYCLES = 100

PLAIN_CPUID_CYCLES = VMX_TRANSITION_CYCLES + FULL_EXIT_CYCLES + EXIT_HANDLER_CYCLES["CPUID"]
"""The table's plain CPUID exit round trip (3,700 cycles)."""

PLAIN_EXIT_FITTED: Mapping[str, int] = MappingProxyType({
    "intel-skl": 1_550, "intel-icx": PLAIN_CPUID_CYCLES, "intel-emr": 350, "amd-zen5": 1_950})
"""The plain CPUID exit round trip each measured generation's exit path is scaled to, as
benchmarks/calibrate.py fits it: SKL to the 2020 VMCALL round trip (1,550 scales to a 1,560
round trip after rounding), EMR and Turin to the mediated series' CPUID round trips; ICX's is
the seed-001 table (not scaled)."""
PLAIN_EXIT_BORROWED: Mapping[str, str] = MappingProxyType({
    "intel-spr": "intel-emr", "amd-zen4": "amd-zen5"})
"""Presets with no published exit figure of their own, and the measured part whose exit path
they take (the same vendor's next or previous core, the same kernel era)."""


def plain_exit_parameter(preset: str) -> int:
    """The fitted plain round trip a preset's exit path is scaled to (its own or borrowed)."""
    return PLAIN_EXIT_FITTED[PLAIN_EXIT_BORROWED.get(preset, preset)]


def _table(transition: int, full_exit: int, handlers: Mapping[str, int]) -> KvmCosts:
    return KvmCosts(vmx_transition_cycles=transition, full_exit_cycles=full_exit,
                    exit_handler_cycles=handlers, inject_cycles=INJECT_CYCLES,
                    pmc_reprogram_cycles=PMC_REPROGRAM_CYCLES, hrtimer_cycles=HRTIMER_CYCLES,
                    mediated_switch_cycles=MEDIATED_SWITCH_CYCLES, arch="x86")


def kvm_table(preset: str, plain_exit: int | None = None) -> KvmCosts:
    """One x86 preset's KVM table: the seed-001 exit path scaled to the preset's fitted plain
    round trip (or to ``plain_exit``, as a refit asks)."""
    plain = plain_exit_parameter(preset) if plain_exit is None else plain_exit
    seed_001 = _table(VMX_TRANSITION_CYCLES, FULL_EXIT_CYCLES, EXIT_HANDLER_CYCLES)
    return seed_001 if plain == PLAIN_CPUID_CYCLES else scale_exit_path(seed_001, plain, "CPUID")
