"""The registry entry of ``emulated``."""

from vpmu.vpmu.registry import DesignEntry

ENTRY = DesignEntry(
    name="emulated", order=1, factory="vpmu.vpmu.designs.emulated:EmulatedPmu",
    arches=("x86", "arm64"),
    defaults={"is_paused": True, "reuse_perf_events": True, "emulated_instructions": True,
              "lbr": True, "lbr_save_point": "thread-switch", "lbr_ownership": "first-come"},
    choices={"lbr_save_point": ("thread-switch", "vm-transition"),
             "lbr_ownership": ("first-come", "cpu-event-precedence", "guest-precedence")},
    conformance={"platform": "kvm-emulated", "unsupported_legacy_perfctr01": "drop",
                 "max_version": 2, "kvm_vm_ioctls": True},
    conformance_cases=(("emulated", "intel-skl"), ("emulated", "intel-icx"),
                       ("emulated", "amd-zen4"), ("emulated", "arm-a53"),
                       ("emulated", "arm-a72"), ("emulated", "arm-n1"), ("emulated", "arm-a520"),
                       ("emulated", "arm-a720")),
    host_mode="perf", default=True)
