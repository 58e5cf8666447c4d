"""The arm64 vCPU PMU attributes (pmu-emul.c@v6.16 kvm_arm_pmu_v3_set_attr) and the ABI
rules the maintainers hold (SET_PMU narrows where vCPUs run; the default PMU counts only on
its cluster; new behaviour only by explicit opt-in, exclusive with SET_PMU and filters;
configuration frozen once the VM ran), and the documented rockpro64 symptom (SET_PMU cover
letter, Alexandru Elisei) on the ``rk3399`` preset (A53 CPUs 0-3, A72 CPUs 4-5)."""

from __future__ import annotations

from typing import Any

import pytest

from vpmu.arch.presets import HOST_PRESETS
from vpmu.guest.conformance._framework import Checker, Expectations, SuiteContext
from vpmu.guest.conformance.arm64.kut_pmu import SUITE as KUT
from vpmu.guest.os import ProgramOs
from vpmu.guest.port import Execute, Mrs, Msr
from vpmu.host.machine import Host
from vpmu.host.perf.core import PerfSubsystem
from vpmu.machine.arm64.run import FailEntryExit
from vpmu.machine.vm import Vm, run_until_done, run_vm_program
from vpmu.sim import ms
from vpmu.trace.records import FailEntry
from vpmu.vpmu.arm64.attrs import Errno, PmuV3Attr, VcpuPmuAttrs, get_attr, has_attr, set_attr
from vpmu.vpmu.arm64.host_pmu import KvmArch, choose_arm_pmu
from vpmu.vpmu.arm64.pmu_filter import KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY, EventFilter
from vpmu.vpmu.design import make_design
from vpmu.workloads.streams import Stream

A53, A72 = 8, 9
"""The rk3399 PMUs' perf types (armv8_cortex_a53, armv8_cortex_a72)."""


def _kvm(init_cpu: int = 0) -> tuple[KvmArch, VcpuPmuAttrs, PerfSubsystem]:
    host = Host(HOST_PRESETS["rk3399"])
    perf = PerfSubsystem(host)
    kvm, vcpu = KvmArch(), VcpuPmuAttrs()
    kvm.vcpus.append(vcpu)
    choose_arm_pmu(kvm, perf, init_cpu)  # KVM_ARM_VCPU_INIT on init_cpu
    return kvm, vcpu, perf


# -- section 7: the attributes' errors -----------------------------------------------------
def test_no_pmu_feature_is_enodev_and_created_is_ebusy() -> None:
    kvm, vcpu, perf = _kvm()
    assert set_attr(kvm, VcpuPmuAttrs(has_pmu=False), perf, PmuV3Attr.IRQ, 23) is Errno.ENODEV
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.INIT) is Errno.ENXIO  # no IRQ yet
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.IRQ, 23) is None
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.IRQ, 23) is Errno.EBUSY
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.INIT) is None
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.SET_NR_COUNTERS, 1) is Errno.EBUSY
    assert set_attr(kvm, vcpu, perf, 99) is Errno.EBUSY
    assert set_attr(kvm, VcpuPmuAttrs(), perf, 99) is Errno.ENXIO


def test_irq_rules() -> None:
    kvm, vcpu, perf = _kvm()
    other = VcpuPmuAttrs()
    kvm.vcpus.append(other)
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.IRQ, 23, irqchip_in_kernel=False) is Errno.EINVAL
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.IRQ, 5) is Errno.EINVAL  # an SGI
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.IRQ, 23) is None
    assert set_attr(kvm, other, perf, PmuV3Attr.IRQ, 22) is Errno.EINVAL  # PPIs must match
    assert get_attr(vcpu, PmuV3Attr.IRQ) == 23
    assert get_attr(other, PmuV3Attr.IRQ) is Errno.ENXIO
    assert has_attr(vcpu, PmuV3Attr.SET_NR_COUNTERS) is None
    assert has_attr(vcpu, 7) is Errno.ENXIO


def test_spis_must_differ() -> None:
    kvm, vcpu, perf = _kvm()
    other = VcpuPmuAttrs()
    kvm.vcpus.append(other)
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.IRQ, 40) is None
    assert set_attr(kvm, other, perf, PmuV3Attr.IRQ, 40) is Errno.EINVAL
    assert set_attr(kvm, other, perf, PmuV3Attr.IRQ, 41) is None


def test_set_pmu_narrows_supported_cpus_and_resets_n() -> None:
    kvm, vcpu, perf = _kvm(init_cpu=0)
    assert kvm.arm_pmu is not None and kvm.arm_pmu.type == A53
    assert kvm.supported_cpus is None  # the default PMU does not narrow it (rule 1b)
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.SET_NR_COUNTERS, 2) is None
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.SET_PMU, 1234) is Errno.ENXIO
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.SET_PMU, A72) is None
    assert kvm.supported_cpus == frozenset({4, 5}) and kvm.nr_pmu_counters == 6  # rule 1a


