"""KVM's arm64 PMU (pmu-emul.c) under the design ``emulated``: the register table's rules,
shadow + perf delta, software SW_INCR / CHAIN, and the VM's host PMU on big.LITTLE."""

import pytest

from vpmu.arch.faults import Fault
from vpmu.arch.presets import HOST_PRESETS
from vpmu.guest.os import ProgramOs
from vpmu.guest.port import Execute, Mrs, Msr
from vpmu.host.machine import Host
from vpmu.machine.vm import Vm, run_until_done, run_vm_program
from vpmu.sim import ms
from vpmu.vpmu.design import make_design
from vpmu.workloads.streams import Stream

LOOP = Stream("loop", {"cycles": 10_000, "instructions": 5_000})


def _run(program, preset="arm-a72"):
    return run_vm_program(program, preset=preset, design="emulated")


def test_pmcr_reads_n_and_drops_p_c():
    def program():
        yield Msr("PMCR_EL0", 0b111)
        return (yield Mrs("PMCR_EL0"))
    assert _run(program) == 6 << 11 | 1


def test_bitmaps_are_raz_wi_above_n():
    def program():
        yield Msr("PMCNTENSET_EL0", 0xFFFF_FFFF)
        return (yield Mrs("PMCNTENSET_EL0"))
    assert _run(program) == 0x3F | 1 << 31


def test_pmceid_sets_sw_incr_and_chain():
    def program():
        return (yield Mrs("PMCEID0_EL0"))
    assert _run(program) & (1 | 1 << 0x1E) == 1 | 1 << 0x1E


def test_el0_gate_and_write_only():
    from vpmu.guest.port import SetCpl

    def program():
        swinc = yield Mrs("PMSWINC_EL0")
        yield SetCpl(3)
        el0 = yield Mrs("PMCR_EL0")
        return swinc, el0
    assert _run(program) == (Fault.UNDEF, Fault.UNDEF)


def test_value_is_shadow_plus_event_delta_and_write_recreates():
    def program():
        yield Msr("PMEVTYPER0_EL0", 0x8)
        yield Msr("PMEVCNTR0_EL0", 100)
        yield Msr("PMCNTENSET_EL0", 1)
        yield Msr("PMCR_EL0", 1)
        yield Execute(LOOP)
        yield Msr("PMCR_EL0", 0)
        return (yield Mrs("PMEVCNTR0_EL0"))
    assert _run(program) == 100 + 5_000


def test_sw_incr_and_chain_in_software():
    def program():
        yield Msr("PMEVTYPER0_EL0", 0x0)
        yield Msr("PMEVTYPER1_EL0", 0x1E)
        yield Msr("PMEVCNTR0_EL0", 0xFFFF_FFFF)
        yield Msr("PMCNTENSET_EL0", 0b11)
        yield Msr("PMCR_EL0", 1)
        yield Msr("PMSWINC_EL0", 1)
        return (yield Mrs("PMEVCNTR0_EL0")), (yield Mrs("PMEVCNTR1_EL0")), \
            (yield Mrs("PMOVSSET_EL0"))
    assert _run(program) == (0, 1, 1)


def test_x86_option_refused_on_arm():
    with pytest.raises(ValueError, match="x86 hosts only"):
        run_vm_program(
            lambda: iter(()), preset="arm-a72", design="emulated:lbr=false")


@pytest.mark.parametrize(("pin", "counts"), [(0, True), (4, False)])
def test_counts_only_on_the_vm_pmus_cluster(pin, counts):
    """rk3399: a vCPU initialised on an A53 (CPU 0) gets the A53 PMU; pinned there its
    events count. The VM's PMU is the first registered one containing the init CPU, so a
    vCPU initialised on CPU 4 gets the A72 PMU: it counts too; the frozen case is a vCPU
    initialised on one cluster and running on the other (checked below)."""
    def program():
        yield Msr("PMCCFILTR_EL0", 0)
        yield Msr("PMCNTENSET_EL0", 1 << 31)
        yield Msr("PMCR_EL0", 1)
        yield Execute(LOOP)
        return (yield Mrs("PMCCNTR_EL0"))
    host = Host(HOST_PRESETS["rk3399"])
    vm = Vm(host, make_design("emulated"), [ProgramOs(program)], pin=[pin])
    vcpu = vm.vcpus[0]
    if not counts:
        vcpu.pin = 0  # KVM_ARM_VCPU_INIT ran on an A53, the thread runs on an A72
    assert run_until_done(host, [vm], limit_ps=ms(1000), step_ps=ms(10))
    assert (vcpu.task.result > 0) is counts
