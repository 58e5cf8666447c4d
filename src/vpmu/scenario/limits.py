"""Bounds on the simulated work of a scenario, beyond which the command line asks for
``--allow-large`` instead of running for hours.

The schema's ranges keep every number meaningful (no overflow, no zero-length run); these
bounds are about cost. The model spends CPU time roughly in proportion to the guest cycles it
simulates (a PMU-idle guest about 0.2 CPU s per simulated second and vCPU, a profiled one far
more), to the number of CPUs it keeps state for, and to the number of tool runs and RDPMC reads
it executes, so each of those has a bound. The Python API (``run_scenario``) applies none.
"""

from __future__ import annotations

from typing import Final

from vpmu.arch.presets import boot_preset
from vpmu.scenario.load import Problem, ScenarioError
from vpmu.scenario.schema import Scenario

LARGE_CPUS: Final = 1024
"""pCPUs of the host, and vCPUs of all VMs together."""
LARGE_GUEST_CYCLES: Final = 10**12
"""Cycles of simulated work (guest workloads and host loads together): about 5.5 minutes of
one vCPU at 3 GHz."""
LARGE_RUNS: Final = 10_000
"""Back-to-back tool runs of one ``[[vm.guest]]`` entry."""
LARGE_RDPMC_READS: Final = 10**7
"""Read rounds of one RDPMC reader (``duration_ms / interval_us``)."""

ALLOW = "pass --allow-large to run it anyway"


def size_problems(sc: Scenario, source: str) -> list[Problem]:
    """Each bound ``sc`` exceeds, at the key path that makes it large."""
    out: list[Problem] = []
    mhz = boot_preset(sc.host.preset).core_mhz
    if sc.host.cpus > LARGE_CPUS:
        out.append(Problem(source, "host.cpus", f"{sc.host.cpus} pCPUs is more than "
                                                f"{LARGE_CPUS}; {ALLOW}"))
    vcpus = sum(vm.vcpus for vm in sc.vm)
    if vcpus > LARGE_CPUS:
        out.append(Problem(source, "vm", f"{vcpus} vCPUs in all is more than {LARGE_CPUS}; "
                                         f"{ALLOW}"))
    cycles = 0
    for i, vm in enumerate(sc.vm):
        for j, g in enumerate(vm.guest):
            share = vm.vcpus if g.vcpu == "all" else 1
            cycles += share * round(mhz * 1000 * (sc.duration_ms - g.start_ms))
            if g.runs > LARGE_RUNS:
                out.append(Problem(source, f"vm[{i}].guest[{j}].runs",
                                   f"{g.runs} runs is more than {LARGE_RUNS}; {ALLOW}"))
    for i, t in enumerate(sc.host_task):
        if t.kind == "load":
            cycles += round(mhz * 1000 * (sc.duration_ms - t.start_ms))
        if t.kind == "rdpmc-reader":
            reads = (sc.duration_ms - t.start_ms) * 1000 / t.interval_us
            if reads > LARGE_RDPMC_READS:
                out.append(Problem(source, f"host_task[{i}].interval_us",
                                   f"{reads:.3g} read rounds is more than "
                                   f"{LARGE_RDPMC_READS:.0e}; {ALLOW}"))
    if cycles > LARGE_GUEST_CYCLES:
        out.append(Problem(source, "duration_ms",
                           f"{cycles:.3g} cycles of simulated work ({sc.duration_ms:g} ms at "
                           f"{mhz} MHz over every vCPU and host load) is more than "
                           f"{LARGE_GUEST_CYCLES:.0e}; {ALLOW}"))
    return out


def check_size(sc: Scenario, source: str) -> None:
    """Raise ScenarioError if ``sc`` is beyond a bound (see the module docstring)."""
    problems = size_problems(sc, source)
    if problems:
        raise ScenarioError(problems)
