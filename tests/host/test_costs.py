"""The host's view of the cost tables: complete, sourced, positive, read-only."""

from dataclasses import fields, replace

import pytest

from vpmu.arch.presets import PRESETS
from vpmu.costs import COSTS
from vpmu.host.costs import COST_SOURCES, COST_TABLES, PERF_CALLS, CostTable, cost_table

FIELDS = [f.name for f in fields(CostTable) if f.name != "instruction_cycles"]
X86 = [name for name in COSTS if PRESETS[name].caps.arch == "x86"]
EXPECTED_CALLS = {"create", "pause", "period", "enable", "disable", "read_value", "release"}
"""The kernel-counter API of issue 3 item 5."""


def test_every_field_has_a_source() -> None:
    """COST_SOURCES has exactly one entry per CostTable field, and one per instruction."""
    instructions = [f"instruction_cycles[{k}]" for k in COSTS[X86[0]].host.instruction_cycles]
    assert set(COST_SOURCES) == set(FIELDS) | set(instructions)


@pytest.mark.parametrize("name", FIELDS)
def test_every_source_is_the_tables(name: str) -> None:
    """Each field's source is the one every x86 preset's table gives its host field."""
    for preset in X86:
        assert COST_SOURCES[name] == COSTS[preset].source(f"host.{name}")


def test_every_preset_has_a_table() -> None:
    """Every built-in preset, and nothing else, has a cost table."""
    assert set(COST_TABLES) == set(PRESETS)
    for name in PRESETS:
        assert cost_table(name) is COST_TABLES[name]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_all_values_are_positive_ints(preset: str) -> None:
    """Every scalar and every perf call cost is a positive int."""
    table = cost_table(preset)
    for name in FIELDS:
        value = getattr(table, name)
        values = list(value.values()) if name == "perf_call_work_cycles" else [value]
        for v in values:
            assert type(v) is int and v > 0, (preset, name, v)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_perf_call_work_has_exactly_the_seven_calls(preset: str) -> None:
    """perf_call_work_cycles has exactly the seven kernel-counter API calls."""
    assert set(cost_table(preset).perf_call_work_cycles) == EXPECTED_CALLS
    assert set(PERF_CALLS) == EXPECTED_CALLS


def test_unknown_preset_names_the_valid_ones() -> None:
    """An unknown preset gets the house error shape listing the valid names."""
    with pytest.raises(ValueError) as err:
        cost_table("intel-p4")
    assert str(err.value) == f"preset must be one of {sorted(PRESETS)}, not 'intel-p4'"


def test_bad_values_are_rejected_eagerly() -> None:
    """A zero cost, a float, or a missing perf call is refused at construction."""
    table = cost_table("intel-icx")
    with pytest.raises(ValueError, match="tick_cycles must be a positive int, not 0"):
        replace(table, tick_cycles=0)
    with pytest.raises(ValueError,
                       match=r"instruction_cycles\[rdpmc\] must be a positive int, not 1\.5"):
        replace(table, instruction_cycles={**table.instruction_cycles, "rdpmc": 1.5})
    with pytest.raises(ValueError, match="instruction_cycles must price at least one"):
        replace(table, instruction_cycles={})
    with pytest.raises(ValueError, match="perf_call_work_cycles keys must be"):
        replace(table, perf_call_work_cycles={"create": 1})


def test_tables_are_read_only_and_repr_rebuilds_them() -> None:
    """The shared call map cannot be edited; repr shows a construction that rebuilds it."""
    table = cost_table("amd-zen5")
    with pytest.raises(TypeError):
        table.perf_call_work_cycles["create"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        table.instruction_cycles["wrmsr"] = 1  # type: ignore[index]
    assert eval(repr(table), {"CostTable": CostTable}) == table
    assert hash(table) == hash(eval(repr(table), {"CostTable": CostTable}))


def test_per_part_wrmsr_follows_the_elision_figures() -> None:
    """EMR and Turin WRMSR costs are the ones derived from the elision row, and MSR-priced
    work differs between them accordingly."""
    emr, turin = cost_table("intel-emr"), cost_table("amd-zen5")
    assert (emr.instruction_cycles["wrmsr"], turin.instruction_cycles["wrmsr"]) == (110, 180)
    assert emr.perf_clear_dirty_counter_cycles == emr.instruction_cycles["wrmsr"]
    assert (turin.perf_sched_in_event_cycles - emr.perf_sched_in_event_cycles
            == 2 * (turin.instruction_cycles["wrmsr"] - emr.instruction_cycles["wrmsr"]))
