"""The HTML report in a real browser: headless Chromium (Debian's package) opens the page of
a real compare, unpacks plotly.js and the timelines, every chart renders with no console
error, a timeline zoomed in shows single items and zoomed out buckets again, and a full-page
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
SHORT_MS = 10
"""seed-001 shortened: the emulated run's 16,000 timeline items open on buckets."""
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
    """The report of seed 001 over 10 ms, emulated against mediated."""
    runs = []
    for design in ("emulated", "mediated"):
        scenario = load_scenario(REPO / "examples/seed-001.toml",
                                 overrides=[f"duration_ms={SHORT_MS}"])
        outcome = run(build(scenario, design, keep_trace=True))
        runs.append(ReportRun(design, results(outcome), outcome.records, outcome.end_ps))
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(runs, title="seed-001: emulated vs mediated"), encoding="utf-8")
    return path


def test_charts_render_in_chromium(chromium: str, page_file: Path) -> None:
    """Every chart renders with no console error or page error; zooming a timeline in shows
    single items (a trace of more than 1,000 points in WebGL), double-clicking shows the
    whole run in buckets again; screenshot to ARTIFACTS."""
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
                ".plotly-graph-div", "ds => ds.map(d => [d.id, d.data.length])")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page_file, ARTIFACTS / "report.html")
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            levels = zoom_levels(page, "vpmu-timeline-0")
        finally:
            browser.close()
    assert errors == []
    assert len(charts) == CHARTS
    assert all(traces > 0 for _, traces in charts)
    (whole, whole_range), (zoomed, zoomed_x, kinds), (again, again_range) = levels
    assert " ns buckets" in whole and whole_range[0] == 0
    assert zoomed.startswith("Single items: ")
    assert all(ZOOM[0] <= x <= ZOOM[1] for x in zoomed_x) and len(zoomed_x) > 0
    assert all((kind == "scattergl") == (n > 1000) for kind, n in kinds)
    assert again == whole and again_range == whole_range
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


ZOOM = (20_000.0, 20_200.0)
"""The timeline range zoomed to (µs): a few hundred items of the emulated run."""
STATUS = "document.getElementById('{id}-status').textContent"


def zoom_levels(page: Any, div_id: str) -> list[Any]:
    """The timeline's status and x range as opened, zoomed to ``ZOOM`` (status, the marker
    traces' x values, each trace's type and points) and double-clicked back."""
    status = STATUS.format(id=div_id)
    div = f"document.getElementById('{div_id}')"
    whole = [page.evaluate(status), page.evaluate(f"{div}._fullLayout.xaxis.range")]
    page.evaluate(f"Plotly.relayout('{div_id}', {{'xaxis.range': {list(ZOOM)}}})")
    page.wait_for_function(f"() => {status}.startsWith('Single items')",
                           timeout=RENDER_TIMEOUT_MS)
    zoomed = [page.evaluate(status),
              page.evaluate(f"[].concat(...{div}.data.filter(t => t.mode === 'markers')"
                            ".map(t => t.x))"),
              page.evaluate(f"{div}.data.map(t => [t.type, t.x.length])")]
    page.evaluate(f"Plotly.relayout('{div_id}', {{'xaxis.autorange': true}})")
    page.wait_for_function(f"() => !{status}.startsWith('Single items')",
                           timeout=RENDER_TIMEOUT_MS)
    return [whole, zoomed, [page.evaluate(status),
                            page.evaluate(f"{div}._fullLayout.xaxis.range")]]
