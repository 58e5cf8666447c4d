"""Loading scenarios: every kind of mistake is one ScenarioError naming file, key path and value."""

import re
from pathlib import Path

import pytest

from vpmu.arch.presets import PRESET_NAMES
from vpmu.scenario import (
    Scenario,
    ScenarioError,
    apply_overrides,
    load_scenario,
    parse_scenario,
)
from vpmu.workloads.phases import PHASES
from vpmu.workloads.table import builtin

BASE = """\
duration_ms = 600
[host]
preset = "intel-icx"
cpus = 4
[[vm]]
vcpus = 4
pin = [0, 1, 2, 3]
[[vm.guest]]
tool = "perf-record"
events = ["cycles"]
"""
"""A valid scenario the error cases edit; vm.guest keys can be appended at its end."""


def problems(text: str, source: str = "x.toml") -> list[str]:
    """The lines of the ScenarioError that parsing ``text`` must raise."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, source)
    return str(info.value).splitlines()


def edit(old: str, new: str) -> str:
    """BASE with the one piece that starts a line with ``old`` replaced by ``new``."""
    pattern = re.compile(rf"^{re.escape(old)}", re.MULTILINE)
    assert len(pattern.findall(BASE)) == 1
    return pattern.sub(lambda _: new, BASE)


def test_base_is_valid() -> None:
    """The scenario every error case starts from parses."""
    assert parse_scenario(BASE).vm[0].guest[0].tool == "perf-record"


@pytest.mark.parametrize(("text", "expected"), [
    (BASE + 'tol = "perf-stat"\n',
     "x.toml: vm[0].guest[0].tol: unknown key (did you mean 'tool'?); expected one of vcpu, "
     "tick_hz, workload, tool, events, freq, period, max_sample_rate, "
     "perf_cpu_time_max_percent, mux_interval_ms, branch_stack, start_ms, runs"),
    ("seeed = 1\n" + BASE,
     "x.toml: seeed: unknown key (did you mean 'seed'?); expected one of name, description, "
     "duration_ms, seed, host, vm, host_task, workload"),
    (BASE + "[vm.pmu]\ngp = 2\n",
     "x.toml: vm[0].pmu.gp: unknown key; expected one of version, gp_counters, fixed_counters"),
], ids=["guest-key", "top-level-key", "pmu-key"])
def test_unknown_key_names_its_path_and_the_valid_keys(text: str, expected: str) -> None:
    """A typo'd key is named by its full path, with the keys that table accepts."""
    assert problems(text) == [expected]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("cpus = 4", 'cpus = "4"', "host.cpus: expected an integer, got '4'"),
    ("cpus = 4", "cpus = 4.0", "host.cpus: expected an integer, got 4.0"),
    ("cpus = 4", "cpus = 4\nnmi_watchdog = 1", "host.nmi_watchdog: expected true or false, got 1"),
    ("duration_ms = 600", 'duration_ms = "600"', "duration_ms: expected a number, got '600'"),
    ("duration_ms = 600", "duration_ms = inf", "duration_ms: expected a finite number, got inf"),
    ("pin = [0, 1, 2, 3]", 'pin = "0-3"', "vm[0].pin: expected an array, got '0-3'"),
    ('[host]\npreset = "intel-icx"\ncpus = 4\n', 'host = "intel-icx"\n',
     "host: expected a table, got 'intel-icx'"),
], ids=["str-for-int", "float-for-int", "int-for-bool", "str-for-float", "inf", "str-for-array",
        "str-for-table"])
def test_wrong_type_says_what_was_expected(old: str, new: str, expected: str) -> None:
    """A value of the wrong TOML type is not coerced: the error names the expected type."""
    assert problems(edit(old, new)) == [f"x.toml: {expected}"]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("duration_ms = 600", "duration_ms = 0", "duration_ms: expected a value >= 0.001, got 0"),
    ("cpus = 4", "cpus = 0", "host.cpus: expected a value >= 1, got 0"),
    ("cpus = 4", "cpus = 4\ntick_hz = 100000",
     "host.tick_hz: expected a value <= 10000, got 100000"),
    ("pin = [0, 1, 2, 3]", "pin = [0, 1, -2, 3]", "vm[0].pin[2]: expected a value >= 0, got -2"),
], ids=["duration", "cpus", "tick_hz", "pin"])
def test_out_of_range_values_name_the_bound(old: str, new: str, expected: str) -> None:
    """Numbers outside their range and empty required arrays name the bound."""
    assert problems(edit(old, new)) == [f"x.toml: {expected}"]


