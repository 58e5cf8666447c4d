"""``[[workload]]`` tables: what a scenario may say of its own workloads, and the errors that
name the key path when it says something wrong."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vpmu.scenario import parse_scenario
from vpmu.scenario.load import ScenarioError
from vpmu.scenario.schema import Scenario

HEAD = """\
duration_ms = 5
[host]
preset = "intel-icx"
cpus = 2
[[vm]]
[[vm.guest]]
workload = "{guest}"
"""

PARSE = """\
[[workload.phase]]
name = "parse"
{size_parse}
ipc = {ipc}
branches_pki = 190
branch_mpki = 4.1
llc_refs_pki = 6
llc_mpki = 1.2
"""

REPLY = """\
[[workload.phase]]
name = "reply"
{size_reply}
ipc = 0.9
loads_pki = 300
stores_pki = 120
user_fraction = 0.4
"""


def text(*, guest: str = "myserver", size_parse: str = "share = 0.3",
         size_reply: str = "share = 0.7", extra: str = "", ipc: str = "1.8") -> str:
    """A scenario whose guest runs ``guest``, with a two-phase ``myserver`` workload."""
    return (HEAD.format(guest=guest) + '[[workload]]\nname = "myserver"\n' + extra
            + PARSE.format(size_parse=size_parse, ipc=ipc) + REPLY.format(size_reply=size_reply))


def problems(source: str) -> list[str]:
    """The problem lines loading ``source`` reports."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(source)
    return info.value.lines()


def test_a_workload_round_trips_and_names_a_guest_workload() -> None:
    """A [[workload]] loads, dumps with every key, and reads back as the same scenario."""
    sc = parse_scenario(text(extra="repeat = 3\n"))
    (w,) = sc.workload
    assert (w.name, w.repeat, [p.name for p in w.phase]) == ("myserver", 3, ["parse", "reply"])
    dumped = sc.model_dump()
    assert dumped["workload"][0]["phase"][1]["loads_pki"] == 300
    assert Scenario.model_validate(dumped) == sc
    assert sc.vm[0].guest[0].workload == "myserver"


def test_a_scenario_without_workloads_dumps_as_before() -> None:
    """No [[workload]]: no ``workload`` key in the dump (results stay byte-identical)."""
    sc = parse_scenario(HEAD.format(guest="br_instr"))
    assert "workload" not in sc.model_dump()
    assert list(sc.model_dump()) == ["name", "description", "duration_ms", "seed", "host",
                                     "vm", "host_task"]


def test_built_in_and_spec_workloads_are_accepted() -> None:
    """Guests and loads may name a built-in phase, a SPEC preset or the suite mix."""
    for name in ("compute", "spec2017.505.mcf_r", "specint2017"):
        assert parse_scenario(HEAD.format(guest=name)).vm[0].guest[0].workload == name
    load = (HEAD.format(guest="br_instr")
            + '[[host_task]]\nkind = "load"\nworkload = "specint2017"\n')
    assert parse_scenario(load).host_task[0].workload == "specint2017"


def test_rates_become_the_phase_as_written() -> None:
    """Rates per kilo-instruction become per-instruction rates at their decimal values."""
    w = parse_scenario(text()).workloads()["myserver"]
    parse, reply = (p.phase for p in w.phases)
    assert parse.name == "myserver.parse"
    assert parse.ipc == Fraction(9, 5)
    assert parse.branches_per_insn == Fraction(19, 100)
    assert parse.branch_miss_rate == Fraction(41, 1900)
    assert (parse.llc_refs_per_kinsn, parse.llc_miss_rate) == (6, Fraction(1, 5))
    assert (reply.loads_per_insn, reply.stores_per_insn) == (Fraction(3, 10), Fraction(3, 25))
    assert (reply.user_fraction, reply.branch_miss_rate) == (Fraction(2, 5), 0)
    assert [p.weight for p in w.phases] == [Fraction(3, 10), Fraction(7, 10)]


def test_instructions_weigh_phases_by_their_cycles() -> None:
    """Phases sized in instructions share each pass's time by instructions / ipc."""
    sc = parse_scenario(text(size_parse="instructions = 1.8e8", size_reply="instructions = 9e7"))
    w = sc.workloads()["myserver"]
    assert [p.weight for p in w.phases] == [10**8, 10**8]


@pytest.mark.parametrize(("edit", "expected"), [
    ({"ipc": "0"},
     "workload[0].phase[0].ipc: expected a value > 0, got 0"),
    ({"size_reply": "share = 0.6"},
     "workload[0].phase: expected the phases' shares to sum to 1, got 0.9"),
    ({"size_reply": "instructions = 1e8"},
     "workload[0].phase[1].instructions: expected every phase of a workload to give share"),
    ({"size_parse": "share = 0.3\ninstructions = 5"},
     "workload[0].phase[0]: expected one of instructions or share, got both"),
    ({"size_parse": ""}, "workload[0].phase[0]: expected one of instructions or share, got "
                         "neither"),
    ({"size_reply": "share = 0.7\nbranch_mpki = 2.5"},
     "workload[0].phase[1].branch_mpki: expected at most branches_pki = 0, got 2.5"),
    ({"size_reply": "share = 0.7\nllc_mpki = 3"},
     "workload[0].phase[1].llc_mpki: expected at most llc_refs_pki = 0, got 3"),
    ({"size_reply": "share = 0.7\nbranches_pki = 1001"},
     "workload[0].phase[1].branches_pki: expected a value <= 1000, got 1001"),
    ({"size_parse": "share = 0.3\nuser_fraction = 1.5"},
     "workload[0].phase[0].user_fraction: expected a value <= 1, got 1.5"),
    ({"size_parse": "share = 0.3\nipc_typo = 1"},
     "workload[0].phase[0].ipc_typo: unknown key"),
    ({"guest": "myservr"}, "vm[0].guest[0].workload: expected one of 'br_instr'"),
    ({"extra": "repeat = 0\n"}, "workload[0].repeat: expected a value >= 1, got 0"),
])
def test_errors_name_the_key_path(edit: dict[str, str], expected: str) -> None:
    """Each bad value is reported at its key path, with what was expected."""
    lines = problems(text(**edit))
    assert any(expected in line for line in lines), lines


def test_empty_and_missing_phases_are_refused() -> None:
    """A workload needs at least one phase."""
    base = HEAD.format(guest="w") + '[[workload]]\nname = "w"\n'
    assert problems(base + "phase = []\n") == [
        "<string>: workload[0].phase: expected at least 1 entry, got []"]
    assert problems(base) == ["<string>: workload[0].phase: missing required key"]


def test_names_must_be_new_and_unique() -> None:
    """A workload may not take a built-in's name or another's; phase names are unique."""
    clash = text(guest="compute").replace('name = "myserver"', 'name = "compute"', 1)
    assert any("workload[0].name: expected a new workload name, got 'compute', a built-in"
               in line for line in problems(clash))
    dup = text(size_reply="share = 0.7").replace('name = "reply"', 'name = "parse"')
    assert any("workload[0].phase[1].name: expected a unique phase name, got 'parse' again"
               in line for line in problems(dup))


def test_a_load_naming_an_unknown_workload_is_refused() -> None:
    """A host load's workload is checked like a guest's."""
    source = (HEAD.format(guest="br_instr")
              + '[[host_task]]\nkind = "load"\nworkload = "nosuch"\n')
    assert any(line.startswith("<string>: host_task[0].workload: expected one of")
               and line.endswith("got 'nosuch'") for line in problems(source))
