"""The HTML report in a real browser: headless Chromium (Debian's package) opens the page of
a real compare, every chart renders (SVG and WebGL) with no console error, and a full-page
screenshot is left as a test artifact.

Without Chromium or Playwright the test is skipped locally, and fails under CI (``CI`` set),
so CI cannot pass by skipping it; ``.ci/run`` installs Chromium.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from vpmu.report.html import ReportRun, render_html
from vpmu.report.results import results
from vpmu.scenario import load_scenario
from vpmu.scenario.run import build, run

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("VPMU_ARTIFACTS", REPO / "test-artifacts"))
"""Where the screenshot and the page go (git-ignored by default)."""
CHARTS = 6
"""VM-exits, MSR exits, PMI latency, comparison, and one timeline per run (two)."""
RENDER_TIMEOUT_MS = 60_000
ALL_RENDERED = """() => {
    const divs = [...document.querySelectorAll('.plotly-graph-div')];
    return divs.length > 0 && divs.every(d => d.querySelector('.main-svg') !== null
        && d._fullLayout !== undefined);
}"""
"""Every plotly div has its SVG layers and plotly's finished layout."""


def _chromium() -> str | None:
    """Chromium's executable: ``VPMU_CHROMIUM`` if set, else ``chromium`` on the PATH."""
    path = os.environ.get("VPMU_CHROMIUM") or shutil.which("chromium")
    return path if path and Path(path).is_file() else None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser test (.ci/run installs chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    """Chromium's executable; skip (fail under CI) without it or without Playwright."""
    executable = _chromium()
    if executable is None:
        _unavailable("chromium is not installed")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed")
    assert executable is not None
    return executable


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of seed 001 over 3 ms, emulated against mediated (the emulated run's perf
    calls and exits make WebGL traces)."""
    runs = []
    for design in ("emulated", "mediated"):
        scenario = load_scenario(REPO / "examples/seed-001.toml", overrides=["duration_ms=3"])
        outcome = run(build(scenario, design, keep_trace=True))
        runs.append(ReportRun(design, results(outcome), outcome.records, outcome.end_ps))
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(runs, title="seed-001: emulated vs mediated"), encoding="utf-8")
    return path


def test_charts_render_in_chromium(chromium: str, page_file: Path) -> None:
    """Every chart renders with no console error or page error; screenshot to ARTIFACTS."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: errors.append(f"console: {m.text}")
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.goto(page_file.as_uri())
            page.wait_for_function(ALL_RENDERED, timeout=RENDER_TIMEOUT_MS)
            charts: Any = page.eval_on_selector_all(
                ".plotly-graph-div", "ds => ds.map(d => [d.id, d.data.length, "
                "d.querySelectorAll('canvas').length])")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page_file, ARTIFACTS / "report.html")
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert len(charts) == CHARTS
    assert all(traces > 0 for _, traces, _ in charts)
    timelines = {cid: canvases for cid, _, canvases in charts if cid.startswith("vpmu-timeline")}
    assert timelines["vpmu-timeline-0"] > 0  # the emulated run's WebGL traces have a canvas
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