def test_a_vm_needs_a_guest() -> None:
    """[[vm]] without [[vm.guest]] is refused, and so is an empty guest array."""
    head = 'duration_ms = 1\n[host]\npreset = "intel-icx"\n[[vm]]\n'
    assert problems(head) == ["x.toml: vm[0].guest: missing required key"]
    assert problems(head + "guest = []\n") == \
        ["x.toml: vm[0].guest: expected at least 1 entry, got []"]


def test_missing_required_keys() -> None:
    """duration_ms and host.preset have no default."""
    text = edit("duration_ms = 600\n", "").replace('preset = "intel-icx"\n', "")
    assert problems(text) == ["x.toml: duration_ms: missing required key",
                              "x.toml: host.preset: missing required key"]


def test_bad_preset_lists_the_valid_names() -> None:
    """An unknown preset is refused with every preset name (CPU presets, then host
    presets), in the tables' order."""
    names = ", ".join(repr(n) for n in PRESET_NAMES)
    assert problems(edit('preset = "intel-icx"', 'preset = "icx"')) == \
        [f"x.toml: host.preset: expected one of {names}, got 'icx'"]


def test_bad_workload_lists_the_phases() -> None:
    """An unknown workload is refused with every built-in workload's name (the phases
    first, then the SPEC CPU2017 presets)."""
    names = ", ".join(repr(n) for n in builtin())
    assert list(builtin())[:len(PHASES)] == list(PHASES)
    assert problems(BASE + 'workload = "br-instr"\n') == \
        [f"x.toml: vm[0].guest[0].workload: expected one of {names}, got 'br-instr'"]


def test_bad_tool_message_is_the_documented_one() -> None:
    """The example error of the brief, word for word."""
    assert problems(edit('tool = "perf-record"', 'tool = "perf-top"'), "examples/x.toml") == [
        "examples/x.toml: vm[0].guest[0].tool: expected one of 'none', 'perf-record', "
        "'perf-stat', 'lbr-sampler', got 'perf-top'"]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("pin = [0, 1, 2, 3]", "pin = [0, 1, 2]",
     "vm[0].pin: expected one pCPU per vCPU (4 entries for vcpus = 4), got [0, 1, 2]"),
    ("pin = [0, 1, 2, 3]", "pin = [0, 1, 2, 4]",
     "vm[0].pin[3]: expected a pCPU < host.cpus = 4, got 4"),
    ("[[vm.guest]]", "[[vm.guest]]\nvcpu = 4",
     "vm[0].guest[0].vcpu: expected 'all' or a vCPU index < vcpus = 4, got 4"),
    ("[[vm.guest]]", '[[vm.guest]]\nvcpu = "any"',
     "vm[0].guest[0].vcpu: expected a vCPU index (an integer >= 0) or 'all', got 'any'"),
    ("[[vm.guest]]", "[[vm.guest]]\nstart_ms = 600",
     "vm[0].guest[0].start_ms: expected a start before duration_ms = 600, got 600"),
], ids=["pin-length", "pin-range", "vcpu-range", "vcpu-type", "late-start"])
def test_cross_checks_name_the_exact_entry(old: str, new: str, expected: str) -> None:
    """Checks that compare two keys report at the entry that is wrong."""
    assert problems(edit(old, new)) == [f"x.toml: {expected}"]


@pytest.mark.parametrize(("extra", "expected"), [
    ("freq = 1000\nperiod = 10000\n", "vm[0].guest[0].period: give freq (-F) or period (-c), "
                                      "not both; got freq = 1000 and period = 10000"),
    ('tool = "perf-stat"\nfreq = 1000\n', "vm[0].guest[0].freq: applies only to perf-record"),
], ids=["freq-and-period", "freq-with-perf-stat"])
def test_sampling_options(extra: str, expected: str) -> None:
    """freq and period are perf record's -F and -c: exclusive, and not for perf stat."""
    text = BASE.replace('tool = "perf-record"\n', "") if "tool" in extra else BASE
    assert problems(text + extra) == [f"x.toml: {expected}"]


def test_tool_needs_events_and_no_tool_takes_none() -> None:
    """A perf tool without events, or events without a tool, is an error."""
    assert problems(edit('events = ["cycles"]\n', "")) == [
        "x.toml: vm[0].guest[0].events: expected at least one event for tool = 'perf-record', "
        "got []"]
    assert problems(edit('tool = "perf-record"\n', "")) == [
        "x.toml: vm[0].guest[0].events: applies only with tool = 'perf-record' or 'perf-stat'; "
        "got tool = 'none'"]
    assert problems(edit('events = ["cycles"]', 'events = ["cycles,instructions"]')) == [
        "x.toml: vm[0].guest[0].events[0]: expected a perf event name like 'cycles', "
        "'instructions:u' or a raw event like 'r00c0', got 'cycles,instructions'"]


