"""The KVM part of the x86 presets' cost tables.

One value is fitted to a measurement (the VM transition, to the is_paused thread's guest PMI
handler latency); the rest are estimates. The parts the mediated series measured (EMR, Turin)
run a 2025 kernel, not 2021's: their exit path is this table scaled so that a plain CPUID
round trip takes the value benchmarks/fit_mediated.py fits to the series' figures (the MSR
prices stay the host table's). ``sources.py`` says where each comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vpmu.costs.kvm import KvmCosts

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

V6_PLAIN_CPUID: Mapping[str, int] = MappingProxyType({"intel-emr": 370, "amd-zen5": 1_950})
"""The plain CPUID round trip benchmarks/fit_mediated.py fits to the mediated series' figures,
for the parts it measured; their exit path is scaled to it."""


def _scaled(plain_cpuid: int) -> KvmCosts:
    """The exit path (transition, full exit, handlers) scaled to a plain CPUID round trip,
    rounded to 10 and at least 10."""
    def scale(cycles: int) -> int:
        return max(int(round(cycles * plain_cpuid / PLAIN_CPUID_CYCLES, -1)), 10)
    return _table(scale(VMX_TRANSITION_CYCLES), scale(FULL_EXIT_CYCLES),
                  {r: scale(c) for r, c in EXIT_HANDLER_CYCLES.items()})


def _table(transition: int, full_exit: int, handlers: Mapping[str, int]) -> KvmCosts:
    return KvmCosts(vmx_transition_cycles=transition, full_exit_cycles=full_exit,
                    exit_handler_cycles=handlers, inject_cycles=INJECT_CYCLES,
                    pmc_reprogram_cycles=PMC_REPROGRAM_CYCLES, hrtimer_cycles=HRTIMER_CYCLES,
                    mediated_switch_cycles=MEDIATED_SWITCH_CYCLES, arch="x86")


def kvm_table(preset: str) -> KvmCosts:
    """One x86 preset's KVM table: the fitted exit path, scaled for the parts the mediated
    series measured."""
    if preset in V6_PLAIN_CPUID:
        return _scaled(V6_PLAIN_CPUID[preset])
    return _table(VMX_TRANSITION_CYCLES, FULL_EXIT_CYCLES, EXIT_HANDLER_CYCLES)
