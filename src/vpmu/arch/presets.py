"""CPU presets as data: each names a real part's PMU shape, clocks and pipeline width.

Sources: PMU shapes from the Intel SDM Vol. 3B ch. 20 (CPUID.0xA per microarchitecture) and
the AMD APM Vol. 2 ch. 13 / Zen PPRs; family/model numbers from intel/perfmon ``mapfile.csv``
(github.com/intel/perfmon) and the PPRs; clocks are the named SKU's base frequency from its product
brief. PERF_CAPABILITIES values are assembled from the fields the SDM lists for each
generation, not dumped from a machine (estimate). The cost table is added by later issues,
each number with its source.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpmu.arch.x86.caps import (
    PERF_CAP_PEBS_ARCH_REG,
    PERF_CAP_PEBS_BASELINE,
    PERF_CAP_PEBS_TIMING_INFO,
    PERF_CAP_PEBS_TRAP,
    PERF_CAP_PERF_METRICS,
    PERF_CAP_SMM_FREEZE,
    X86PmuCaps,
)


@dataclass(frozen=True, slots=True)
class CpuPreset:
    """One CPU model: what the hardware PMU is and how fast the core runs."""

    name: str
    description: str
    caps: X86PmuCaps
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
        """``"intel"`` or ``"amd"``."""
        return self.caps.vendor

    def with_caps(self, **changes: object) -> CpuPreset:
        """A hardware variant of this preset (conformance sweeps over PMU shapes)."""
        from dataclasses import replace
        return replace(self, caps=self.caps.replace(**changes))


_PEBS_SKL = PERF_CAP_PEBS_TRAP | PERF_CAP_PEBS_ARCH_REG | PERF_CAP_SMM_FREEZE
_PEBS_ICX = _PEBS_SKL | PERF_CAP_PEBS_BASELINE | PERF_CAP_PERF_METRICS
_PEBS_SPR = _PEBS_ICX | PERF_CAP_PEBS_TIMING_INFO

PRESETS: dict[str, CpuPreset] = {p.name: p for p in (
    CpuPreset(
        "intel-skl", "Skylake-SP, Xeon Gold 6148 (HT on)",
        X86PmuCaps("intel", 6, 0x55, version=4, n_gp=4, n_fixed=3, ebx_length=7, pdcm=True,
                   lbr_format=5, pebs_format=3, perf_cap_extra=_PEBS_SKL, fw_write=True,
                   lbr_depth=32, tsx=True),
        core_mhz=2400, tsc_mhz=2400, pipeline_width=4),
    CpuPreset(
        "intel-icx", "Ice Lake-SP, Xeon Platinum 8380",
        X86PmuCaps("intel", 6, 0x6A, version=5, n_gp=8, n_fixed=4, ebx_length=8,
                   fixed_mask=0xF, anythread_deprecated=True, pdcm=True, lbr_format=5,
                   pebs_format=4, perf_cap_extra=_PEBS_ICX, fw_write=True, lbr_depth=32,
                   tsx=True),
        core_mhz=2300, tsc_mhz=2300, pipeline_width=5),
    CpuPreset(
        "intel-spr", "Sapphire Rapids, Xeon Platinum 8480+ (arch LBR)",
        X86PmuCaps("intel", 6, 0x8F, version=5, n_gp=8, n_fixed=4, ebx_length=8,
                   fixed_mask=0xF, anythread_deprecated=True, pdcm=True, lbr_format=0x3F,
                   pebs_format=5, perf_cap_extra=_PEBS_SPR, fw_write=True, lbr_depth=32,
                   tsx=True),
        core_mhz=2000, tsc_mhz=2000, pipeline_width=6),
    CpuPreset(
        "intel-emr", "Emerald Rapids, Xeon Platinum 8592+ (arch LBR)",
        X86PmuCaps("intel", 6, 0xCF, version=5, n_gp=8, n_fixed=4, ebx_length=8,
                   fixed_mask=0xF, anythread_deprecated=True, pdcm=True, lbr_format=0x3F,
                   pebs_format=5, perf_cap_extra=_PEBS_SPR, fw_write=True, lbr_depth=32,
                   tsx=True),
        core_mhz=1900, tsc_mhz=1900, pipeline_width=6),
    CpuPreset(
        "amd-zen4", "Zen 4 Genoa, EPYC 9654",
        X86PmuCaps("amd", 0x19, 0x11, version=2, n_gp=6, perfctr_core=True, perfmon_v2=True),
        core_mhz=2400, tsc_mhz=2400, pipeline_width=6),
    CpuPreset(
        "amd-zen5", "Zen 5 Turin, EPYC 9755",
        X86PmuCaps("amd", 0x1A, 0x02, version=2, n_gp=6, perfctr_core=True, perfmon_v2=True),
        core_mhz=2700, tsc_mhz=2700, pipeline_width=8),
)}
"""Every built-in preset by name."""


def get_preset(name: str) -> CpuPreset:
    """Look a preset up by name; the error lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, not {name!r}") from None


def as_preset(preset: str | CpuPreset) -> CpuPreset:
    """A preset given by name or as itself (what every ``preset=`` argument accepts)."""
    return get_preset(preset) if isinstance(preset, str) else preset


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

    @property
    def single(self) -> CpuPreset | None:
        """The one CPU preset of a host whose clusters all carry the same one, else None."""
        presets = {cl.preset for cl in self.clusters}
        return presets.pop() if len(presets) == 1 else None