@pytest.mark.parametrize(("task", "expected"), [
    ('kind = "perf-stat"', "host_task[0].events: expected at least one event for "
                           "kind = 'perf-stat', got []"),
    ('kind = "perf-top"', "host_task[0].kind: expected one of 'perf-record', 'perf-stat', "
                          "'rdpmc-reader', 'load', got 'perf-top'"),
    ('kind = "load"\nevents = ["cycles"]', "host_task[0].events: does not apply to kind = 'load'"),
    ('kind = "load"\ninterval_us = 5', "host_task[0].interval_us: applies only to "
                                       "kind = 'rdpmc-reader'; got kind = 'load'"),
    ('kind = "rdpmc-reader"\nworkload = "memory"', "host_task[0].workload: applies only to "
                                                   "kind = 'load'; got kind = 'rdpmc-reader'"),
    ('kind = "perf-stat"\nevents = ["cycles"]\nperiod = 5',
     "host_task[0].period: applies only to perf-record"),
    ('kind = "load"\ncpu = 4', "host_task[0].cpu: expected a pCPU < host.cpus = 4, got 4"),
], ids=["no-events", "bad-kind", "load-events", "load-interval", "reader-workload",
        "stat-period", "cpu-range"])
def test_host_task_checks(task: str, expected: str) -> None:
    """Host tasks take the keys of their kind only, and must fit the host."""
    assert problems(BASE + f"[[host_task]]\n{task}\n") == [f"x.toml: {expected}"]


@pytest.mark.parametrize(("vm_keys", "expected"), [
    ('design = "emulated:is_paused"', "vm[0].design: design option must be key=value, "
                                      "not 'is_paused' in 'emulated:is_paused'"),
    ('design = "emu lated"', "vm[0].design: design must be NAME or NAME:key=value,..., "
                             "not 'emu lated'"),
    ('design = "emulated:x=1"\ndesign_options = { x = 2 }',
     "vm[0].design_options.x: is also set in design = 'emulated:x=1'; set it in one place"),
    ("design_options = { x = 1.5 }",
     "vm[0].design_options.x: expected a string, an integer or a boolean, got 1.5"),
    ('filter = { action = "deny", events = ["c0"] }', "vm[0].filter.events[0]: expected an "
     "event select as an integer or a hex string like '0x00c0', got 'c0'"),
    ('filter = { action = "block" }',
     "vm[0].filter.action: expected one of 'allow', 'deny', got 'block'"),
    ('name = "my vm"', "vm[0].name: expected a name of letters, digits, '_', '.' or '-', "
                       "got 'my vm'"),
], ids=["option-syntax", "name-syntax", "option-twice", "option-type", "filter-event",
        "filter-action", "vm-name"])
def test_vm_design_and_filter_checks(vm_keys: str, expected: str) -> None:
    """Design specs are checked for syntax only; filter events and actions are checked."""
    assert problems(edit("vcpus = 4\n", f"vcpus = 4\n{vm_keys}\n")) == [f"x.toml: {expected}"]


def test_duplicate_vm_names() -> None:
    """Two VMs may not share a name, including a default one."""
    text = BASE + '[[vm]]\nname = "vm0"\n[[vm.guest]]\n'
    assert problems(text) == ["x.toml: vm[1].name: expected a unique VM name, got 'vm0' again"]


def test_several_problems_are_one_error_with_one_line_each() -> None:
    """Independent mistakes are all reported, each on its own line naming the file."""
    text = edit("cpus = 4", 'cpus = "4"\ntick_hz = 0') + 'workload = "nope"\n'
    lines = problems(text)
    assert len(lines) == 3
    assert all(line.startswith("x.toml: ") for line in lines)
    assert [line.split(": ")[1] for line in lines] == \
        ["host.cpus", "host.tick_hz", "vm[0].guest[0].workload"]


def test_toml_syntax_error_names_file_line_and_column() -> None:
    """tomllib's message (with line and column) is kept, prefixed by the file."""
    assert problems(BASE + "runs = = 3\n") == \
        ["x.toml: invalid TOML: Invalid value (at line 11, column 8)"]


def test_load_scenario_reads_a_file_and_names_it(tmp_path: Path) -> None:
    """load_scenario parses a file; its errors carry the file's path."""
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(BASE)
    bad.write_text(edit("cpus = 4", "cpus = -1"))
    assert load_scenario(good).host.cpus == 4
    with pytest.raises(ScenarioError, match=rf"^{bad}: host.cpus: expected a value >= 1, got -1$"):
        load_scenario(str(bad))
    with pytest.raises(ScenarioError, match=r"missing\.toml: cannot read: No such file"):
        load_scenario(tmp_path / "missing.toml")


