"""The registry entry of ``none``."""

from vpmu.vpmu.registry import DesignEntry

ENTRY = DesignEntry(
    name="none", order=0, factory="vpmu.vpmu.designs.none:NoPmu", arches=("x86",),
    conformance={"platform": "kvm-none", "unsupported_legacy_perfctr01": "drop",
                 "max_version": 0, "kvm_vm_ioctls": True},
    pmu_disabled=True)
