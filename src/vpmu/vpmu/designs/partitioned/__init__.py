"""``partitioned``: the partitioned PMU proposed for KVM/arm64 (not merged; docs/partitioned.md).

The series "KVM: arm64: Implement a Partitioned PMU" (Colton Lewis, v8 12 Jun 2026 and v9
24 Sep 2026), modelled at v8 (``vpmu.vpmu.arm64.partition``).

The host's arm_pmuv3 driver is booted with ``arm_pmuv3.reserved_host_counters``: a guest may
own event counters [0, N - reserved) and the cycle counter, reserved on a CPU only while one
of its vCPUs is loaded there with its PMU in use (GUEST_OWNED); host perf takes counters from
the highest down and loses the guest's while they are reserved. The VM sets
KVM_ARM_VCPU_PMU_V3_ENABLE_PARTITION; its N (MDCR_EL2.HPMN) is at most the guest's maximum.
With FEAT_FGT (Armv8.6; here PMUv3p7 presets) the guest reaches its counters without exits,
except the overflow flags, the event types and PMCEID; without it (Neoverse N1) every access
still traps, but the context lives in the hardware and no perf event is created.

Options (``partitioned:key=value``):
- ``reserved_host_counters`` (default 2): the driver's module parameter, 0..N: the counters
  the host keeps while a guest owns the rest (assumption: the series defaults to -1, no
  partition; 2 leaves the host an event pair such as cycles and instructions). Every
  partitioned VM of a host must give the same value (it is the host's boot parameter).
- ``nr_counters`` (default ``default``: N - reserved_host_counters): the VM's N, which
  becomes MDCR_EL2.HPMN: KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS after ENABLE_PARTITION, at most
  the guest's maximum (above it the attribute fails, EINVAL, and the vCPU does not run). The
  reservation is still the guest's maximum (``kvm_pmu_guest_counter_mask``).

Hosts: VHE only (EPERM otherwise: the A53 and A72 presets boot nVHE), and one core PMU
(assumption: the model partitions a homogeneous host; the series does not say how a
big.LITTLE host's PMUs with different N share one VM's HPMN).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vpmu.arch.arm64.caps import PMUVER_V3P1, ArmPmuCaps
from vpmu.host.perf.arm64.driver import ArmPerfDriver
from vpmu.vpmu.arm64.access import ArmVcpuHandle
from vpmu.vpmu.arm64.host_pmu import KvmArch
from vpmu.vpmu.arm64.sysregs import kvm_pmu_caps
from vpmu.vpmu.arm64.vmm import VmmPmuConfig
from vpmu.vpmu.design import coerce_options
from vpmu.vpmu.designs.partitioned.entry import ENTRY
from vpmu.vpmu.designs.partitioned.vcpu import PartitionedVcpu


def host_refusal(host: Any) -> str:
    """What the host lacks for a partitioned PMU: VHE (``has_vhe()``, inferred from PMUv3p1
    as the host's driver does: ``vpmu.host.perf.arm64.driver.vhe_host``)."""
    if not isinstance(host, ArmPmuCaps) or host.pmuver < PMUVER_V3P1:
        return "a VHE host (Armv8.1 or later; the partitioned PMU series refuses others, EPERM)"
    return ""


class PartitionedPmu:
    """The ``partitioned`` design (one per VM)."""

    name = "partitioned"
    defaults: Mapping[str, object] = ENTRY.defaults

    def __init__(self, options: Mapping[str, str]) -> None:
        self.options = coerce_options(self.name, self.defaults, tuple(options.items()),
                                      ENTRY.choices)
        self.kvm_arch = KvmArch()
        self._configured = False

    def __repr__(self) -> str:
        return f"PartitionedPmu(options={self.options!r})"

    @property
    def reserved(self) -> int:
        return int(str(self.options["reserved_host_counters"]))

    def hpmn(self, host: ArmPmuCaps) -> int:
        """The VM's N as the guest enumerates it: ``nr_counters``, or the guest's maximum
        (above it, SET_NR_COUNTERS fails and the guest never runs)."""
        most = host.n_counters - self.reserved
        asked = self._nr_counters()
        return most if asked is None else min(asked, most)

    def _nr_counters(self) -> int | None:
        """The ``nr_counters`` option: SET_NR_COUNTERS's argument, None for ``default``."""
        raw = str(self.options["nr_counters"])
        if raw == "default":
            return None
        if not raw.isdigit():
            raise ValueError(f"design 'partitioned' option nr_counters must be an integer "
                             f"or 'default', not {raw!r}")
        return int(raw)

    def guest_caps(self, host: ArmPmuCaps) -> ArmPmuCaps:
        """KVM's guest PMU on the host PMU with N = ``hpmn``."""
        if not 0 <= self.reserved <= host.n_counters:
            raise ValueError(f"design 'partitioned' option reserved_host_counters must be "
                             f"0-{host.n_counters} (PMCR_EL0.N), not {self.reserved}")
        return kvm_pmu_caps(host).replace(n_counters=self.hpmn(host))

    def create_vcpu(self, vcpu: ArmVcpuHandle) -> PartitionedVcpu:
        """The first vCPU boots the host's driver partitioned (its module parameter); a
        host it cannot partition refuses the VM."""
        if not self._configured:
            self._configured = True
            self._configure_host(vcpu)
        config = VmmPmuConfig(nr_counters=self._nr_counters(), partition=True)
        return PartitionedVcpu(vcpu, self.kvm_arch, config)

    def _configure_host(self, vcpu: Any) -> None:
        perf = vcpu.perf
        if len(perf.pmus) != 1:
            raise ValueError("design 'partitioned' models hosts with one core PMU, not "
                             f"{[p.name for p in perf.pmus]}")
        for drv in perf.drivers:
            assert isinstance(drv, ArmPerfDriver)
            if not drv.vhe:
                raise ValueError("design 'partitioned' refused (EPERM): the host is not VHE "
                                 "(its kernel runs at EL1: an Armv8.0 core, or vhe = false)")
            if drv.partitioned and drv.max_guest_counters != drv.caps.n_counters - self.reserved:
                raise ValueError("design 'partitioned': every partitioned VM of a host must "
                                 "give the same reserved_host_counters (a boot parameter)")
            if not drv.partitioned:
                drv.configure_partition(self.reserved)
