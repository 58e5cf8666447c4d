"""The mediated design's ``passthrough`` option: ``counters`` (upstream: the event selectors and
FIXED_CTR_CTRL exit, so KVM enforces the event filter) against ``all`` (the series' first
version's "all passthrough" variant: they run on the hardware, put saves them, and the filter
no longer holds), on Intel and AMD, in unit programs and in a scenario run."""

from collections import Counter
from typing import Any

import pytest

from vpmu.arch.x86 import msrs
from vpmu.guest import Cpuid, Execute, Rdmsr, Rdpmc, Wrmsr
from vpmu.guest.conformance.x86.selftests_pmu_event_filter import NOT_ENFORCED
from vpmu.guest.os import ProgramOs
from vpmu.host.machine import Host
from vpmu.hw.x86.cpu import x86_cpu
from vpmu.machine.conformance import run_conformance
from vpmu.machine.vm import Vm, run_until_done
from vpmu.scenario.load import load_scenario
from vpmu.scenario.run import build, run
from vpmu.trace import PmuContext, VmExit
from vpmu.vpmu.design import make_design
from vpmu.vpmu.designs.mediated.vcpu import MediatedVcpu
from vpmu.vpmu.filter import KVM_PMU_EVENT_DENY, PmuEventFilter, set_pmu_event_filter
from vpmu.workloads import loop

INST = 0x00C0 | msrs.EVTSEL_USR | msrs.EVTSEL_OS | msrs.EVTSEL_EN
"""A selector counting instructions retired in both rings."""
SEL0, PMC0, GCTRL = msrs.IA32_PERFEVTSEL0, msrs.IA32_A_PMC0, msrs.IA32_PERF_GLOBAL_CTRL
FIXED_CTRL = msrs.IA32_FIXED_CTR_CTRL
AMD_CTL0, AMD_GCTL = msrs.MSR_F15H_PERF_CTL0, msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL
ITERATIONS = 1000
"""``loop(ITERATIONS)``: 10 instructions and 1 branch per iteration."""
LOOP_INSTRUCTIONS = 10 * ITERATIONS
ALL = "mediated:passthrough=all"


def boot(program: Any, design: str, preset: str = "intel-icx",
         event_filter: PmuEventFilter | None = None) -> tuple[Vm, Host]:
    """Run a guest program on a 1-vCPU VM to completion; the VM and host."""
    host = Host(preset, cpus=1)
    vm = Vm(host, make_design(design), [ProgramOs(program)], event_filter=event_filter)
    assert run_until_done(host, [vm], limit_ps=10**15, step_ps=10**10)
    return vm, host


def exits(host: Host) -> list[tuple[str, int]]:
    return [(r.reason, r.msr) for r in host.trace.records if isinstance(r, VmExit)]


def pmu_of(vm: Vm) -> MediatedVcpu:
    pmu = vm.vcpus[0].pmu
    assert isinstance(pmu, MediatedVcpu)
    return pmu


# --- the option ------------------------------------------------------------------------------


def test_counters_is_the_default_and_all_is_accepted() -> None:
    """The registry's default is upstream's ``counters``; ``all`` is accepted."""
    assert make_design("mediated").options["passthrough"] == "counters"
    assert make_design(ALL).options["passthrough"] == "all"


def test_other_values_get_the_registrys_error() -> None:
    """A value outside the entry's choices is refused with the one error shape."""
    with pytest.raises(ValueError, match=r"design 'mediated' option passthrough must be one "
                                         r"of \['counters', 'all'\], not 'selectors'"):
        make_design("mediated:passthrough=selectors")


def test_enforces_event_filter() -> None:
    """``enforces_event_filter`` is False only under ``all``; a design without the attribute
    reads True, as the results read it."""
    assert make_design("mediated").enforces_event_filter is True  # type: ignore[attr-defined]
    assert make_design(ALL).enforces_event_filter is False  # type: ignore[attr-defined]
    assert getattr(make_design("emulated"), "enforces_event_filter", True) is True


# --- what exits --------------------------------------------------------------------------------


def intel_controls() -> Any:
    """Write and read back EVNTSEL0 and FIXED_CTR_CTRL."""
    yield Wrmsr(SEL0, INST)
    yield Wrmsr(FIXED_CTRL, 0x3)
    return (yield Rdmsr(SEL0)), (yield Rdmsr(FIXED_CTRL))


