"""The architectures the lab models, and where each one's code lives.

Every layer that differs by architecture finds the architecture's module here, by the
``arch`` of a PMU's capabilities (``PmuCaps.arch``), and imports it when first used
(``vpmu.arch.lazy``): the neutral layers import no architecture's module, and an architecture
is added by writing its modules and one entry below, not by editing the neutral code.

Presets, costs and designs have their own registries (``vpmu.arch.presets.PRESETS``, the
cost tables, ``vpmu.vpmu.registry``), since an architecture has several of each.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchEntry:
    """One architecture's modules, each ``module:attribute`` (or a module)."""

    name: str
    """``PmuCaps.arch``: "x86", "arm64"."""
    register_names: str
    """Register names for metrics and reports (``vpmu.arch.names.RegisterNames`` fields)."""
    cpu_model: str
    """The CPU model class (``vpmu.hw.core.CpuCore``) a preset of this architecture builds."""
    perf_driver: str
    """Host perf's PMU driver class (``vpmu.host.perf.driver.PerfDriver``)."""
    vcpu: str
    """The vCPU class: the neutral run loop plus this architecture's trap layer; empty for an
    architecture whose VMs are not modelled yet (a VM on it is refused)."""
    bare_metal: str
    """The function that executes this architecture's port operations on bare metal."""


ARCHES: dict[str, ArchEntry] = {
    "x86": ArchEntry(
        name="x86",
        register_names="vpmu.arch.x86.names",
        cpu_model="vpmu.hw.x86.cpu:X86Cpu",
        perf_driver="vpmu.host.perf.x86.driver:X86PerfDriver",
        vcpu="vpmu.machine.x86.vcpu:X86Vcpu",
        bare_metal="vpmu.machine.x86.bare:execute",
    ),
    "arm64": ArchEntry(
        name="arm64",
        register_names="vpmu.arch.arm64.names",
        cpu_model="vpmu.hw.arm64.cpu:ArmCpu",
        perf_driver="vpmu.host.perf.arm64.driver:ArmPerfDriver",
        vcpu="vpmu.machine.arm64.vcpu:ArmVcpu",
        bare_metal="vpmu.machine.arm64.bare:execute",
    ),
}
"""Every architecture the lab runs, by name."""


def arch_entry(arch: str) -> ArchEntry:
    """The entry of ``arch``; a clear error for one the lab does not model."""
    found = ARCHES.get(arch)
    if found is None:
        raise ValueError(f"architecture must be one of {sorted(ARCHES)}, not {arch!r}")
    return found
