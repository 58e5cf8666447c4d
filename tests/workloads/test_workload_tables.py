"""Workloads of several phases: exact splits of a run's cycles, exact ground truth, the SPEC
CPU2017 presets and their one source table (which docs/workloads.md prints)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vpmu.arch import events as ev
from vpmu.scenario import parse_scenario
from vpmu.scenario.guests import workload_truth
from vpmu.scenario.run import build, run
from vpmu.workloads import PHASES
from vpmu.workloads.spec2017 import (
    PREFIX,
    SPEC_INT_RATE,
    SUITE,
    model_table,
    source_table,
)
from vpmu.workloads.table import Workload, WorkloadPhase, builtin, resolve, truth

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).parent / "scenarios"
SPEC_INT_RATE_NAMES = ("500.perlbench_r", "502.gcc_r", "505.mcf_r", "520.omnetpp_r",
                       "523.xalancbmk_r", "525.x264_r", "531.deepsjeng_r", "541.leela_r",
                       "548.exchange2_r", "557.xz_r")
"""SPECrate 2017 Integer's ten benchmarks, by number (Limaye & Adegbija, Fig. 1a)."""


def three_phases(repeat: int = 1) -> Workload:
    """br_instr, memory and compute with weights 1, 2 and 3."""
    return Workload("w", tuple(WorkloadPhase(PHASES[n], Fraction(k)) for k, n in
                               enumerate(("br_instr", "memory", "compute"), 1)), repeat)


def test_a_built_in_phase_runs_the_stream_it_ran_before() -> None:
    """A single-phase workload gives exactly ``Phase.stream_for_cycles`` (results unchanged)."""
    for name, phase in PHASES.items():
        for cycles in (0, 1, 7, 2_300_000):
            assert builtin()[name].streams(cycles) == [phase.stream_for_cycles(cycles)]


@pytest.mark.parametrize("cycles", [1, 5, 999, 10**9 + 7])
@pytest.mark.parametrize("repeat", [1, 3])
def test_the_split_is_exact_and_in_order(cycles: int, repeat: int) -> None:
    """The pieces add up to the budget exactly, in phase order, each pass weighted 1:2:3."""
    w = three_phases(repeat)
    pieces = w.cycle_split(cycles)
    assert sum(n for _, n in pieces) == cycles
    if cycles >= 6 * repeat:
        names = [p.name for p, _ in pieces]
        assert names == ["br_instr", "memory", "compute"] * repeat
        first = [n for _, n in pieces[:3]]
        assert abs(first[1] - 2 * first[0]) <= 2 and abs(first[2] - 3 * first[0]) <= 3


def test_the_truth_of_several_phases_is_the_sum_of_their_streams() -> None:
    """Each event's truth is the sum over the phases' streams, exactly."""
    streams = three_phases(2).streams(12_345_678)
    total = truth(streams)
    for key in (ev.INSTRUCTIONS, ev.CYCLES, ev.BRANCHES, ev.BRANCH_MISSES, ev.LLC_MISSES):
        assert total[key] == sum(s.get(key) for s in streams)
    # each stream rounds its instructions, then its cycles, down once
    assert 12_345_678 - len(streams) <= total[ev.CYCLES] <= 12_345_678


