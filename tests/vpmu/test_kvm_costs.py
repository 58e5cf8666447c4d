"""KVM's cost table: complete, sourced, positive, per preset."""

from dataclasses import fields, replace

import pytest

from vpmu.arch.presets import PRESETS
from vpmu.vpmu.costs import EXIT_REASONS, KVM_COST_SOURCES, KVM_COSTS, KvmCosts, kvm_costs


def test_every_field_has_a_source_naming_a_reference_or_an_estimate() -> None:
    """One source per field; each cites reference/ or says it is an estimate."""
    assert set(KVM_COST_SOURCES) == {f.name for f in fields(KvmCosts)}
    for text in KVM_COST_SOURCES.values():
        assert "reference/" in text or text.startswith("estimate:")


def test_every_preset_has_a_table_pricing_every_exit_reason() -> None:
    """Each preset prices each exit reason the model produces."""
    assert set(KVM_COSTS) == set(PRESETS)
    for table in KVM_COSTS.values():
        assert set(table.exit_handler_cycles) == set(EXIT_REASONS)


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
