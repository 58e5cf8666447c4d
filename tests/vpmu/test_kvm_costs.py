"""The hypervisor's view of KVM's cost tables: complete, sourced, positive, per preset."""

from dataclasses import fields, replace

import pytest

from vpmu.arch.presets import PRESETS
from vpmu.costs import COSTS, part_sources
from vpmu.costs import kvm as kvm_table
from vpmu.vpmu.costs import EXIT_REASONS, KVM_COST_SOURCES, KVM_COSTS, KvmCosts, kvm_costs


@pytest.mark.parametrize("arch", ["x86", "arm64"])
def test_every_cost_field_has_the_tables_source(arch: str) -> None:
    """One source per cost field (``arch`` is none), each the one every preset of the
    architecture gives; KVM_COST_SOURCES is x86's."""
    sources = part_sources("kvm", arch)
    if arch == "x86":
        assert sources == KVM_COST_SOURCES
    assert set(sources) == {f.name for f in fields(KvmCosts)} - {"arch"}
    for name, text in sources.items():
        assert all(text == costs.source(f"kvm.{name}") for p, costs in COSTS.items()
                   if PRESETS[p].caps.arch == arch)


def test_every_preset_has_a_table_pricing_every_exit_reason() -> None:
    """Each preset, x86 and Arm, prices each exit reason the model produces for its
    architecture, in that architecture's order."""
    assert set(KVM_COSTS) == set(PRESETS)
    assert kvm_table.EXIT_REASONS["x86"] == EXIT_REASONS
    assert kvm_table.EXIT_REASONS["arm64"] == ("IRQ", "SYS64", "WFx", "HVC64")
    for name, table in KVM_COSTS.items():
        assert table.arch == PRESETS[name].caps.arch
        assert tuple(table.exit_handler_cycles) == table.exit_reasons == (
            kvm_table.EXIT_REASONS[table.arch])


def test_exit_cycles_compose_and_the_fastpath_skips_the_full_exit() -> None:
    """A round trip is transition + full exit + handler; the fastpath drops the full exit."""
    t = kvm_costs("intel-icx")
    full = t.exit_cycles("MSR_WRITE")
    assert full == t.vmx_transition_cycles + t.full_exit_cycles + t.exit_handler_cycles[
        "MSR_WRITE"]
    assert t.exit_cycles("MSR_WRITE", fastpath=True) == full - t.full_exit_cycles


def test_bad_tables_are_refused() -> None:
    """A zero cost or a missing exit reason is an error, and an unknown preset names the
    valid ones."""
    t = kvm_costs("intel-icx")
    with pytest.raises(ValueError, match="positive ints"):
        replace(t, inject_cycles=0)
    with pytest.raises(ValueError, match="must price"):
        replace(t, exit_handler_cycles={"CPUID": 1})
    with pytest.raises(ValueError, match="preset must be one of"):
        kvm_costs("intel-p4")
    with pytest.raises(ValueError, match=r"arch must be one of \['arm64', 'x86'\], not 'ia64'"):
        replace(t, arch="ia64")
