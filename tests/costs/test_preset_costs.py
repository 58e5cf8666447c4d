"""One cost table per preset: every number has a source, sources cite upstream or reason, the
guest derives what it shares with the host, and the old modules are views of the tables."""

import re
from dataclasses import fields, replace
from fractions import Fraction

import pytest

from vpmu.arch.presets import PRESETS
from vpmu.costs import COSTS, preset_costs
from vpmu.costs.kvm import EXIT_REASONS
from vpmu.costs.preset import SOURCE_KINDS
from vpmu.guest.linux import costs as guest_view
from vpmu.host.costs import cost_table
from vpmu.vpmu import costs as vpmu_costs_view
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


ARM_PRESETS = sorted(p for p in PRESETS if PRESETS[p].caps.arch == "arm64")
VHE_PRESETS = {"arm-n1", "arm-a520", "arm-a720"}
"""Armv8.1+ cores: the host kernel runs at EL2 (the others are Armv8.0, nVHE)."""


@pytest.mark.parametrize("preset", ARM_PRESETS)
def test_arm_kvm_table_prices_the_arm64_exit_reasons(preset: str) -> None:
    """Each Arm preset's KVM table prices the exit classes KVM/arm64's kvm_exit prints, in
    that order, and the old module gives it (as it does the host's)."""
    kvm = COSTS[preset].kvm
    assert kvm is not None and kvm.arch == "arm64"
    assert tuple(kvm.exit_handler_cycles) == kvm.exit_reasons == EXIT_REASONS["arm64"]
    assert EXIT_REASONS["arm64"] == ("IRQ", "SYS64", "WFx", "HVC64")
    assert kvm_costs(preset) is kvm
    assert cost_table(preset) is COSTS[preset].host
    assert {n for n in COSTS[preset].number_names() if n.startswith("kvm.")} >= {
        f"kvm.exit_handler_cycles[{r}]" for r in EXIT_REASONS["arm64"]}


def test_arm_vhe_world_switch_is_cheaper_than_nvhe() -> None:
    """The VHE presets' world switch round trip is below every nVHE preset's, and the rest of
    the table does not depend on VHE."""
    vhe = [kvm_costs(p) for p in ARM_PRESETS if p in VHE_PRESETS]
    nvhe = [kvm_costs(p) for p in ARM_PRESETS if p not in VHE_PRESETS]
    assert vhe and nvhe
    assert max(t.vmx_transition_cycles for t in vhe) < min(
        t.vmx_transition_cycles for t in nvhe)
    assert max(t.exit_cycles("SYS64") for t in vhe) < min(t.exit_cycles("SYS64") for t in nvhe)
    for t in vhe + nvhe:
        assert replace(t, vmx_transition_cycles=1) == replace(vhe[0], vmx_transition_cycles=1)


def test_a_preset_without_a_kvm_table_is_a_clear_error() -> None:
    """kvm_costs still refuses a preset whose table has no KVM part, rather than inventing
    numbers."""
    bare = replace(COSTS["arm-n1"], kvm=None,
                   sources={n: t for n, t in COSTS["arm-n1"].sources.items()
                            if not n.startswith("kvm.")})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vpmu_costs_view, "preset_costs", lambda name: bare)
        with pytest.raises(ValueError, match="VMs on its architecture are not modelled yet"):
            kvm_costs("arm-n1")


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
