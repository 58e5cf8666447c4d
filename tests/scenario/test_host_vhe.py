"""``[host] vhe``: an arm64 host kernel at EL2 (VHE, the default) or at EL1 beside its guests'
kernels (nVHE). Host perf events that exclude the guest are told apart from it by the event
filter on VHE (EXCLUDE_EL1, INCLUDE_EL2) and switched off at the world switch on nVHE: the
same counts either way; the partitioned PMU needs VHE. Refused on x86; absent from the
results unless false."""

from __future__ import annotations

import json

import pytest

from vpmu.costs.arm64.kvm import NVHE_EXTRA_CYCLES
from vpmu.errors import InputError
from vpmu.host.perf.arm64.driver import ArmPerfDriver
from vpmu.linux.arm_pmuv3 import ARMV8_PMU_EXCLUDE_EL1, ARMV8_PMU_INCLUDE_EL2
from vpmu.report.results import dumps, results
from vpmu.scenario import HostSpec, parse_scenario
from vpmu.scenario.run import RunOutcome, build, run

N1 = """\
name = "vhe"
duration_ms = 10
[host]
preset = "{preset}"
cpus = {cpus}
[[host_task]]
kind = "perf-stat"
cpu = 0
events = ["cycles", "instructions"]
[[vm]]
vcpus = 1
pin = [0]
design = "emulated"
[[vm.guest]]
workload = "compute"
tool = "perf-stat"
events = ["cycles", "instructions"]
"""
"""A guest perf stat on CPU 0 and a host perf stat of CPU 0 (exclude_guest, perf's :H)."""
HOST_STAT = "host_task[0] perf-stat"


def outcome(*overrides: str, preset: str = "arm-n1", cpus: int = 2,
            design: str | None = None) -> RunOutcome:
    text = N1.format(preset=preset, cpus=cpus)
    return run(build(parse_scenario(text, overrides=overrides), design))


def arm_drivers(o: RunOutcome) -> list[ArmPerfDriver]:
    perf = o.host.perf
    drivers = [d for d in getattr(perf, "drivers", []) if isinstance(d, ArmPerfDriver)]
    assert len(drivers) == len(o.host.cpus)
    return drivers


def host_counts(o: RunOutcome) -> dict[str, int]:
    return {row.event: row.count for row in o.host_tools[HOST_STAT].rows()}


def without_scenario(o: RunOutcome) -> dict[str, object]:
    data = results(o)
    del data["scenario"]
    return data


def test_nvhe_on_a_vhe_capable_host_moves_the_kernel_to_el1_and_pays_the_nvhe_switch() -> None:
    """arm-n1 (Armv8.2, VHE): the default boots the kernel at EL2 and filters the guest out
    of the host's cycles with EXCLUDE_EL1; ``vhe = false`` boots it at EL1, so the filter
    cannot exclude EL1 (the host's own kernel) and KVM switches the event off at each entry.
    Both count the guest out. The nVHE world switch is dearer (the EL1 context and the hyp
    call, ``NVHE_EXTRA_CYCLES``): the same exits, each that much longer, all of it host
    time the host's event counts."""
    vhe, nvhe = outcome(), outcome("host.vhe=false")
    assert {(d.vhe, d.pmu.kernel_el) for d in arm_drivers(vhe)} == {(True, 2)}
    assert {(d.vhe, d.pmu.kernel_el) for d in arm_drivers(nvhe)} == {(False, 1)}

    def cycles_filter(o: RunOutcome) -> int:
        event = o.host_tools[HOST_STAT].events["cycles"][0]
        return arm_drivers(o)[0].config_base(event.attr) & (
            ARMV8_PMU_EXCLUDE_EL1 | ARMV8_PMU_INCLUDE_EL2)
    assert cycles_filter(vhe) == ARMV8_PMU_EXCLUDE_EL1 | ARMV8_PMU_INCLUDE_EL2
    assert cycles_filter(nvhe) == ARMV8_PMU_INCLUDE_EL2

    switch = [o.vms[0].kvm_costs.vmx_transition_cycles for o in (vhe, nvhe)]
    assert switch[1] == switch[0] + NVHE_EXTRA_CYCLES
    exits = [results(o)["vm_exits"] for o in (vhe, nvhe)]
    assert exits[0]["by_reason"] == exits[1]["by_reason"]
    assert exits[1]["time_ns"] > exits[0]["time_ns"]
    extra = exits[0]["total"] * NVHE_EXTRA_CYCLES
    assert host_counts(nvhe)["cycles"] == host_counts(vhe)["cycles"] + extra
    with_guest = host_counts(outcome("host_task[0].exclude_guest=false"))
    assert 0 < host_counts(nvhe)["cycles"] < with_guest["cycles"] // 10


def test_nvhe_refuses_a_partitioned_vm_a_vhe_host_runs() -> None:
    """The partitioned PMU needs the host kernel at EL2 (the series refuses others, EPERM):
    on arm-n1 the default host runs it, ``vhe = false`` refuses the VM at vm[0].design."""
    part = outcome(design="partitioned")
    data = results(part)
    assert all(d.partitioned for d in arm_drivers(part))
    assert data["arm64"]["partition"]["loads"] >= 1
    assert data["accuracy"]["worst_abs_error"] < 0.005
    with pytest.raises(InputError, match=r"vm\[0\]\.design: .*refused \(EPERM\): the host is "
                                         r"not VHE"):
        outcome("host.vhe=false", design="partitioned")


def test_the_results_name_vhe_only_when_false() -> None:
    """A scenario without the key (or with ``vhe = true``) dumps as before the key existed,
    so its results are byte-identical; ``false`` is echoed and reads back."""
    default, explicit = outcome(), outcome("host.vhe=true")
    assert "vhe" not in results(default)["scenario"]["file_model"]["host"]
    assert dumps(results(explicit)) == dumps(results(default))
    model = results(outcome("host.vhe=false"))["scenario"]["file_model"]
    assert model["host"]["vhe"] is False
    assert HostSpec.model_validate(json.loads(json.dumps(model["host"]))).vhe is False


def test_an_armv8_0_host_boots_nvhe_whatever_it_asks() -> None:
    """rk3399's A53 and A72 have no VHE: ``vhe = true`` (the default) still runs the kernel
    at EL1, so ``false`` changes nothing but the echo."""
    default, nvhe = outcome(preset="rk3399", cpus=6), outcome("host.vhe=false", preset="rk3399",
                                                             cpus=6)
    assert {(d.vhe, d.pmu.kernel_el) for d in arm_drivers(default)} == {(False, 1)}
    assert without_scenario(nvhe) == without_scenario(default)


@pytest.mark.parametrize("preset", ["intel-icx", "amd-zen4"])
def test_x86_refuses_nvhe(preset: str) -> None:
    """VHE is an Arm choice: ``vhe = false`` on an x86 preset is an input error at
    host.vhe; ``true`` (the default) is accepted."""
    text = N1.format(preset=preset, cpus=2).replace('cpus = 2\n', 'cpus = 2\nvhe = false\n')
    with pytest.raises(InputError, match=r"x\.toml: host\.vhe: applies only to an arm64 host"
                                         rf".*got preset = '{preset}', an x86 host"):
        parse_scenario(text, "x.toml")
    assert parse_scenario(text.replace("vhe = false", "vhe = true")).host.vhe is True