def test_intel_selector_and_fixed_ctrl_exit_only_under_counters() -> None:
    """Upstream: both writes and both reads exit (MSR_WRITE, MSR_READ); under ``all`` none
    does, and the guest reads back what it wrote either way."""
    vm, host = boot(intel_controls, "mediated")
    assert vm.vcpus[0].task.result == (INST, 0x3)
    assert exits(host) == [("MSR_WRITE", SEL0), ("MSR_WRITE", FIXED_CTRL),
                           ("MSR_READ", SEL0), ("MSR_READ", FIXED_CTRL)]
    vm, host = boot(intel_controls, ALL)
    assert vm.vcpus[0].task.result == (INST, 0x3)
    assert exits(host) == []


def test_amd_perf_ctl_exits_only_under_counters() -> None:
    """AMD (no FIXED_CTR_CTRL): a PERF_CTL0 write exits upstream, not under ``all``."""
    def program() -> Any:
        yield Wrmsr(AMD_CTL0, INST)
        return (yield Rdmsr(AMD_CTL0))
    vm, host = boot(program, "mediated", preset="amd-zen4")
    assert vm.vcpus[0].task.result == INST
    assert exits(host) == [("MSR_WRITE", AMD_CTL0), ("MSR_READ", AMD_CTL0)]
    vm, host = boot(program, ALL, preset="amd-zen4")
    assert vm.vcpus[0].task.result == INST
    assert exits(host) == []


def test_fewer_guest_fixed_counters_keep_fixed_ctr_ctrl_intercepted() -> None:
    """The documented assumption: FIXED_CTR_CTRL passes through only when the guest has all
    of the host's fixed counters; the selectors of the guest's GP counters still do."""
    host = Host("intel-icx", cpus=1)
    vm = Vm(host, make_design(ALL), [ProgramOs(intel_controls)], shape={"n_fixed": 2})
    assert run_until_done(host, [vm], limit_ps=10**15, step_ps=10**10)
    assert exits(host) == [("MSR_WRITE", FIXED_CTRL), ("MSR_READ", FIXED_CTRL)]


# --- the event filter ------------------------------------------------------------------------


def count_instructions() -> Any:
    """GP0 counts instructions over a loop split by a CPUID exit (a put and a load)."""
    yield Wrmsr(SEL0, INST)
    yield Wrmsr(GCTRL, 1)
    yield Execute(loop(ITERATIONS))
    yield Cpuid(0)
    yield Execute(loop(ITERATIONS))
    return (yield Rdpmc(0))


def deny_instructions() -> PmuEventFilter:
    flt = set_pmu_event_filter(KVM_PMU_EVENT_DENY, [0x00C0])
    assert isinstance(flt, PmuEventFilter)
    return flt


def test_a_denied_event_counts_under_all_and_not_under_counters() -> None:
    """A DENY of 0xC0: upstream masks EN in the hardware copy, the counter reads 0; under
    ``all`` nothing masks it, and it counts as without a filter: both loops, the
    GLOBAL_CTRL write it retires with the counter on, and the CPUID KVM skips."""
    flt = deny_instructions()
    vm, _ = boot(count_instructions, "mediated", event_filter=flt)
    assert vm.vcpus[0].task.result == 0
    unfiltered, _ = boot(count_instructions, ALL)
    vm, _ = boot(count_instructions, ALL, event_filter=flt)
    assert vm.vcpus[0].task.result == unfiltered.vcpus[0].task.result \
        == 2 * LOOP_INSTRUCTIONS + 2


# --- the context switch ---------------------------------------------------------------------


def test_put_saves_the_guests_selectors_and_still_clears_them() -> None:
    """Under ``all`` each put reads every EVNTSEL and FIXED_CTR_CTRL (RFC v1 23/41's save),
    then zeroes the non-zero ones as upstream's put does; KVM keeps the guest's values and
    load writes them back, so the count goes on across the exit."""
    vm, host = boot(count_instructions, ALL)
    pmu = pmu_of(vm)
    assert pmu.gp[0].eventsel == pmu.gp[0].eventsel_hw == INST
    assert x86_cpu(host.cpus[0].hw).x86_pmu.sels[0] == 0  # the last put left nothing on
    puts = sum(1 for r in host.trace.records if isinstance(r, PmuContext) and r.state == "host")
    saved = Counter({f"rdmsr {msrs.kernel_msr_name(SEL0 + i)}": puts for i in range(8)})
    saved[f"rdmsr {msrs.kernel_msr_name(FIXED_CTRL)}"] = puts
    assert saved <= pmu.traffic["put"]
    assert f"wrmsr {msrs.kernel_msr_name(SEL0)}" in pmu.traffic["put"]


