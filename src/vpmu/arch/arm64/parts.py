"""Arm cores by MIDR_EL1 (Implementer, PartNum), and the name Linux's arm_pmuv3 driver registers
each core's PMU under.

Linux names a core PMU after the device-tree compatible that probed it ("arm,cortex-a53-pmu"
-> ``armv8_cortex_a53``: the ``*_pmu_init`` functions and ``armv8_pmu_of_device_ids`` in
drivers/perf/arm_pmuv3.c@v6.6); the compatible follows the core, whose MIDR_EL1 part numbers
are arch/arm64/include/asm/cputype.h's ``ARM_CPU_PART_*``. A core without a dedicated entry
probes as the generic "arm,armv8-pmuv3" (``armv8_pmuv3``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

ARM_LTD = 0x41
"""MIDR_EL1.Implementer of Arm Ltd's own cores."""

PMU_NAMES: Mapping[tuple[int, int], str] = MappingProxyType({
    (ARM_LTD, 0xD03): "armv8_cortex_a53",
    (ARM_LTD, 0xD07): "armv8_cortex_a57",
    (ARM_LTD, 0xD08): "armv8_cortex_a72",
    (ARM_LTD, 0xD0C): "armv8_neoverse_n1",
    (ARM_LTD, 0xD80): "armv9_cortex_a520",
    (ARM_LTD, 0xD81): "armv9_cortex_a720",
})
"""(Implementer, PartNum) -> the PMU's name in /sys/bus/event_source/devices."""

GENERIC_PMU_NAME = "armv8_pmuv3"
"""The name of a PMUv3 probed through the generic compatible (``armv8_pmuv3_pmu_init``)."""


def pmu_name(implementer: int, part: int) -> str:
    """The arm_pmuv3 name of a core's PMU (the generic name for a core not in the table)."""
    return PMU_NAMES.get((implementer, part), GENERIC_PMU_NAME)
