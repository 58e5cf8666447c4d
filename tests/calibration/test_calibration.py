"""The validation table of docs/calibration.md, row by row: each fitted and predicted row run
through the model (benchmarks/calibrate.py computes them) and held to the tolerance the doc
states before the table. A predicted row the model misses is a known disagreement: its test
asserts the documented error band instead, so a change that moves it is seen either way.
The scenario rows (seed 001, reuse 2019) are in the slow tier."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from vpmu.arch.presets import PRESETS
from vpmu.machine.microbench import cpuid_round_trip


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "calibrate.py"
    spec = importlib.util.spec_from_file_location("calibrate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["calibrate"] = module
    spec.loader.exec_module(module)
    return module


cal = _load()
KNOWN_DISAGREEMENTS = {
    "skl-fastpath-noapicv": (-0.70, -0.55),
    "skl-fastpath-noapicv-adv": (-0.70, -0.55),
    "skl-fastpath-apicv-adv": (-0.30, -0.25),
    "skl-reuse-off": (-0.55, -0.40),
    "skl-reuse-on": (-0.50, -0.35),
    "spr-specint-6-emulated": (1.1, 1.5),
    "spr-specint-10-emulated": (1.1, 1.6),
    "spr-specint-10-all": (0.4, 0.65),
    "spr-specint-10-filter": (1.2, 1.7),
}
"""Predicted rows outside their tolerance, with the error band docs/calibration.md reports
(its "Disagreements" section says why)."""
FAST = [r for r in cal.ROWS if r.measure is not None and not r.slow]
SLOW = [r for r in cal.ROWS if r.measure is not None and r.slow and r.preset != "intel-icx"]


def _check(row: object) -> None:
    out = cal.evaluate(row)
    if row.key in KNOWN_DISAGREEMENTS:  # type: ignore[attr-defined]
        low, high = KNOWN_DISAGREEMENTS[row.key]  # type: ignore[attr-defined]
        assert not out["within"] and low <= out["error"] <= high, out
    else:
        assert out["within"], out


@pytest.mark.parametrize("row", FAST, ids=[r.key for r in FAST])
def test_row(row: object) -> None:
    """Each fast row within its tolerance (or its bound), or in its documented band."""
    _check(row)


@pytest.mark.slow
@pytest.mark.parametrize("row", SLOW, ids=[r.key for r in SLOW])
def test_scenario_row(row: object) -> None:
    """The reuse-2019 rows on intel-skl and the SPECint-2017 rows on intel-spr (the seed-001
    rows are test_seed001.py's)."""
    _check(row)


def test_there_are_at_least_as_many_predicted_rows_as_fitted_ones() -> None:
    labels = [r.label for r in cal.ROWS]
    assert labels.count("predicted") >= labels.count("fitted")


def test_not_modelled_rows_have_no_model_value_and_others_have_one() -> None:
    for r in cal.ROWS:
        assert (r.measure is None) == (r.label == "not modelled"), r.key
        assert r.label in ("fitted", "predicted", "not modelled"), r.key
        assert r.preset in PRESETS, r.key


def test_each_fit_reproduces_the_value_in_the_table() -> None:
    """Refitting each parameter to its rows gives the value the cost table holds."""
    for fit in cal.FITS:
        assert cal.refit(fit, fit.rows) == fit.value, fit.name


def test_leave_one_out_skl() -> None:
    """Fitted to 2020's VMCALL, SKL predicts 2019's "1,800" within the round-trip tolerance;
    fitted to 2019's, it misses 2020's by +15.5% (a documented disagreement, just outside)."""
    out = cal.leave_one_out("plain exit, intel-skl", "skl-vmcall", "skl-vmentry-2019")
    assert abs(out["error"]) <= cal.TOL_ROUND_TRIP, out
    out = cal.leave_one_out("plain exit, intel-skl", "skl-vmentry-2019", "skl-vmcall")
    assert cal.TOL_ROUND_TRIP < out["error"] <= 0.17, out


def test_borrowed_presets_share_their_lenders_exit_path() -> None:
    for borrower, lender in cal.PLAIN_EXIT_BORROWED.items():
        assert cpuid_round_trip(borrower, "emulated") == cpuid_round_trip(lender, "emulated")


def test_elision_saves_one_wrmsr_minus_one_rdpmc_per_counter() -> None:
    """EMR has 12 counters, all equal at load: elision saves 12 x (WRMSR - RDPMC)."""
    saved = (cpuid_round_trip("intel-emr", "mediated:elide_writes=false")
             - cpuid_round_trip("intel-emr", "mediated"))
    assert saved == 12 * (110 - 30)
