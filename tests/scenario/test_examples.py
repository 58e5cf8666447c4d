"""Every example scenario loads; the small ones run and show what their comments promise."""

from pathlib import Path

import pytest

from vpmu.report.results import results
from vpmu.scenario import load_scenario
from vpmu.scenario.load import validate_scenario
from vpmu.scenario.run import build, run

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_loads_and_builds(path: Path) -> None:
    """The schema accepts it and the machine it describes can be built."""
    sc = load_scenario(path)
    outcome = build(sc)
    assert len(outcome.vms) == len(sc.vm) >= 1


def _events(name: str) -> dict[str, dict[str, object]]:
    sc = load_scenario(Path(__file__).resolve().parents[2] / "examples" / f"{name}.toml")
    data = results(run(build(sc)))
    return {e["event"]: e for e in data["accuracy"]["events"]}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_echo_reads_back(path: Path) -> None:
    """The scenario a results file embeds (``scenario.file_model``, the JSON dump) is a valid
    scenario equal to the example: host tasks dump only the keys of their kind."""
    scenario = load_scenario(path)
    assert validate_scenario(scenario.model_dump(mode="json")) == scenario


def test_perf_stat_example_counts_within_half_a_percent() -> None:
    """Counting mode under emulated: every event within 0.5% of the workload's truth (the
    excess is the guest kernel's own work while the tool counts)."""
    for e in _events("perf-stat").values():
        assert e["error"] is not None and 0 <= e["error"] < 0.005  # type: ignore[operator]


def test_filter_example_denies_branches_only() -> None:
    """The denied event counts 0; the allowed one counts as usual."""
    events = _events("filter-deny-branches")
    assert events["branches"]["count"] == 0
    assert abs(events["instructions"]["error"]) < 0.005  # type: ignore[arg-type]
