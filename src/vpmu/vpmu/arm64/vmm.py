"""What the VMM does with the vCPU PMU attributes before the first KVM_RUN, from the design
options (``pmu``, ``nr_counters``): QEMU's order (target/arm/kvm.c kvm_arm_pmu_init /
kvm_arm_pmu_set_irq), the VM-wide ones through the first vCPU.

At KVM_ARM_VCPU_INIT KVM picks the default PMU (``choose_arm_pmu``); then, once per VM,
SET_PMU (``pmu=<name>``) or the proposal's FIXED_COUNTERS_ONLY (``pmu=fixed-counters-only``),
the filters, SET_NR_COUNTERS (``nr_counters``); then per vCPU IRQ (PPI 23) and INIT. An
attribute's error is the vCPU's outcome (``AttrRefused``): the VMM gives up before KVM_RUN.
Assumption: the VM-wide attributes go through the first vCPU the host loads, as a VMM sets
them once before running any vCPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpmu.hw.arm64.gic import PMU_PPI
from vpmu.vpmu.arm64.attrs import PmuV3Attr, VcpuPmuAttrs, set_attr
from vpmu.vpmu.arm64.host_pmu import KvmArch, choose_arm_pmu
from vpmu.vpmu.arm64.partition import enable_partition
from vpmu.vpmu.arm64.pmu_filter import EventFilter

if TYPE_CHECKING:
    from vpmu.host.perf.core import PerfSubsystem

PMU_DEFAULT, PMU_FIXED_COUNTERS_ONLY = "default", "fixed-counters-only"


@dataclass(frozen=True, slots=True)
class VmmPmuConfig:
    """The PMU configuration a VMM asks for."""

    pmu: str = PMU_DEFAULT
    """``default`` (no SET_PMU), a host PMU's name (SET_PMU with its perf type) or
    ``fixed-counters-only`` (the proposal's opt-in)."""
    nr_counters: int | None = None
    """SET_NR_COUNTERS; None: not set (the PMU's N)."""
    filters: tuple[EventFilter, ...] = ()
    irq: int = PMU_PPI
    partition: bool = False
    """KVM_ARM_VCPU_PMU_V3_ENABLE_PARTITION (the partitioned PMU series), before
    SET_NR_COUNTERS."""


@dataclass(frozen=True, slots=True)
class AttrRefused:
    """A vCPU attribute failed: the VMM stops before KVM_RUN (the vCPU's outcome)."""

    attr: str
    errno: str


def configure_vcpu(kvm: KvmArch, vcpu: VcpuPmuAttrs, perf: PerfSubsystem,
                   config: VmmPmuConfig, cpu: int) -> AttrRefused | None:
    """KVM_ARM_VCPU_INIT on ``cpu`` then the attributes, in the VMM's order."""
    if vcpu not in kvm.vcpus:
        kvm.vcpus.append(vcpu)
    choose_arm_pmu(kvm, perf, cpu)
    steps: list[tuple[PmuV3Attr, object]] = []
    if not kvm.configured:
        kvm.configured = True
        if config.pmu == PMU_FIXED_COUNTERS_ONLY:
            steps.append((PmuV3Attr.FIXED_COUNTERS_ONLY, None))
        elif config.pmu != PMU_DEFAULT:
            pmu_type = next((p.type for p in perf.pmus if p.name == config.pmu), -1)
            steps.append((PmuV3Attr.SET_PMU, pmu_type))
        steps += [(PmuV3Attr.FILTER, f) for f in config.filters]
        if config.partition:
            err = enable_partition(kvm, perf, True)
            if err is not None:
                return AttrRefused("ENABLE_PARTITION", err.name)
        if config.nr_counters is not None:
            steps.append((PmuV3Attr.SET_NR_COUNTERS, config.nr_counters))
    steps += [(PmuV3Attr.IRQ, config.irq), (PmuV3Attr.INIT, None)]
    for attr, arg in steps:
        err = set_attr(kvm, vcpu, perf, attr, arg)
        if err is not None:
            return AttrRefused(attr.name, err.name)
    return None