def test_set_nr_counters_needs_at_most_the_maximum() -> None:
    kvm, vcpu, perf = _kvm()
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.SET_NR_COUNTERS, 7) is Errno.EINVAL
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.SET_NR_COUNTERS, 0) is None
    no_pmu = KvmArch()
    assert set_attr(no_pmu, VcpuPmuAttrs(), perf, PmuV3Attr.SET_NR_COUNTERS, 0) is Errno.EINVAL


def test_filter_default_follows_the_first_filter() -> None:
    kvm, vcpu, perf = _kvm()
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.FILTER,
                    EventFilter(0x11, 1, KVM_PMU_EVENT_ALLOW)) is None
    assert kvm.pmu_filter is not None
    assert kvm.pmu_filter.allows(0x11) and not kvm.pmu_filter.allows(0x08)
    kvm2, vcpu2, _ = _kvm()
    assert set_attr(kvm2, vcpu2, perf, PmuV3Attr.FILTER,
                    EventFilter(0x11, 1, KVM_PMU_EVENT_DENY)) is None
    assert kvm2.pmu_filter is not None
    assert not kvm2.pmu_filter.allows(0x11) and kvm2.pmu_filter.allows(0x08)


def test_filter_range_action_and_pmu_change() -> None:
    kvm, vcpu, perf = _kvm()
    space = 1 << 16 if kvm.host_pmuver > 1 else 1 << 10
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.FILTER,
                    EventFilter(space - 1, 2, KVM_PMU_EVENT_ALLOW)) is Errno.EINVAL
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.FILTER, EventFilter(0, 1, 2)) is Errno.EINVAL
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.FILTER,
                    EventFilter(0, 1, KVM_PMU_EVENT_ALLOW)) is None
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.SET_PMU, A72) is Errno.EBUSY  # filter + other
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.SET_PMU, A53) is None  # the same PMU


def test_frozen_after_the_first_run() -> None:
    """Rule 9: configuration is frozen once any vCPU has run."""
    kvm, _, perf = _kvm()
    kvm.ran_once = True
    fresh = VcpuPmuAttrs()
    assert set_attr(kvm, fresh, perf, PmuV3Attr.SET_PMU, A53) is Errno.EBUSY
    assert set_attr(kvm, fresh, perf, PmuV3Attr.FILTER,
                    EventFilter(0, 1, KVM_PMU_EVENT_ALLOW)) is Errno.EBUSY
    assert set_attr(kvm, fresh, perf, PmuV3Attr.FIXED_COUNTERS_ONLY) is Errno.EBUSY


def test_fixed_counters_only_is_exclusive() -> None:
    """Rules 2, 6: an explicit flag, exclusive with SET_PMU and with filters."""
    kvm, vcpu, perf = _kvm()
    assert get_attr(vcpu, PmuV3Attr.FIXED_COUNTERS_ONLY, kvm=kvm) is Errno.ENXIO
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.FIXED_COUNTERS_ONLY) is None
    assert get_attr(vcpu, PmuV3Attr.FIXED_COUNTERS_ONLY, kvm=kvm) == 0
    assert kvm.nr_pmu_counters == 0 and kvm.supported_cpus is None
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.SET_PMU, A53) is Errno.EBUSY
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.FILTER,
                    EventFilter(0, 1, KVM_PMU_EVENT_ALLOW)) is Errno.EBUSY
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.SET_NR_COUNTERS, 1) is Errno.EINVAL
    assert set_attr(kvm, vcpu, perf, PmuV3Attr.SET_NR_COUNTERS, 0) is None
    kvm2, vcpu2, _ = _kvm()
    assert set_attr(kvm2, vcpu2, perf, PmuV3Attr.SET_PMU, A53) is None
    assert set_attr(kvm2, vcpu2, perf, PmuV3Attr.FIXED_COUNTERS_ONLY) is Errno.EBUSY


def test_the_default_never_changes() -> None:
    """Rule 2: without options the VM is the default PMU, every CPU supported."""
    design = make_design("emulated")
    assert design.options.get("pmu") is None  # x86-shaped until an arm64 host is seen
    host = Host(HOST_PRESETS["rk3399"])
    def program() -> Any:
        return (yield Mrs("PMCR_EL0"))
    vm = Vm(host, design, [ProgramOs(program)], pin=[4])
    assert run_until_done(host, [vm], limit_ps=ms(100))
    kvm = design.kvm_arch  # type: ignore[attr-defined]
    assert kvm.arm_pmu.name == "armv8_cortex_a72" and kvm.supported_cpus is None
    assert design.options["pmu"] == "default" and kvm.ran_once


