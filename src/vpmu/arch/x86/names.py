"""x86 register names as reports print them: the kernel's msr-index.h names, which MSRs are
counters, selectors or global registers, and the MSRs of seed 001's per-PMI ratios
(Like Xu's is_paused thread, docs/sources.md)."""

from __future__ import annotations

from functools import cache

from vpmu.arch.x86.msrs import kernel_msr_name

COUNTER_PREFIXES = ("MSR_IA32_PMC", "MSR_IA32_PERFCTR", "MSR_ARCH_PERFMON_PERFCTR",
                    "MSR_CORE_PERF_FIXED_CTR", "MSR_K7_PERFCTR", "MSR_F15H_PERF_CTR")
"""Kernel names of counters (``MSR_CORE_PERF_FIXED_CTR_CTRL`` shares the fixed prefix and is
a selector: see ``register_kind``)."""
SELECTOR_PREFIXES = ("MSR_P6_EVNTSEL", "MSR_ARCH_PERFMON_EVENTSEL", "MSR_K7_EVNTSEL",
                     "MSR_F15H_PERF_CTL", "MSR_CORE_PERF_FIXED_CTR_CTRL")
"""Kernel names of event selectors (the fixed counters' control is their selector)."""
GLOBAL_PREFIXES = ("MSR_CORE_PERF_GLOBAL_", "MSR_AMD64_PERF_CNTR_GLOBAL_")
"""Kernel names of the global control and status MSRs."""
PER_PMI_REGISTERS = (
    ("global_ctrl_writes", "MSR_CORE_PERF_GLOBAL_CTRL", "write"),
    ("global_status_reads", "MSR_CORE_PERF_GLOBAL_STATUS", "read"),
    ("ovf_ctrl_writes", "MSR_CORE_PERF_GLOBAL_OVF_CTRL", "write"),
    ("lvt_pmi_writes", "IA32_X2APIC_LVT_PMI", "write"),
)
"""Seed 001's per-PMI ratios: (name, MSR, direction); counter writes are summed separately."""


def register_name(addr: int) -> str:
    """The MSR's kernel name (``kernel_msr_name``)."""
    return kernel_msr_name(addr)


@cache
def register_kind(addr: int) -> str | None:
    """"counter", "selector" or "global" for a PMU MSR, None for any other MSR."""
    name = kernel_msr_name(addr)
    if name.startswith(SELECTOR_PREFIXES):
        return "selector"
    if name.startswith(COUNTER_PREFIXES):
        return "counter"
    if name.startswith(GLOBAL_PREFIXES):
        return "global"
    return None


def is_counter_name(name: str) -> bool:
    """A counter's kernel name (not the fixed counters' control)."""
    return name.startswith(COUNTER_PREFIXES) and not name.endswith("_CTRL")