def test_counters_mode_puts_read_no_selector() -> None:
    """Upstream's put never reads a selector: KVM already has every one (they exit)."""
    vm, _ = boot(count_instructions, "mediated")
    assert not any(k.startswith("rdmsr") and ("EVNTSEL" in k or "EVENTSEL" in k
                                              or "FIXED_CTR_CTRL" in k)
                   for k in pmu_of(vm).traffic["put"])


def test_amd_all_loads_the_guests_own_selector_without_guest_only() -> None:
    """Upstream stuffs GuestOnly into AMD's hardware copy on the intercepted write ("[PATCH
    v6 26/44]"); under ``all`` the hardware holds the guest's own value, which KVM saves at
    put and restores at load."""
    def program() -> Any:
        yield Wrmsr(AMD_CTL0, INST)
        yield Wrmsr(AMD_GCTL, 1)
        yield Cpuid(0)
        return (yield Rdmsr(AMD_CTL0))
    vm, _ = boot(program, "mediated", preset="amd-zen4")
    assert pmu_of(vm).gp[0].eventsel_hw == INST | msrs.AMD_EVTSEL_GUEST_ONLY
    vm, _ = boot(program, ALL, preset="amd-zen4")
    assert vm.vcpus[0].task.result == INST
    assert pmu_of(vm).gp[0].eventsel_hw == INST


# --- a scenario -------------------------------------------------------------------------------


def run_example(design: str) -> tuple[Counter[tuple[str, int]], dict[str, Any], dict[str, Any]]:
    """examples/filter-deny-branches.toml under ``design``: exits by (reason, MSR), the
    branches row of the accuracy and the VM's facts."""
    outcome = run(build(load_scenario("examples/filter-deny-branches.toml"), design,
                        keep_trace=True))
    by = Counter((r.reason, r.msr) for r in outcome.records if isinstance(r, VmExit))
    branches = next(r for r in outcome.accuracy_rows() if r["event"] == "branches")
    return by, branches, outcome.vm_facts()[0]


def test_filter_example_loses_its_selector_exits_and_its_filter() -> None:
    """The deny-branches example: under ``all`` no EVNTSEL or FIXED_CTR_CTRL access exits,
    the other exits are the same kinds, the denied branches count, and the VM's facts say
    the filter is installed but not enforced."""
    controls = {SEL0 + i for i in range(8)} | {FIXED_CTRL}
    counters, c_branches, c_vm = run_example("mediated")
    everything, a_branches, a_vm = run_example(ALL)
    assert sum(n for (_, msr), n in counters.items() if msr in controls) > 0
    assert not any(msr in controls for _, msr in everything)
    assert counters[("MSR_WRITE", SEL0)] > 0 and everything[("MSR_WRITE", SEL0)] == 0
    assert sum(everything.values()) < sum(counters.values())
    assert c_branches["count"] == 0 and a_branches["count"] > 0
    assert c_vm["event_filter"] == {"installed": True, "enforced": True}
    assert a_vm["event_filter"] == {"installed": True, "enforced": False}


# --- conformance ------------------------------------------------------------------------------

FILTER_SUITE = "selftests/x86/pmu_event_filter_test"
NOT_ENFORCED_CHECKS = 150
"""Checks of the filter selftest on intel-icx whose filter would stop the counter (model run
under ``mediated``: the same 150 assert "not counted"): under ``all`` they assert it counts."""


def test_the_filter_selftest_expects_counting_where_the_filter_is_not_enforced() -> None:
    """``run_conformance`` reads ``enforces_event_filter`` from the design: under ``all`` the
    filtered cases are checked to count ("filter not enforced") and pass; the ioctl's own
    checks are unchanged."""
    results = run_conformance("intel-icx", suites=(FILTER_SUITE,), design=ALL)
    relaxed = [r for r in results if r.check.endswith(NOT_ENFORCED)]
    assert len(relaxed) == NOT_ENFORCED_CHECKS
    assert all(r.passed for r in results)
    upstream = run_conformance("intel-icx", suites=(FILTER_SUITE,), design="mediated")
    assert not any(r.check.endswith(NOT_ENFORCED) for r in upstream)
    assert sum("not counted" in r.check for r in upstream) == NOT_ENFORCED_CHECKS
