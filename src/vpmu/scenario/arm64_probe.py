"""The records the ``arm64`` results block needs from an arm64 VM's vCPUs: a ``VcpuLoad`` at
each vcpu_load (the VM's host PMU, whether it covers the CPU, the guest's cycle counter) and a
``VcpuPut`` at each vcpu_put.

A preempt notifier registered on each vCPU thread after KVM's own (so it runs after
kvm_arch_vcpu_load has chosen the VM's PMU at the first load, and after vcpu_put): it takes
no time and changes nothing. It reads the design's per-vCPU state duck-typed (pmu-emul.c's
``KvmPmu``: ``kvm.arm_pmu``, ``counter``, ``pmc``); a design without that state gets records
with ``pmu`` "" and ``counting`` False. Installed only on arm64 hosts, so x86 runs emit
nothing new. It belongs in the arm64 vCPU (``vpmu.machine.arm64.vcpu``) once that file is
free to change; the records stay the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vpmu.arch.arm64.caps import CYCLE_IDX
from vpmu.host.perf.core import PerfSubsystem
from vpmu.trace.records import VcpuLoad, VcpuPut

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.machine.vcpu import Vcpu

MASK64 = (1 << 64) - 1


class VcpuProbe:
    """A vCPU thread's preempt notifier that emits ``VcpuLoad`` / ``VcpuPut``."""

    def __init__(self, vcpu: Vcpu) -> None:
        self.vcpu = vcpu

    def __repr__(self) -> str:
        return f"VcpuProbe({self.vcpu.task.name!r})"

    def _state(self) -> Any:
        return getattr(self.vcpu, "arm_pmu", None)

    def _cycles(self) -> int:
        """PMCCNTR_EL0 as the guest would read it (shadow + its event's count, read without
        KVM's cost: a probe), -1 while the cycle counter has no perf event."""
        state, perf = self._state(), self.vcpu.host.perf
        pmc = getattr(state, "pmc", None)
        if not isinstance(perf, PerfSubsystem) or not pmc or len(pmc) <= CYCLE_IDX \
                or pmc[CYCLE_IDX].perf_event is None:
            return -1
        count, _, _ = perf.read(pmc[CYCLE_IDX].perf_event)
        return int(state.counter[CYCLE_IDX] + count) & MASK64

    def sched_in(self, cpu: Pcpu) -> int:
        """After kvm_arch_vcpu_load: the VM's PMU and whether it counts on ``cpu``."""
        v, state = self.vcpu, self._state()
        arm_pmu = getattr(getattr(state, "kvm", None), "arm_pmu", None)
        counting_pmu = getattr(state, "counting_pmu", None)
        pmu = counting_pmu(cpu.index) if counting_pmu is not None else None
        counting = pmu is not None
        name = str(pmu.name) if pmu is not None else "" if arm_pmu is None else str(arm_pmu.name)
        v.host.trace.emit(VcpuLoad(v.host.env.now_ps, cpu.index, v.vm.name, v.index,
                                   v.task.name, name, counting, self._cycles()))
        return 0

    def sched_out(self, cpu: Pcpu) -> int:
        """After kvm_arch_vcpu_put."""
        v = self.vcpu
        v.host.trace.emit(VcpuPut(v.host.env.now_ps, cpu.index, v.vm.name, v.index,
                                  v.task.name, self._cycles()))
        return 0


def install_probes(vcpus: list[Vcpu]) -> None:
    """Register a probe on each arm64 vCPU's thread (nothing on another architecture)."""
    for v in vcpus:
        if v.host.preset.caps.arch == "arm64":
            v.task.notifiers.append(VcpuProbe(v))