def test_a_guests_truth_covers_every_phase_of_every_run() -> None:
    """workload_truth of a [[workload]] guest with runs = 2: twice one run's streams."""
    sc = parse_scenario((SCENARIOS / "my-server.toml").read_text().replace(
        'tool = "perf-stat"', 'runs = 2\ntool = "perf-stat"'))
    w = sc.workloads()["myserver"]
    one_run = w.streams(2300 * 1000 * 6 // 2)  # intel-icx: 2300 MHz, 6 ms over 2 runs
    expected = {k: 2 * v for k, v in truth(one_run).items()}
    got = workload_truth(sc.vm[0], 0, sc.duration_ms, sc.host.preset, workloads=sc.workloads())
    assert got == expected
    assert len(one_run) == 6  # three phases, repeat = 2


def test_every_spec_int_rate_preset_exists_with_its_source_rates() -> None:
    """Each benchmark is a preset whose rates are the source table's, derived as documented."""
    assert tuple(m.name for m in SPEC_INT_RATE) == SPEC_INT_RATE_NAMES
    pct = Fraction(1, 100)
    for m in SPEC_INT_RATE:
        (p,) = (wp.phase for wp in resolve(PREFIX + m.name).phases)
        assert p.name == PREFIX + m.name
        assert p.ipc == m.value("ipc")
        assert p.branches_per_insn == m.value("branches_pct") * pct
        assert p.branch_miss_rate == m.value("mispredict_pct") * pct
        assert (p.loads_per_insn, p.stores_per_insn) == (m.value("loads_pct") * pct,
                                                         m.value("stores_pct") * pct)
        assert p.llc_refs_per_kinsn == (1000 * m.value("loads_pct") * m.value("l1_miss_pct")
                                        * m.value("l2_miss_pct") * pct**3)
        assert p.llc_miss_rate == m.value("l3_miss_pct") * pct
        assert p.user_fraction == 1


def test_spec_values_stated_in_the_papers_text() -> None:
    """The values Limaye & Adegbija (ISPASS 2018) state in Section IV, as the table has them."""
    by_name = {m.name: m for m in SPEC_INT_RATE}
    assert by_name["525.x264_r"].ipc == "3.024*"
    assert by_name["505.mcf_r"].ipc == "0.886*"
    assert by_name["557.xz_r"].ipc == "1.741*"
    assert by_name["505.mcf_r"].branches_pct == "31.277*"
    assert by_name["541.leela_r"].mispredict_pct == "8.656*"
    assert by_name["523.xalancbmk_r"].loads_pct == "29.151*"
    assert by_name["548.exchange2_r"].stores_pct == "15.911*"
    assert by_name["523.xalancbmk_r"].l1_miss_pct == "12.174*"
    assert by_name["505.mcf_r"].l2_miss_pct == "65.721*"
    assert by_name["531.deepsjeng_r"].l3_miss_pct == "67.516*"


def test_the_suite_mix_runs_each_benchmark_for_an_equal_share() -> None:
    """specint2017: the ten presets by number, equal weights, one pass."""
    w = resolve(SUITE)
    assert [p.phase.name for p in w.phases] == [PREFIX + n for n in SPEC_INT_RATE_NAMES]
    assert {p.weight for p in w.phases} == {1}
    assert w.repeat == 1
    cycles = [n for _, n in w.cycle_split(23_000_000)]
    assert cycles == [2_300_000] * 10


def test_docs_print_the_one_spec_table() -> None:
    """docs/workloads.md shows the source and model tables exactly as the code derives them."""
    doc = (ROOT / "docs" / "workloads.md").read_text()
    assert source_table() in doc
    assert model_table() in doc


def test_unknown_workload_names_list_the_valid_ones() -> None:
    """resolve() names the valid workloads when asked for another."""
    with pytest.raises(ValueError, match=r"workload must be one of \[.*'specint2017'"):
        resolve("nosuch")


@pytest.mark.parametrize("name", ["spec-int-rate.toml", "my-server.toml"])
def test_multi_phase_scenarios_run_and_count_their_truth(name: str) -> None:
    """The test scenarios run; perf stat's branch misses equal the phases' summed truth (the
    guest kernel's own work retires instructions and cycles but mispredicts no branch)."""
    sc = parse_scenario((SCENARIOS / name).read_text())
    outcome = run(build(sc))
    rows = {r["event"]: r for r in outcome.accuracy_rows()}
    assert rows["branch-misses"]["count"] == rows["branch-misses"]["truth"] > 0
    for event in ("instructions", "cycles", "branches"):
        assert 0 <= rows[event]["count"] - rows[event]["truth"] < rows[event]["truth"] / 100
