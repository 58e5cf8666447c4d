"""A VM on a host: a design, the guest PMU it exposes, and its vCPUs (host tasks).

``Vm(host, design, guests)`` creates one vCPU per guest OS and spawns its thread on the host;
the host's run then runs them with everything else on the machine. ``run_vm_program`` is the
one-vCPU convenience behind ``run_guest(program, design=...)`` and the conformance runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vpmu.arch.caps import PmuCaps
from vpmu.arch.presets import CpuPreset, as_preset
from vpmu.errors import RunIncompleteError
from vpmu.guest.os import GuestOs, ProgramOs
from vpmu.guest.port import GuestProgram
from vpmu.host.machine import Host
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.kapi import KernelCounterApi
from vpmu.host.task import TaskState
from vpmu.machine.vcpu import vcpu_class
from vpmu.sim import ms
from vpmu.vpmu.costs import kvm_costs
from vpmu.vpmu.design import Design, DesignSpec, make_design
from vpmu.vpmu.filter import PmuEventFilter
from vpmu.vpmu.registry import check_arch, host_refusal


class Vm:
    """One VM: ``len(guests)`` vCPUs, vCPU i pinned to ``pin[i]`` if given."""

    def __init__(self, host: Host, design: Design, guests: Sequence[GuestOs], *,
                 name: str = "vm0", pin: Sequence[int] | None = None,
                 shape: Mapping[str, object] | None = None,
                 event_filter: PmuEventFilter | None = None) -> None:
        if pin is not None and len(pin) != len(guests):
            raise ValueError(f"pin must name one CPU per vCPU ({len(guests)}), not {list(pin)}")
        self.host, self.design, self.name = host, design, name
        if not isinstance(host.perf, PerfSubsystem):
            PerfSubsystem(host)
        assert isinstance(host.perf, PerfSubsystem)
        self.perf: PerfSubsystem = host.perf
        self.kapi = KernelCounterApi(self.perf)
        check_arch(design.name, host.host_preset.arch)
        self.kvm_costs = kvm_costs(host.preset.costs, vhe=host.vhe)
        self.caps: PmuCaps = guest_caps(design, host.preset.caps, shape)
        refusal = host_refusal(design.name, host.preset.caps)
        if refusal:
            raise ValueError(f"design {design.name!r} needs {refusal} on preset "
                             f"{host.preset.name!r}")
        self.event_filter = event_filter
        vcpu = vcpu_class(host.host_preset.arch)
        self.vcpus = [vcpu(self, i, g, pin[i] if pin is not None else None)
                      for i, g in enumerate(guests)]
        for v in self.vcpus:
            host.spawn(v.task)

    def __repr__(self) -> str:
        return f"Vm(name={self.name!r}, design={self.design.name!r}, vcpus={len(self.vcpus)})"

    @property
    def done(self) -> bool:
        """Every vCPU's guest main program has finished."""
        return all(v.task.state is TaskState.DEAD for v in self.vcpus)


def run_until_done(host: Host, vms: Sequence[Vm], *, limit_ps: int,
                   step_ps: int = ms(1)) -> bool:
    """Advance ``host`` in steps until every VM's guests have finished; False if they had
    not by ``limit_ps`` (the caller says what that means).

    The steps are polls on a grid from the first call's time, and an idle fast-forward may
    pass several (``pass_ps``): a skip never finishes a guest (its main stream goes on), so
    the polls it passes would have found them running; the next poll is the grid's next
    step and the run ends at the same step as step by step. The skip stays short of
    ``limit_ps``, so a run that passes it is found out at the same step too."""
    origin = host.env.now_ps
    while not all(vm.done for vm in vms):
        now = host.env.now_ps
        if now >= limit_ps:
            return False
        until = origin + ((now - origin) // step_ps + 1) * step_ps
        host.run(until, pass_ps=max(limit_ps - 1, until))
    return True


def guest_caps(design: Design, host: PmuCaps,
               shape: Mapping[str, object] | None) -> PmuCaps:
    """The guest's PMU: what userspace asks for (the host's shape with ``shape``'s changes,
    as KVM_SET_CPUID2 would), clamped by what the design supports."""
    return design.guest_caps(host.replace(**shape) if shape else host)


def run_vm_program(program: GuestProgram, *, preset: str | CpuPreset,
                   design: str | DesignSpec | Design, seed: int = 0,
                   shape: Mapping[str, object] | None = None,
                   event_filter: PmuEventFilter | None = None,
                   limit_ms: int = 60_000) -> Any:
    """Run one guest program on a 1-vCPU VM of ``design`` on a 1-CPU host; its return value.

    ``event_filter`` is the VM's KVM_SET_PMU_EVENT_FILTER, installed before the first run.
    """
    host = Host(as_preset(preset), cpus=1, seed=seed)
    d = design if not isinstance(design, str | DesignSpec) else make_design(design)
    vm = Vm(host, d, [ProgramOs(program)], shape=shape, event_filter=event_filter)
    if not run_until_done(host, [vm], limit_ps=ms(limit_ms), step_ps=ms(10)):
        raise RunIncompleteError(f"guest program {program!r} did not finish in {limit_ms} ms")
    return vm.vcpus[0].task.result
