"""The registry entry of ``partitioned``."""

from vpmu.vpmu.registry import DesignEntry

ENTRY = DesignEntry(
    name="partitioned", order=3, factory="vpmu.vpmu.designs.partitioned:PartitionedPmu",
    arches=("arm64",),
    defaults={"reserved_host_counters": 2, "nr_counters": "default"},
    conformance={"platform": "kvm-partitioned", "kvm_vm_ioctls": True,
                 "fixed_counters_only": False},
    conformance_cases=(("partitioned", "arm-n1"), ("partitioned", "arm-a720")),
    host_requirement="vpmu.vpmu.designs.partitioned:host_refusal", host_mode="perf")
