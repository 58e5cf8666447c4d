"""The architecture registry: every module an entry names exists, and has the role it claims."""

import dataclasses

import pytest

from vpmu.arch.lazy import resolve
from vpmu.arch.names import names_for
from vpmu.arch.registry import ARCHES, arch_entry
from vpmu.hw.core import CpuCore
from vpmu.machine.vcpu import Vcpu, vcpu_class


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_every_entry_resolves(arch: str) -> None:
    entry = arch_entry(arch)
    for field in dataclasses.fields(entry):
        # only the vCPU may be absent: an architecture whose VMs are not modelled yet
        if field.name != "name" and not (field.name == "vcpu" and entry.vcpu == ""):
            assert resolve(getattr(entry, field.name)) is not None, field.name
    assert issubclass(resolve(entry.cpu_model), CpuCore)
    if entry.vcpu:
        assert issubclass(vcpu_class(arch), Vcpu)
        assert vcpu_class(arch) is not Vcpu  # the neutral loop alone has no trap layer
    else:   # an architecture whose VMs are not modelled yet says so
        with pytest.raises(ValueError, match=f"VMs on {arch} are not modelled yet"):
            vcpu_class(arch)
    assert callable(resolve(entry.bare_metal))
    assert names_for(arch).name(0) != ""


def test_an_unknown_architecture_is_a_clear_error() -> None:
    with pytest.raises(ValueError,
                       match=r"architecture must be one of \['arm64', 'x86'\], not 'riscv'"):
        arch_entry("riscv")


def test_resolve_reads_module_and_attribute() -> None:
    assert resolve("vpmu.arch.registry:ARCHES") is ARCHES
    assert resolve("vpmu.arch.registry").ARCHES is ARCHES
