"""arm64 register names as reports print them: the PMU system registers' Linux names
(``SYS_PMCR_EL0`` without the prefix), which are counters, event types or global controls,
and the registers of the per-PMI ratios (armv8pmu_handle_irq's own accesses)."""

from __future__ import annotations

from vpmu.arch.arm64.sysregs import SYSREG_NAMES

COUNTER_PREFIXES = ("PMEVCNTR", "PMCCNTR_EL0", "PMXEVCNTR_EL0")
"""Counters: the event counters, the cycle counter and the PMSELR-selected alias."""
SELECTOR_PREFIXES = ("PMEVTYPER", "PMCCFILTR_EL0", "PMXEVTYPER_EL0")
"""Event types and filters: what a counter counts (the event selectors of x86)."""
GLOBAL_NAMES = frozenset({"PMCR_EL0", "PMCNTENSET_EL0", "PMCNTENCLR_EL0", "PMOVSSET_EL0",
                          "PMOVSCLR_EL0", "PMINTENSET_EL1", "PMINTENCLR_EL1"})
"""The controls and status of every counter at once."""
PER_PMI_REGISTERS = (
    ("pmovsclr_reads", "PMOVSCLR_EL0", "read"),
    ("pmovsclr_writes", "PMOVSCLR_EL0", "write"),
    ("pmcr_writes", "PMCR_EL0", "write"),
)
"""armv8pmu_handle_irq's per-PMI accesses (drivers/perf/arm_pmuv3.c@v6.12): the overflow
status read and written back, and PMCR_EL0.E cleared and set around the handler."""


def register_name(addr: int) -> str:
    """The system register's name, or its encoding for one that is not a PMU register."""
    return SYSREG_NAMES.get(addr, f"S_{addr:#x}")


def register_kind(addr: int) -> str | None:
    """"counter", "selector" or "global" for a PMU system register, None for any other."""
    name = SYSREG_NAMES.get(addr)
    if name is None:
        return None
    if name.startswith(SELECTOR_PREFIXES):
        return "selector"
    if name.startswith(COUNTER_PREFIXES):
        return "counter"
    return "global" if name in GLOBAL_NAMES else None


def is_counter_name(name: str) -> bool:
    """A counter's name."""
    return name.startswith(COUNTER_PREFIXES)
