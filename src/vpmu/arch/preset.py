"""What a preset is: one CPU model (its PMU, clocks and width) and a host's CPUs as clusters
of presets. The built-in presets are declared per architecture (``vpmu.arch.x86.presets``,
``vpmu.arch.arm64.presets``) and listed together in ``vpmu.arch.presets``."""

from __future__ import annotations

from dataclasses import dataclass, replace

from vpmu.arch.caps import PmuCaps


@dataclass(frozen=True, slots=True)
class CpuPreset:
    """One CPU model: what the hardware PMU is and how fast the core runs."""

    name: str
    description: str
    caps: PmuCaps
    """The PMU as its architecture enumerates it (``X86PmuCaps``, ``ArmPmuCaps``)."""
    core_mhz: int
    """Core clock while running (the SKU's base frequency; turbo is not modelled)."""
    tsc_mhz: int
    """TSC / reference-cycle clock."""
    pipeline_width: int
    """Top-down slots per cycle (TOPDOWN.SLOTS = width x cycles)."""
    costs: str = ""
    """Which cost table the part uses (``vpmu.host.costs``); defaults to its own name, and a
    variant made with ``dataclasses.replace(name=...)`` keeps its parent's."""

    def __post_init__(self) -> None:
        if not self.costs:
            object.__setattr__(self, "costs", self.name)

    @property
    def vendor(self) -> str:
        """``"intel"``, ``"amd"`` or ``"arm"``."""
        return self.caps.vendor

    def with_caps(self, **changes: object) -> CpuPreset:
        """A hardware variant of this preset (conformance sweeps over PMU shapes)."""
        return replace(self, caps=self.caps.replace(**changes))


@dataclass(frozen=True, slots=True)
class Cluster:
    """CPUs that carry the same PMU: one ``struct pmu`` instance in Linux (the one x86 core
    PMU, hybrid ``cpu_core`` / ``cpu_atom``, an ``armv8_pmuv3_N`` per big.LITTLE cluster)."""

    cpus: tuple[int, ...]
    """The CPU numbers, as the kernel numbers them."""
    preset: CpuPreset
    """The PMU, clocks and width of these CPUs."""


@dataclass(frozen=True, slots=True)
class HostPreset:
    """A host's CPUs as clusters, in the order their PMUs register with perf (which decides,
    for example, an arm64 VM's default PMU). A homogeneous host is one cluster."""

    name: str
    clusters: tuple[Cluster, ...]

    def __post_init__(self) -> None:
        flat = sorted(c for cl in self.clusters for c in cl.cpus)
        if not self.clusters or flat != list(range(len(flat))):
            raise ValueError(f"host preset {self.name!r}: clusters must partition CPUs "
                             f"0..N-1, not {[cl.cpus for cl in self.clusters]!r}")
        arches = {cl.preset.caps.arch for cl in self.clusters}
        if len(arches) != 1:
            raise ValueError(f"host preset {self.name!r}: one architecture per host, not "
                             f"{sorted(arches)}")

    @classmethod
    def homogeneous(cls, preset: CpuPreset, cpus: int,
                    groups: tuple[tuple[int, ...], ...] | None = None) -> HostPreset:
        """``cpus`` CPUs of one preset (under its name), in one cluster or in ``groups``
        (scheduling domains that share the PMU model)."""
        groups = groups or (tuple(range(cpus)),)
        return cls(preset.name, tuple(Cluster(g, preset) for g in groups))

    @property
    def ncpus(self) -> int:
        """How many CPUs the host has."""
        return sum(len(cl.cpus) for cl in self.clusters)

    @property
    def arch(self) -> str:
        """The architecture of every cluster."""
        return self.clusters[0].preset.caps.arch

    def cluster_of(self, cpu: int) -> int:
        """The index of the cluster ``cpu`` belongs to."""
        return next(i for i, cl in enumerate(self.clusters) if cpu in cl.cpus)

    def preset_of(self, cpu: int) -> CpuPreset:
        """The CPU preset of ``cpu``: its cluster's."""
        return self.clusters[self.cluster_of(cpu)].preset

    @property
    def single(self) -> CpuPreset | None:
        """The one CPU preset of a host whose clusters all carry the same one, else None."""
        presets = {cl.preset for cl in self.clusters}
        return presets.pop() if len(presets) == 1 else None
