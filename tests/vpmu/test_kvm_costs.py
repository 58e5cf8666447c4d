"""The hypervisor's view of KVM's cost tables: complete, sourced, positive, per preset."""

from dataclasses import fields, replace

import pytest

from vpmu.arch.presets import PRESETS
from vpmu.costs import COSTS
from vpmu.costs import kvm as kvm_table
from vpmu.vpmu.costs import EXIT_REASONS, KVM_COST_SOURCES, KVM_COSTS, KvmCosts, kvm_costs


def test_every_cost_field_has_the_tables_source() -> None:
    """One source per cost field (``arch`` is none), each the one every preset's table gives."""
    assert set(KVM_COST_SOURCES) == {f.name for f in fields(KvmCosts)} - {"arch"}
    for name, text in KVM_COST_SOURCES.items():
        assert all(text == costs.source(f"kvm.{name}") for costs in COSTS.values()
                   if costs.kvm is not None)


def test_every_preset_has_a_table_pricing_every_exit_reason() -> None:
    """Each preset prices each exit reason the model produces, in its architecture's order."""
    assert set(KVM_COSTS) == {n for n in PRESETS if PRESETS[n].caps.arch == "x86"}
    assert kvm_table.EXIT_REASONS["x86"] == EXIT_REASONS
    for table in KVM_COSTS.values():
        assert tuple(table.exit_handler_cycles) == table.exit_reasons == EXIT_REASONS


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
    with pytest.raises(ValueError, match=r"arch must be one of \['x86'\], not 'ia64'"):
        replace(t, arch="ia64")
