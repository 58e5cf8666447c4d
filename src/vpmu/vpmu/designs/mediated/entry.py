"""The registry entry of ``mediated``."""

from vpmu.vpmu.registry import DesignEntry

ENTRY = DesignEntry(
    name="mediated", order=2, factory="vpmu.vpmu.designs.mediated:MediatedPmu", arches=("x86",),
    defaults={"switch_point": "run-loop", "host_preemption": "ipi", "clear_on_put": "upstream",
              "elide_writes": True, "guest_counters": "all", "lbr": False,
              "passthrough": "counters"},
    choices={"switch_point": ("run-loop", "vm-entry", "vcpu-load"),
             "host_preemption": ("ipi", "deferred"),
             "clear_on_put": ("upstream", "none", "all", "guest-used"),
             "passthrough": ("counters", "all")},
    host_requirement="vpmu.vpmu.designs.mediated.vendor:host_refusal",
    conformance={"platform": "kvm-mediated", "unsupported_legacy_perfctr01": "drop",
                 "max_version": 2, "kvm_vm_ioctls": True},
    conformance_cases=(
        ("mediated", "intel-skl"), ("mediated", "intel-icx"), ("mediated", "amd-zen4"),
        ("mediated", "amd-zen5"),
        ("mediated:switch_point=vcpu-load,host_preemption=deferred", "intel-skl"),
        ("mediated:switch_point=vm-entry,clear_on_put=none", "amd-zen4"),
        ("mediated:lbr=true", "intel-skl"),
        # The filter selftests expect counting here (Expectations.event_filter_enforced).
        # Not on AMD: kvm-unit-tests pmu check_counter_overflow fails there, since no
        # GuestOnly is stuffed and the guest's counters count host code ("[PATCH v6 26/44]").
        ("mediated:passthrough=all", "intel-icx")),
    host_mode="mediated",
    exclusive_reason="KVM's enable_mediated_pmu is per host, and perf refuses an emulated "
                     "vPMU's events while mediated VMs exist")
