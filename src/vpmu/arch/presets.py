"""Every built-in preset: the CPU presets of each architecture, and the hosts whose clusters
carry different CPU presets (big.LITTLE SoCs).

A CPU preset (``CpuPreset``) is one core model: its PMU, clocks and width; a homogeneous host
is any number of CPUs of one CPU preset. A host preset (``HostPreset``) names a real machine's
clusters, each with its CPU preset, in the order their PMUs register with perf. Each
architecture declares its presets, with their sources, in ``vpmu.arch.<arch>.presets``; this
module lists them together (names are unique across architectures and kinds).
"""

from __future__ import annotations

from vpmu.arch.arm64.presets import ARM_HOSTS, ARM_PRESETS
from vpmu.arch.preset import Cluster, CpuPreset, HostPreset
from vpmu.arch.x86.presets import X86_PRESETS

PRESETS: dict[str, CpuPreset] = {p.name: p for p in (*X86_PRESETS, *ARM_PRESETS)}
"""Every built-in CPU preset by name, x86 first."""

HOST_PRESETS: dict[str, HostPreset] = {h.name: h for h in ARM_HOSTS}
"""Every built-in host preset (a machine whose clusters differ) by name."""

assert not set(PRESETS) & set(HOST_PRESETS), "a preset name names one thing"


def get_preset(name: str) -> CpuPreset:
    """Look a CPU preset up by name; the error lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, not {name!r}") from None


def as_preset(preset: str | CpuPreset) -> CpuPreset:
    """A preset given by name or as itself (what every ``preset=`` argument accepts)."""
    return get_preset(preset) if isinstance(preset, str) else preset


PRESET_NAMES: tuple[str, ...] = (*PRESETS, *HOST_PRESETS)
"""Every name a scenario's ``[host] preset`` may give: CPU presets, then host presets."""


def boot_preset(name: str) -> CpuPreset:
    """The CPU preset a preset name runs its boot CPU (CPU 0) on: a CPU preset itself, or a
    host preset's first cluster's (what a host has no per-CPU answer for uses: the clock of
    a scenario's durations, the host's default costs)."""
    host = HOST_PRESETS.get(name)
    return host.clusters[0].preset if host is not None else get_preset(name)


def cpu_preset(name: str, cpu: int) -> CpuPreset:
    """The CPU preset CPU ``cpu`` of a host of the preset ``name`` runs: a CPU preset
    itself, or the preset of the host preset's cluster holding that CPU."""
    layout = host_layout(name)
    return layout if isinstance(layout, CpuPreset) else layout.preset_of(cpu)


def host_layout(name: str) -> CpuPreset | HostPreset:
    """What ``Host`` builds for a preset name: a host preset's clusters, or a CPU preset
    (repeated over the host's CPUs)."""
    return HOST_PRESETS.get(name) or get_preset(name)


def get_host_preset(name: str) -> HostPreset:
    """Look a host preset up by name; the error lists the valid names."""
    try:
        return HOST_PRESETS[name]
    except KeyError:
        raise ValueError(f"host preset must be one of {sorted(HOST_PRESETS)}, "
                         f"not {name!r}") from None


__all__ = ["HOST_PRESETS", "PRESETS", "PRESET_NAMES", "Cluster", "CpuPreset", "HostPreset",
           "as_preset", "boot_preset", "get_host_preset", "get_preset", "host_layout"]
