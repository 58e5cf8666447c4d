"""docs/costs.md shows the code's tables and sources: every value cell by cell, every source
word for word, and its example prints what it says."""

import re
from fractions import Fraction
from pathlib import Path

import pytest

from vpmu.arch.presets import PRESETS as ALL_PRESETS
from vpmu.costs import COSTS

DOC = Path(__file__).resolve().parents[2] / "docs" / "costs.md"
ARM_SECTION = "## Arm presets"
PRESETS = [n for n in COSTS if ALL_PRESETS[n].caps.arch == "x86"]
ARM = [n for n in COSTS if ALL_PRESETS[n].caps.arch == "arm64"]


def _section(arch: str) -> str:
    """The part of the page that shows ``arch``'s tables: the Arm section, or the rest."""
    doc = DOC.read_text()
    start = doc.index(ARM_SECTION)
    end = doc.index("\n## ", start + 1)
    return doc[start:end] if arch == "arm64" else doc[:start] + doc[end:]


def _tables(doc: str) -> dict[str, list[list[str]]]:
    """Each markdown table by its header's first cells, as rows of stripped cells."""
    tables: dict[str, list[list[str]]] = {}
    for block in doc.split("\n\n"):
        lines = [ln for ln in block.strip().splitlines() if ln.startswith("|")]
        if len(lines) < 2 or len(lines) != len(block.strip().splitlines()):
            continue
        rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
        tables.setdefault(" | ".join(rows[0][:2]), []).extend(rows[2:])
    return tables


@pytest.mark.parametrize(("arch", "presets"), [("x86", PRESETS), ("arm64", ARM)])
def test_doc_values_match_the_code(arch: str, presets: list[str]) -> None:
    """Every number of every preset appears once in its architecture's value tables, with
    the code's value."""
    tables = _tables(_section(arch))
    header = f"number | `{presets[0]}`"
    rows = tables[header]
    seen = []
    for row in rows:
        name = row[0].strip("`")
        for preset, cell in zip(presets, row[1:1 + len(presets)], strict=True):
            got = dict(COSTS[preset].numbers())[name]
            assert Fraction(cell.replace(",", "")) == got, (name, preset, cell)
        seen.append(name)
    assert sorted(seen) == sorted(COSTS[presets[0]].number_names())


@pytest.mark.parametrize(("arch", "presets", "parts"),
                         [("x86", PRESETS, 3), ("arm64", ARM, 3)])
def test_doc_value_tables_have_the_presets_in_order(arch: str, presets: list[str],
                                                    parts: int) -> None:
    """Each value table's columns are the architecture's presets, in the code's order."""
    headers = re.findall(r"^\| number \|(.*)\| meaning \|$", _section(arch), re.M)
    assert len(headers) == parts
    for header in headers:
        assert [c.strip(" `") for c in header.split("|")] == presets


@pytest.mark.parametrize(("arch", "presets"), [("x86", PRESETS), ("arm64", ARM)])
def test_doc_sources_are_the_code_sources(arch: str, presets: list[str]) -> None:
    """Each Sources table is the code's sources, entry for entry and word for word."""
    rows = _tables(_section(arch))["number | source"]
    sources = COSTS[presets[0]].sources
    assert [r[0].strip("`") for r in rows] == list(sources)
    for name, text in rows:
        assert text == sources[name.strip("`")], name
    for preset in presets:
        assert COSTS[preset].sources == sources     # one Sources table per architecture


def test_doc_example_prints_what_it_says() -> None:
    """Each line of the example with a value in its comment evaluates to that value."""
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    scope: dict[str, object] = {}
    checked = 0
    for line in block.group(1).splitlines():
        code, _, comment = line.partition("#")
        comment = comment.strip()
        if not comment:
            exec(code, scope)
            continue
        value = eval(code, scope)
        expected = comment.split(":", 1)[0]
        if expected.strip("'").isdigit():
            assert value == int(expected), line
        else:
            assert str(value).startswith(expected.strip("'").removesuffix("...")), line
        checked += 1
    assert checked == 4
