"""Baselines: what a run's guest work costs against the same work unprofiled, and on bare metal.

The question users bring is what profiling inside a guest costs, so a run is compared with two
other runs of the same work (docs/guide/metrics.md "Baselines"):

- **unprofiled**: the same scenario, design and seed with every guest tool removed (each
  ``[[vm.guest]]`` keeps its workload, runs and start, and loses its perf tool or LBR
  sampler); host tasks stay, since they are not the guest's.
- **bare metal**: each vCPU's guest (workload and tools) alone on one CPU of the preset that
  vCPU would run on, with no hypervisor (``vpmu.machine.baremetal``). Host tasks do not run:
  on bare metal there is no host beside the guest. The unprofiled scenario is run on bare
  metal too, so that what profiling costs in the VM can be set beside what it costs there.

A guest's completion time is when the last of its vCPUs' guest programs finished (a vCPU with
no ``[[vm.guest]]`` entry ends at once), per VM; the run's is the latest VM's. Assumption (the
comparison is ours, not a published method): a vCPU's bare-metal run starts at time 0 like
the VM's, so both include the guest kernel's boot and the tools' set-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vpmu.arch.presets import cpu_preset
from vpmu.machine.baremetal import BareMetal
from vpmu.metrics.baseline import Baseline
from vpmu.scenario.guests import guest_os_for, has_guest
from vpmu.scenario.load import validate_scenario
from vpmu.scenario.run import RunOutcome, build, run
from vpmu.scenario.schema import Scenario, VmSpec

TOOL_KEYS: dict[str, Any] = {"tool": "none", "events": [], "freq": None, "period": None,
             "branch_stack": "none"}
"""A ``[[vm.guest]]`` entry's tool keys and their values with no tool."""


class BareMetalRuns:
    """A scenario's bare-metal runs, profiled and unprofiled, run once however many designs
    are compared (they do not depend on the design)."""

    def __init__(self) -> None:
        self._ends: dict[bool, tuple[int, ...]] = {}

    def __call__(self, scenario: Scenario, profiled_run: bool = True) -> tuple[int, ...]:
        """Each VM's completion on bare metal, with its guest tools or without (a scenario
        with no guest tool is the same run either way, and runs once)."""
        as_is = profiled_run or not profiled(scenario)
        if as_is not in self._ends:
            self._ends[as_is] = bare_metal_ps(scenario if as_is else unprofiled(scenario))
        return self._ends[as_is]


def profiled(scenario: Scenario) -> bool:
    """Some guest runs a tool (else the scenario is its own unprofiled baseline)."""
    return any(g.tool != "none" for vm in scenario.vm for g in vm.guest)


def unprofiled(scenario: Scenario) -> Scenario:
    """``scenario`` with every guest tool removed: the same work, nothing measuring it."""
    data = scenario.model_dump(mode="json")
    for vm in data.get("vm", []):
        for guest in vm.get("guest", []):
            guest.update(TOOL_KEYS)
    return validate_scenario(data, f"{scenario.name or 'scenario'} (unprofiled baseline)")


def bare_metal_ps(scenario: Scenario) -> tuple[int, ...]:
    """Each VM's guests run on bare metal, one CPU per vCPU: the VM's completion time."""
    return tuple(max((_bare_metal_vcpu(scenario, vm, i) for i in range(vm.vcpus)
                      if has_guest(vm, i)), default=0)
                 for vm in scenario.vm)


def _bare_metal_vcpu(scenario: Scenario, vm: VmSpec, vcpu: int) -> int:
    """When vCPU ``vcpu``'s guest finishes on a CPU of its own (the one it is pinned to, else
    the boot CPU's preset)."""
    preset = cpu_preset(scenario.host.preset, vm.pin[vcpu] if vm.pin else 0)
    machine = BareMetal(preset, seed=scenario.seed)
    machine.run_os(guest_os_for(vm, vcpu, scenario.duration_ms, scenario.host.preset,
                                workloads=scenario.workloads()))
    return machine.env.now_ps


def measure(outcome: RunOutcome, design: str | None = None, *, fast_forward: bool = True,
            bare_metal: BareMetalRuns | None = None,
            progress: Callable[[int, int], None] | None = None) -> Baseline:
    """The baselines of a finished run of ``outcome.scenario`` under ``design``: its
    unprofiled twin run (a scenario with no guest tool is its own, and is not run twice) and
    the bare-metal runs (``bare_metal``: a caller comparing designs passes one to share, since
    they do not depend on the design). A twin that does not finish raises RunIncompleteError."""
    bare_metal = bare_metal or BareMetalRuns()
    sc = outcome.scenario
    if profiled(sc):
        twin = run(build(unprofiled(sc), design, fast_forward=fast_forward), progress)
        unprofiled_ps = twin.guest_end_ps()
    else:
        unprofiled_ps = outcome.guest_end_ps()
    return Baseline(unprofiled_ps, bare_metal(sc), bare_metal(sc, profiled_run=False))
