"""The arm64 vCPU: every PMU system register access is one SYS64 exit; the PMU's overflow
reaches the guest as the vGIC's PPI level at entry."""

from vpmu.arch.faults import Fault
from vpmu.guest.os import ProgramOs
from vpmu.guest.port import Execute, Mrs, Msr, WaitPmi
from vpmu.host.machine import Host
from vpmu.machine.vm import Vm, run_until_done
from vpmu.sim import ms
from vpmu.trace import VmExit
from vpmu.vpmu.design import make_design
from vpmu.workloads.streams import Stream


def _run(program, preset="arm-a72"):
    host = Host(preset, cpus=1)
    vm = Vm(host, make_design("emulated"), [ProgramOs(program)])
    assert run_until_done(host, [vm], limit_ps=ms(1000), step_ps=ms(10))
    return vm.vcpus[0], [r for r in host.trace.records if isinstance(r, VmExit)]


def test_each_pmu_sysreg_access_is_one_sys64_exit():
    def program():
        yield Mrs("PMCR_EL0")
        yield Msr("PMSELR_EL0", 0)
        yield Mrs("PMCEID0_EL0")
        return (yield Mrs("CurrentEL"))
    vcpu, exits = _run(program)
    assert [e.reason for e in exits].count("SYS64") == 3
    assert vcpu.task.result == 1 << 2


def test_counter_above_n_is_undef_after_its_trap():
    def program():
        return (yield Mrs("PMEVCNTR7_EL0"))  # arm-a72 has N = 6
    vcpu, exits = _run(program)
    assert vcpu.task.result is Fault.UNDEF
    assert [e.reason for e in exits] == ["SYS64"]


def test_overflow_raises_the_ppi_level_at_entry():
    def program():
        yield Msr("PMEVTYPER0_EL0", 0x8)  # INST_RETIRED
        yield Msr("PMEVCNTR0_EL0", 0xFFFF_FFF0)
        yield Msr("PMINTENSET_EL1", 1)
        yield Msr("PMCNTENSET_EL0", 1)
        yield Msr("PMCR_EL0", 1)
        yield Execute(Stream("loop", {"cycles": 2000, "instructions": 1000}))
        got = yield WaitPmi(1_000_000)
        ovs = yield Mrs("PMOVSCLR_EL0")
        yield Msr("PMOVSCLR_EL0", 0xFFFF_FFFF)
        return got, ovs
    vcpu, exits = _run(program)
    assert vcpu.task.result == (True, 1)
    assert vcpu.ppi_injections == 1 and not vcpu.ppi_level
    assert "IRQ" in {e.reason for e in exits}
