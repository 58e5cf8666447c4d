"""``mediated``: the mediated (pass-through) vPMU of Linux 7.0 (arch/x86/kvm/pmu.c@v7.0).

The guest gets the host's counters; KVM switches the PMU between the host's events and the
guest's values, and perf refuses events that would count the guest while such VMs exist.

Host requirements (else the VM is refused, never silently downgraded): Intel PMU v4+ with
full-width writes (GLOBAL_CTRL through the VMCS, or the v6 autostore fallback pre-SPR), or
AMD PerfMonV2. Creating the PMU fails with EBUSY while any host event counts the guest (the
NMI watchdog does).

Options (``mediated:key=value``), each one of the debates of the seed threads (the
mailing-list threads docs/sources.md lists):
- ``switch_point``: where load and put happen. ``run-loop`` (upstream): around the fastpath
  loop, so every exit that leaves it pays put+load and the fastpath runs with the guest
  context loaded (a blind spot for host profiling). ``vm-entry``: at every entry and exit,
  fastpath included (RFC v1). ``vcpu-load``: at vcpu_load/vcpu_put, so the context stays
  loaded across exits while the thread runs (the cheapest; KVM itself is blind to the host).
- ``host_preemption``: what a host exclude_guest event opened while the guest owns the PMU
  does. ``ipi`` (upstream's effect: the install IPI makes the vCPU exit and put; seed 000's
  "hard requirement"): the guest is switched out at once, and with ``vcpu-load`` every later
  exit puts while host events want the CPU. ``deferred``: the event waits for the next
  switch point (seed 000's rejected "inject a state").
- ``clear_on_put``: what put zeroes. ``upstream``: the non-zero counters and selectors (and
  FIXED_CTR_CTRL). ``none``: nothing (seed 003's leak). ``all``: every exposed counter and
  selector. ``guest-used``: selectors, and the counters whose selector the guest has ever
  enabled (seed 003's option a; a counter the guest writes without enabling it still leaks).
- ``elide_writes`` (default true, upstream: commit b0b6a8d3be16, posted as "[PATCH v6 34/44]
  KVM: x86/pmu: Elide WRMSRs when loading guest PMCs if values already match"): at load, write a
  counter only if the hardware value differs (RDPMC first).
- ``guest_counters``: how many of the host's GP counters the guest gets (default ``all``);
  fewer makes the global registers and RDPMC exit (``vmx_recalc_pmu_msr_intercepts``).
- ``lbr`` (default false, as upstream: "[PATCH v6 17/44]", 5 Dec 2025, disables LBR with the
  mediated PMU): true gives the guest the host's legacy LBR, owned while its context is
  loaded: LBR MSRs passed through, DEBUGCTL in the VMCS as with ``emulated``, and the stack
  saved and the LBR reset at every put, restored at every load, at ``switch_point`` (what
  nobody has measured upstream; ``vpmu.vpmu.x86.lbr`` PMU_SWITCH).
- ``passthrough``: which PMU MSRs the guest reaches without an exit. ``counters`` (upstream):
  the counters (and the global registers and RDPMC when
  ``vmx_recalc_pmu_msr_intercepts`` passes them through), while the event selectors
  and FIXED_CTR_CTRL always exit, so KVM applies KVM_SET_PMU_EVENT_FILTER to the hardware
  copies. ``all``: the selectors of the guest's counters and FIXED_CTR_CTRL pass through
  too, as in the "all passthrough" variant the series' first version measured ("[RFC PATCH
  00/41] KVM: x86/pmu: Introduce passthrough vPM", 26 Jan 2024: 4.24% / 7.34% guest overhead
  against 6.21% / 10.45% with the selectors intercepted); put saves them (RDMSR) and load
  restores them like the counters, and KVM can no longer enforce the event filter
  (``enforces_event_filter`` is False).

Assumption (the series as read does not say whether a mediated guest is offered PMU v4+): the
guest enumerates PMU version min(host, 2), like
the emulated design, with all the host's fixed counters.
"""

from __future__ import annotations

from collections.abc import Mapping

from vpmu.arch.x86.caps import X86PmuCaps, x86_caps
from vpmu.vpmu.design import coerce_options
from vpmu.vpmu.designs.mediated.entry import ENTRY
from vpmu.vpmu.designs.mediated.vcpu import MediatedOptions, MediatedVcpu
from vpmu.vpmu.x86.access import X86VcpuHandle
from vpmu.vpmu.x86.ops import CapLimits, ops_for


class MediatedPmu:
    """The ``mediated`` design."""

    name = "mediated"
    defaults: Mapping[str, object] = ENTRY.defaults

    def __init__(self, options: Mapping[str, str]) -> None:
        self.options = coerce_options(self.name, self.defaults, tuple(options.items()),
                                      ENTRY.choices)
        gc = str(self.options["guest_counters"])
        if gc != "all" and not (gc.isdigit() and int(gc) >= 0):
            raise ValueError(f"design 'mediated' option guest_counters must be 'all' or a "
                             f"count >= 0, not {gc!r}")
        self._admitted = False

    @property
    def enforces_event_filter(self) -> bool:
        """Whether KVM_SET_PMU_EVENT_FILTER holds for this VM's guests: not with
        ``passthrough=all``, where the guest programs the selectors without an exit."""
        return self.options["passthrough"] != "all"

    def __repr__(self) -> str:
        return f"MediatedPmu(options={self.options!r})"

    def guest_caps(self, host: X86PmuCaps) -> X86PmuCaps:
        """The PMU userspace asked for (the host's unless a shape changed it), with at most
        ``guest_counters`` GP counters, version at most 2, no PEBS, and LBR only with the
        option ``lbr`` (not upstream: the series leaves LBR out)."""
        gc = str(self.options["guest_counters"])
        if gc != "all" and int(gc) > host.n_gp:
            raise ValueError(f"design 'mediated' option guest_counters={gc} exceeds the host's "
                             f"{host.n_gp} GP counters (the guest gets a subset of them)")
        # Upstream caps every vPMU at 3 fixed and 8 Intel / 6 AMD GP counters (the emulated
        # design caps Intel's); here the guest keeps all the host's (the docstring's assumption).
        limits = CapLimits(n_gp=host.n_gp if gc == "all" else int(gc),
                           lbr=bool(self.options["lbr"]))
        return ops_for(host).refresh(host, limits)

    def create_vcpu(self, vcpu: X86VcpuHandle) -> MediatedVcpu:
        """The first vCPU creates the VM's mediated PMU (perf_create_mediated_pmu; the VM has
        checked the host against the entry's requirement); a refusal refuses the VM."""
        host = x86_caps(vcpu.host.preset.caps)
        if not self._admitted:
            errno = vcpu.perf.create_mediated_pmu()
            if errno:
                raise ValueError(f"design 'mediated' refused ({errno}): a host perf event "
                                 f"counts the guest (exclude_guest=0, e.g. the NMI watchdog); "
                                 f"disable it or open host events with exclude_guest")
            self._admitted = True
        opts = MediatedOptions(str(self.options["switch_point"]),
                               str(self.options["host_preemption"]),
                               str(self.options["clear_on_put"]),
                               bool(self.options["elide_writes"]),
                               str(self.options["passthrough"]))
        return MediatedVcpu(vcpu, x86_caps(vcpu.caps), host, opts)
