"""One cost table per preset: every number has a source, sources cite upstream or reason, the
guest derives what it shares with the host, and the old modules are views of the tables."""

import re
from dataclasses import fields, replace
from fractions import Fraction

import pytest

from vpmu.arch.presets import PRESETS
from vpmu.costs import COSTS, preset_costs
from vpmu.costs.preset import SOURCE_KINDS
from vpmu.guest.linux import costs as guest_view
from vpmu.host.costs import cost_table
from vpmu.vpmu.costs import kvm_costs

NUMBER_REF = re.compile(r"\b(host|kvm|guest)\.([a-z_]+)(?:\[(\w+)\])?")
"""A source's mention of another number (``host.perf_call_work_cycles[create]``)."""
KERNEL_FILE = re.compile(r"\b[\w/.-]+\.[chS]@v\d")
"""A kernel file at a version (``kernel/events/core.c@v6.6``)."""
ML_SUBJECT = re.compile(r'"(Re: )?\[(RFC )?PATCH[^"]*" \([^)]*\b(19|20)\d\d\)')
"""A mailing-list subject with its date."""


def test_every_preset_has_a_table() -> None:
    """Every built-in preset, and nothing else, has a cost table; unknown names are refused
    with the valid ones."""
    assert list(COSTS) == list(PRESETS)
    with pytest.raises(ValueError) as err:
        preset_costs("intel-p4")
    assert str(err.value) == f"preset must be one of {sorted(PRESETS)}, not 'intel-p4'"


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_number_in_every_preset_has_a_source(preset: str) -> None:
    """Each number of the preset's table resolves to a source entry of a known kind; an entry
    that covers a mapping's numbers names each key."""
    costs = COSTS[preset]
    names = costs.number_names()
    assert len(names) == len(set(names)) > 0
    for name in names:
        text = costs.source(name)
        assert text.split(":", 1)[0] in SOURCE_KINDS, name
        key = re.search(r"\[(\w+)\]$", name)
        if key and name not in costs.sources:
            assert re.search(rf"\b{key.group(1)}\b", text), (name, "not named in its source")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_source_is_used(preset: str) -> None:
    """No entry names a number the table does not have."""
    costs = COSTS[preset]
    fields_ = {n.split("[", 1)[0] for n in costs.number_names()}
    assert set(costs.sources) <= set(costs.number_names()) | fields_


def test_sources_cite_upstream_and_name_real_numbers() -> None:
    """Derived, fitted and cited entries cite a kernel file at a version, a mailing-list
    subject with its date, or the entries they are computed from; every entry they mention
    exists; nothing cites a file users do not have."""
    for costs in COSTS.values():
        known = set(costs.number_names()) | {n.split("[", 1)[0] for n in costs.number_names()}
        for name, text in costs.sources.items():
            assert "reference/" not in text and "../shared" not in text, name
            assert not re.search(r"\bseeds?\b", text), name
            refs = [m.group(0) for m in NUMBER_REF.finditer(text)]
            assert set(refs) <= known, (name, set(refs) - known)
            if not text.startswith("estimate:"):
                assert KERNEL_FILE.search(text) or ML_SUBJECT.search(text) or refs, name


def test_a_table_without_a_source_or_with_a_stray_one_is_refused() -> None:
    """PresetCosts refuses a number with no source, an entry naming no number, and an entry
    that does not say its kind."""
    costs = COSTS["intel-icx"]
    sources = dict(costs.sources)
    del sources["host.tick_cycles"]
    with pytest.raises(ValueError, match=r"host\.tick_cycles has no source entry"):
        replace(costs, sources=sources)
    with pytest.raises(ValueError, match="names no number"):
        replace(costs, sources={**costs.sources, "host.turbo_cycles": "estimate: none."})
    with pytest.raises(ValueError, match="must start with one of"):
        replace(costs, sources={**costs.sources, "host.tick_cycles": "about 1 us."})


def test_sources_are_read_only() -> None:
    """A shared table's sources cannot be edited by a user."""
    with pytest.raises(TypeError):
        COSTS["intel-icx"].sources["host.tick_cycles"] = "x"  # type: ignore[index]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_guest_derives_the_paths_it_shares_with_the_host(preset: str) -> None:
    """The guest's numbers for kernel paths the host prices come from the host's numbers."""
    host, guest = COSTS[preset].host, COSTS[preset].guest
    assert guest.nmi_entry_cycles + guest.nmi_exit_cycles == host.nmi_entry_exit_cycles
    assert guest.irq_entry_cycles + guest.irq_exit_cycles == host.irq_entry_exit_cycles
    assert guest.tick_cycles == host.tick_cycles
    write = host.instruction_cycles["wrmsr" if PRESETS[preset].caps.arch == "x86" else "msr"]
    assert guest.perf_rotate_cycles == host.perf_rotate_cycles - 2 * write
    assert guest.perf_sample_output_cycles == host.perf_sample_output_cycles
    assert guest.perf_event_open_cycles == host.perf_call_work_cycles["create"]
    assert guest.perf_event_close_cycles == host.perf_call_work_cycles["release"]


@pytest.mark.parametrize("preset", sorted(p for p in PRESETS if PRESETS[p].caps.arch == "x86"))
def test_the_old_modules_are_views_of_the_table(preset: str) -> None:
    """vpmu.host.costs, vpmu.vpmu.costs and vpmu.guest.linux.costs give the table's numbers."""
    costs = COSTS[preset]
    assert cost_table(preset) is costs.host
    assert kvm_costs(preset) is costs.kvm
    for f in fields(costs.guest):
        assert getattr(guest_view, f.name.upper()) == getattr(costs.guest, f.name), f.name


@pytest.mark.parametrize("preset", sorted(p for p in PRESETS if PRESETS[p].caps.arch == "arm64"))
def test_arm_presets_have_no_kvm_part_and_say_so(preset: str) -> None:
    """VMs on Arm are not modelled yet: the table has no KVM part, and asking for one is a
    clear error rather than numbers nobody sourced."""
    assert COSTS[preset].kvm is None
    assert cost_table(preset) is COSTS[preset].host
    assert not any(n.startswith("kvm.") for n in COSTS[preset].number_names())
    with pytest.raises(ValueError, match="VMs on its architecture are not modelled yet"):
        kvm_costs(preset)


def test_numbers_are_ints_or_the_guest_ratios() -> None:
    """Only the guest's code-shape ratios are fractions; every cost is an int."""
    ratios = {"guest.kernel_ipc", "guest.kernel_branches_per_insn"}
    for costs in COSTS.values():
        for name, value in costs.numbers():
            assert type(value) is (Fraction if name in ratios else int), name


def test_guest_costs_refuse_bad_values() -> None:
    """A zero cost or an int where a ratio belongs is refused at construction."""
    guest = COSTS["intel-icx"].guest
    with pytest.raises(ValueError, match="tick_cycles must be a positive int, not 0"):
        replace(guest, tick_cycles=0)
    with pytest.raises(ValueError, match="kernel_ipc must be a positive Fraction, not 1"):
        replace(guest, kernel_ipc=1)