def test_scenario_error_is_a_value_error_with_structured_problems() -> None:
    """Callers can catch ValueError and still read each problem's source, path and message."""
    with pytest.raises(ValueError, match=r"host\.cpus") as info:
        parse_scenario(edit("cpus = 4", "cpus = 0"), "f.toml")
    assert isinstance(info.value, ScenarioError)
    (p,) = info.value.problems
    assert (p.source, p.path, p.message) == ("f.toml", "host.cpus", "expected a value >= 1, got 0")


# --- --set overrides -----------------------------------------------------------------------

def test_overrides_set_values_as_toml_or_as_strings() -> None:
    """Values read as TOML (ints, bools, arrays, quoted strings), otherwise as bare strings."""
    s = parse_scenario(BASE, overrides=[
        "host.cpus=8", "vm[0].design=mediated", "host.nmi_watchdog=true",
        "vm[0].pin=[4, 5, 6, 7]", 'vm[0].guest[0].workload="memory"',
        "vm[0].design_options.is_paused=false", "vm[0].pmu.version=2", "seed = 7",
    ])
    assert (s.host.cpus, s.host.nmi_watchdog, s.seed) == (8, True, 7)
    vm = s.vm[0]
    assert (vm.design, vm.pin, vm.guest[0].workload) == ("mediated", [4, 5, 6, 7], "memory")
    assert vm.design_options == {"is_paused": False}
    assert vm.pmu is not None and vm.pmu.version == 2


def test_overrides_apply_to_a_scenario_and_leave_the_input_alone() -> None:
    """apply_overrides takes a Scenario or plain data and never changes what it was given."""
    s = parse_scenario(BASE)
    data = s.model_dump()
    changed = apply_overrides(s, ["vm[0].guest[0].runs=10"])
    assert (changed.vm[0].guest[0].runs, s.vm[0].guest[0].runs) == (10, 1)
    assert apply_overrides(data, ["duration_ms=5"]).duration_ms == 5.0
    assert data == s.model_dump()
    assert isinstance(apply_overrides(data, []), Scenario)


def test_overrides_add_the_next_entry_of_an_array_of_tables() -> None:
    """``host_task[N].key=value`` with N entries so far adds one: a host ``perf record -a``
    beside the guest's, from the command line."""
    s = parse_scenario(BASE, overrides=["host_task[0].kind=perf-record",
                                        'host_task[0].events=["cycles"]'])
    assert [(t.kind, t.events, t.cpu) for t in s.host_task] == [("perf-record", ["cycles"], None)]


@pytest.mark.parametrize(("override", "expected"), [
    ("host.cpuz=8", "--set host.cpuz=8: host.cpuz: unknown key (did you mean 'cpus'?); "
                    "expected one of preset, cpus, nmi_watchdog, tick_hz, clear_dirty_counters, "
                    "max_sample_rate, vhe"),
    ("vm[2].design=x", "--set vm[2].design=x: vm[2]: no such entry; vm has 1 entry "
                       "(--set can change them, or add the next: vm[1].KEY=VALUE)"),
    ("vm.design=x", "--set vm.design=x: vm.design: vm is an array: expected an index like [0]"),
    ("host.cpus.n=1", "--set host.cpus.n=1: host.cpus.n: host.cpus is a value, not a table"),
    ("host.cpus", "--set host.cpus: expected key=value, got no '='"),
    ("vm[0]..x=1", "--set vm[0]..x=1: expected a key path like vm[0].design, got 'vm[0]..x'"),
    ("host.cpus=0", "--set host.cpus=0: host.cpus: expected a value >= 1, got 0"),
    ("vm[0].guest[0].tool=top", "--set vm[0].guest[0].tool=top: vm[0].guest[0].tool: "
                                "expected one of 'none', 'perf-record', 'perf-stat', "
                                "'lbr-sampler', got 'top'"),
    ("vm[0].pin=[0, 1]", "--set vm[0].pin=[0, 1]: vm[0].pin: expected one pCPU per vCPU "
                         "(4 entries for vcpus = 4), got [0, 1]"),
], ids=["unknown-key", "no-entry", "array-without-index", "below-a-value", "no-equals",
        "bad-path", "bad-value", "bad-choice", "cross-check"])
def test_bad_overrides_name_the_option(override: str, expected: str) -> None:
    """A --set that names no place in the schema, or sets a bad value, is blamed by name."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(BASE, "x.toml", overrides=[override])
    assert str(info.value) == expected


def test_problems_an_override_did_not_cause_name_the_file() -> None:
    """A --set that shrinks vcpus leaves the pin mismatch blamed on the file that wrote pin."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(BASE, "x.toml", overrides=["vm[0].vcpus=2"])
    assert str(info.value) == ("x.toml: vm[0].pin: expected one pCPU per vCPU "
                               "(2 entries for vcpus = 2), got [0, 1, 2, 3]")
