"""The x86 trap layer and the port's per-architecture operations."""

import pytest

from vpmu import guest
from vpmu.arch.faults import Fault
from vpmu.guest.os import ProgramOs
from vpmu.guest.port import Cpuid, Mrs, Msr, Rdmsr
from vpmu.guest.ports import arm64, x86
from vpmu.host.machine import Host
from vpmu.machine.baremetal import run_guest
from vpmu.machine.vm import Vm
from vpmu.machine.x86.vcpu import X86Vcpu
from vpmu.vpmu.design import make_design
from vpmu.vpmu.registry import check_arch, designs_for


def test_port_reexports_each_architecture_s_operations() -> None:
    assert guest.Rdmsr is x86.Rdmsr is Rdmsr
    assert guest.Mrs is arm64.Mrs and guest.Msr is arm64.Msr


def arm_program():  # type: ignore[no-untyped-def]
    read = yield Mrs("PMCCNTR_EL0")
    wrote = yield Msr("PMCR_EL0", 1)
    leaf = yield Cpuid(0)  # the x86 port still works after
    return read, wrote, isinstance(leaf, tuple)


@pytest.mark.parametrize("design", [None, "emulated", "mediated", "none"])
def test_an_arm64_instruction_is_undefined_on_x86(design: str | None) -> None:
    assert run_guest(arm_program, preset="intel-icx", design=design) == (Fault.UD, Fault.UD,
                                                                          True)


def test_host_interrupts_exit_with_vmx_reasons_and_vectors() -> None:
    # A real vCPU: a compiled method refuses a stand-in for self.
    vcpu = Vm(Host("intel-icx", cpus=1), make_design("none"), [ProgramOs(arm_program)]).vcpus[0]
    assert isinstance(vcpu, X86Vcpu)
    exit_of = vcpu.interrupt_exit
    assert exit_of("pmi") == ("EXCEPTION_NMI", 2)
    assert exit_of("tick") == ("EXTERNAL_INTERRUPT", 0xEC)
    assert exit_of("guest-pmi") == ("EXTERNAL_INTERRUPT", 0xF5)
    assert (X86Vcpu.IDLE_EXIT, X86Vcpu.PMI_WINDOW_EXIT) == ("HLT", "NMI_WINDOW")


def test_designs_are_listed_by_architecture() -> None:
    assert [e.name for e in designs_for("x86")] == ["none", "emulated", "mediated"]
    assert [e.name for e in designs_for("arm64")] == ["emulated", "partitioned"]
    check_arch("emulated", "x86")
    check_arch("emulated", "arm64")
    with pytest.raises(ValueError, match="design 'mediated' runs on x86 hosts, not on an arm64"):
        check_arch("mediated", "arm64")


def test_a_design_entry_carries_its_options_and_host_requirement() -> None:
    from vpmu.arch.presets import get_preset
    from vpmu.host.machine import Host
    from vpmu.machine.vm import Vm
    from vpmu.vpmu import registry
    from vpmu.vpmu.design import design_info, make_design

    mediated = registry.entry("mediated")
    assert mediated is not None and mediated.defaults["switch_point"] == "run-loop"
    assert design_info("mediated").options["clear_on_put"][1] == mediated.choices["clear_on_put"]
    with pytest.raises(ValueError, match=r"option switch_point must be one of \['run-loop'"):
        make_design("mediated:switch_point=never")
    v3 = get_preset("intel-icx").with_caps(version=3)
    assert registry.host_refusal("emulated", v3.caps) == ""
    assert "v4+" in registry.host_refusal("mediated", v3.caps)
    with pytest.raises(ValueError, match="design 'mediated' needs an Intel PMU v4"):
        Vm(Host(v3, cpus=1), make_design("mediated"), [])