# -- design options ------------------------------------------------------------------------
def test_arm64_options_refused_on_x86() -> None:
    with pytest.raises(ValueError, match="arm64 hosts only"):
        run_vm_program(lambda: iter(()), preset="intel-skl", design="emulated:pmu=default")


def test_filter_denies_counting_and_narrows_pmceid() -> None:
    def program() -> Any:
        yield Msr("PMEVTYPER0_EL0", 0x8)
        yield Msr("PMCNTENSET_EL0", 1)
        yield Msr("PMCR_EL0", 1)
        yield Execute(Stream("loop", {"cycles": 10_000, "instructions": 5_000}))
        return (yield Mrs("PMEVCNTR0_EL0")), (yield Mrs("PMCEID0_EL0"))
    host = Host(HOST_PRESETS["rk3399"])
    design = make_design("emulated")
    vm = Vm(host, design, [ProgramOs(program)], pin=[0])
    vm.vcpus[0].arm_pmu.config = vm.vcpus[0].arm_pmu.config.__class__(
        filters=(EventFilter(0x08, 1, KVM_PMU_EVENT_DENY),))
    assert run_until_done(host, [vm], limit_ps=ms(1000))
    count, pmceid0 = vm.vcpus[0].task.result
    assert count == 0 and not pmceid0 >> 0x08 & 1 and pmceid0 >> 0x11 & 1


# -- section 12: the rockpro64 symptom -------------------------------------------------------
def _cycle_counter(design: str, pin: int, init: int | None = None) -> tuple[Any, Any, Vm]:
    case = KUT.cases[0]
    assert case.name == "cycle-counter"
    checker = Checker(KUT.name, case.name)

    def program() -> Any:
        yield from case.body(checker, SuiteContext(Expectations()))
    host = Host(HOST_PRESETS["rk3399"])
    vm = Vm(host, make_design(design), [ProgramOs(program)], pin=[pin])
    if init is not None:
        vm.vcpus[0].pin = init  # KVM_ARM_VCPU_INIT ran on CPU ``init``, then taskset
    assert run_until_done(host, [vm], limit_ps=ms(2000), step_ps=ms(10))
    return vm.vcpus[0].task.result, {r.check: r.passed for r in checker.results}, vm


@pytest.mark.parametrize("cpu", [4, 5])
def test_without_set_pmu_the_a72_cores_fail_the_cycle_counter(cpu: int) -> None:
    _, checks, _ = _cycle_counter("emulated", cpu, init=0)
    assert checks == {"Monotonically increasing cycle count": False,
                      "Cycle/instruction ratio": False}


@pytest.mark.parametrize("cpu", [0, 1, 2, 3])
def test_without_set_pmu_the_a53_cores_pass(cpu: int) -> None:
    _, checks, _ = _cycle_counter("emulated", cpu, init=0)
    assert checks and all(checks.values())


def test_set_pmu_on_the_wrong_cluster_fails_entry() -> None:
    result, checks, _ = _cycle_counter("emulated:pmu=armv8_cortex_a53", 4)
    assert isinstance(result, FailEntryExit)
    assert (result.cpu, result.exit_reason, result.hardware_entry_failure_reason) == (4, 9, 1)
    assert checks == {}  # the guest never ran


def test_set_pmu_on_its_cluster_passes() -> None:
    _, checks, _ = _cycle_counter("emulated:pmu=armv8_cortex_a53", 2)
    assert checks and all(checks.values())


@pytest.mark.parametrize(("cpu", "init"), [(0, 0), (4, 0), (5, 5), (1, 4)])
def test_fixed_counters_only_passes_on_any_core(cpu: int, init: int) -> None:
    _, checks, _ = _cycle_counter("emulated:pmu=fixed-counters-only", cpu, init=init)
    assert checks and all(checks.values())


def test_fail_entry_is_a_trace_record() -> None:
    records: list[Any] = []
    case = KUT.cases[0]
    checker = Checker(KUT.name, case.name)

    def program() -> Any:
        yield from case.body(checker, SuiteContext(Expectations()))
    host = Host(HOST_PRESETS["rk3399"])
    host.trace.subscribe(records.append)
    vm = Vm(host, make_design("emulated:pmu=armv8_cortex_a72"), [ProgramOs(program)], pin=[1])
    assert run_until_done(host, [vm], limit_ps=ms(100))
    fails = [r for r in records if isinstance(r, FailEntry)]
    assert [(r.vm, r.vcpu, r.cpu, r.reason) for r in fails] == [("vm0", 0, 1, 1)]


def test_nr_counters_option_sets_pmcr_n() -> None:
    def program() -> Any:
        return (yield Mrs("PMCR_EL0")) >> 11 & 0x1F
    assert run_vm_program(program, preset="arm-a72", design="emulated:nr_counters=2") == 2
    assert run_vm_program(program, preset="arm-a72",
                          design="emulated:pmu=fixed-counters-only") == 0
