"""The scenario schema: what a valid scenario reads as, its defaults and its derived values."""

import json

from vpmu.arch.presets import PRESETS
from vpmu.scenario import (
    DEFAULT_FREQ,
    GuestSpec,
    HostSpec,
    HostTaskSpec,
    Scenario,
    VmSpec,
    parse_scenario,
)

MINIMAL = """
duration_ms = 10
[host]
preset = "intel-icx"
"""

SEED_001 = """
name = "seed-001"
description = "perf record of 4 events over br_instr in a 4-vCPU guest, 10 runs (is_paused)"
duration_ms = 600
[host]
preset = "intel-icx"
cpus = 4
[[vm]]
vcpus = 4
pin = [0, 1, 2, 3]
design = "emulated"
[[vm.guest]]
vcpu = 0
tool = "perf-record"
events = ["cycles", "instructions", "branches", "cache-misses"]
workload = "br_instr"
runs = 10
"""
"""Seed 001's loop: ``taskset -c 0 perf record -e ... /root/br_instr`` ten times in a 4u guest."""


def test_minimal_scenario_needs_only_a_duration_and_a_preset() -> None:
    """A duration and a host preset make a scenario with no VMs and no host tasks."""
    s = parse_scenario(MINIMAL)
    assert (s.duration_ms, s.host.preset, s.vm, s.host_task) == (10.0, "intel-icx", [], [])
    assert isinstance(s.duration_ms, float)


def test_defaults_of_every_model() -> None:
    """Unset keys take the documented defaults."""
    s = parse_scenario(MINIMAL)
    assert (s.name, s.description, s.seed) == ("", "", 0)
    assert s.host == HostSpec(preset="intel-icx", cpus=1, nmi_watchdog=False, tick_hz=250,
                              clear_dirty_counters=True, max_sample_rate=100_000)
    vm = VmSpec(guest=[GuestSpec()])
    assert (vm.name, vm.vcpus, vm.pin, vm.design, vm.design_options, vm.pmu, vm.filter) == \
        ("vm0", 1, None, "emulated", {}, None, None)
    g = vm.guest[0]
    assert (g.vcpu, g.tick_hz, g.workload, g.tool, g.events, g.freq, g.period) == \
        (0, 1000, "br_instr", "none", [], None, None)
    assert (g.max_sample_rate, g.start_ms, g.runs) == (100_000, 0.0, 1)
    t = HostTaskSpec(kind="load")
    assert (t.cpu, t.events, t.exclude_guest, t.freq, t.period, t.start_ms) == \
        (None, [], True, None, None, 0.0)
    assert (t.workload, t.interval_us, t.clear_dirty_counters) == ("compute", 100.0, None)


def test_seed_001_scenario_parses() -> None:
    """Seed 001's guest perf record loop reads as one pinned 4-vCPU VM with one guest program."""
    s = parse_scenario(SEED_001, "seed-001.toml")
    assert (s.host.preset, s.host.cpus, s.duration_ms) == ("intel-icx", 4, 600.0)
    (vm,) = s.vm
    assert (vm.name, vm.vcpus, vm.pin, vm.design) == ("vm0", 4, [0, 1, 2, 3], "emulated")
    (g,) = vm.guest
    assert (g.vcpu, g.tool, g.workload, g.runs) == (0, "perf-record", "br_instr", 10)
    assert g.events == ["cycles", "instructions", "branches", "cache-misses"]
    assert g.sample_freq == DEFAULT_FREQ


def test_every_preset_name_is_accepted() -> None:
    """Each name of vpmu.arch.presets.PRESETS is a valid host preset."""
    assert [HostSpec(preset=name).preset for name in PRESETS] == list(PRESETS)


def test_unnamed_vms_are_named_by_position() -> None:
    """VMs without a name are vm0, vm1, ... by position; given names are kept."""
    s = parse_scenario(MINIMAL + """
[[vm]]
[[vm.guest]]
[[vm]]
name = "victim"
[[vm.guest]]
[[vm]]
[[vm.guest]]
""")
    assert [vm.name for vm in s.vm] == ["vm0", "victim", "vm2"]


def test_sample_freq_follows_perf_record() -> None:
    """perf record samples at 4000 Hz unless given -F or -c; perf stat does not sample."""
    assert GuestSpec(tool="perf-record", events=["cycles"]).sample_freq == DEFAULT_FREQ == 4000
    assert GuestSpec(tool="perf-record", events=["cycles"], freq=99).sample_freq == 99
    assert GuestSpec(tool="perf-record", events=["cycles"], period=10_000).sample_freq is None
    assert GuestSpec(tool="perf-stat", events=["cycles"]).sample_freq is None
    assert HostTaskSpec(kind="perf-record", events=["cycles"]).sample_freq == DEFAULT_FREQ


def test_filter_events_read_hex_strings_as_integers() -> None:
    """KVM filter events may be written "0x00c0" or as TOML integers; both read as ints."""
    s = parse_scenario(MINIMAL + """
[[vm]]
[vm.filter]
action = "allow"
events = ["0x00c0", 0x3c, 196]
fixed_counter_bitmap = 0b101
[[vm.guest]]
""")
    f = s.vm[0].filter
    assert f is not None
    assert (f.action, f.events, f.fixed_counter_bitmap, f.masked) == \
        ("allow", [0xC0, 0x3C, 196], 5, False)


def test_design_spec_merges_the_spec_string_and_design_options() -> None:
    """design_spec joins the design string's options and [vm.design_options] into one spec."""
    vm = VmSpec(design="emulated:is_paused=1", design_options={"fastpath": True, "n": 3},
                guest=[GuestSpec()])
    assert vm.design_name == "emulated"
    assert vm.design_spec == "emulated:is_paused=1,fastpath=true,n=3"
    assert VmSpec(design="mediated", guest=[GuestSpec()]).design_spec == "mediated"


def test_pmu_shape_guest_vcpu_all_and_host_tasks() -> None:
    """[vm.pmu] overrides, vcpu = "all" and each host task kind read back as written."""
    s = parse_scenario(MINIMAL.replace("intel-icx", "amd-zen4") + """
[[vm]]
vcpus = 2
[vm.pmu]
version = 1
gp_counters = 4
[[vm.guest]]
vcpu = "all"
tool = "perf-stat"
events = ["r00c0", "branch-instructions"]
[[host_task]]
kind = "perf-record"
events = ["cycles"]
period = 100000
[[host_task]]
kind = "rdpmc-reader"
cpu = 0
interval_us = 50
clear_dirty_counters = false
[[host_task]]
kind = "load"
workload = "memory"
start_ms = 2.5
""")
    pmu = s.vm[0].pmu
    assert pmu is not None and (pmu.version, pmu.gp_counters, pmu.fixed_counters) == (1, 4, None)
    assert s.vm[0].guest[0].vcpu == "all"
    assert [t.kind for t in s.host_task] == ["perf-record", "rdpmc-reader", "load"]
    assert (s.host_task[1].interval_us, s.host_task[1].clear_dirty_counters) == (50.0, False)
    assert (s.host_task[2].workload, s.host_task[2].start_ms) == ("memory", 2.5)


def test_model_dump_is_json_and_reads_back_unchanged() -> None:
    """A results file can embed model_dump() as is; validating it again gives the same scenario."""
    s = parse_scenario(SEED_001)
    dumped = s.model_dump()
    assert json.loads(json.dumps(dumped)) == dumped
    assert Scenario.model_validate(dumped) == s
    assert list(dumped) == ["name", "description", "duration_ms", "seed", "host", "vm",
                            "host_task"]
