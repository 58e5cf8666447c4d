"""The registry entry of ``emulated``."""

from vpmu.vpmu.registry import DesignEntry

ENTRY = DesignEntry(
    name="emulated", order=1, factory="vpmu.vpmu.designs.emulated:EmulatedPmu",
    conformance={"platform": "kvm-emulated", "unsupported_legacy_perfctr01": "drop",
                 "max_version": 2, "kvm_vm_ioctls": True},
    host_mode="perf", default=True)
