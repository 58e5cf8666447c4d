"""The x86 CPU presets as data: each names a real part's PMU shape, clocks and pipeline width.

Sources: PMU shapes from the Intel SDM Vol. 3B ch. 20 (CPUID.0xA per microarchitecture) and
the AMD APM Vol. 2 ch. 13 / Zen PPRs; family/model numbers from intel/perfmon ``mapfile.csv``
(github.com/intel/perfmon) and the PPRs; clocks are the named SKU's base frequency from its product
brief. PERF_CAPABILITIES values are assembled from the fields the SDM lists for each
generation, not dumped from a machine (estimate). The cost table is added by later issues,
each number with its source.
"""

from __future__ import annotations

from vpmu.arch.preset import CpuPreset
from vpmu.arch.x86.caps import (
    PERF_CAP_PEBS_ARCH_REG,
    PERF_CAP_PEBS_BASELINE,
    PERF_CAP_PEBS_TIMING_INFO,
    PERF_CAP_PEBS_TRAP,
    PERF_CAP_PERF_METRICS,
    PERF_CAP_SMM_FREEZE,
    X86PmuCaps,
)

_PEBS_SKL = PERF_CAP_PEBS_TRAP | PERF_CAP_PEBS_ARCH_REG | PERF_CAP_SMM_FREEZE
_PEBS_ICX = _PEBS_SKL | PERF_CAP_PEBS_BASELINE | PERF_CAP_PERF_METRICS
_PEBS_SPR = _PEBS_ICX | PERF_CAP_PEBS_TIMING_INFO

X86_PRESETS: tuple[CpuPreset, ...] = (
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
)
"""The x86 presets, in listing order."""
