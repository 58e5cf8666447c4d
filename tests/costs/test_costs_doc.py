"""docs/costs.md shows the code's tables and sources: every value cell by cell, every source
word for word, and its example prints what it says."""

import re
from fractions import Fraction
from pathlib import Path

from vpmu.costs import COSTS

DOC = Path(__file__).resolve().parents[2] / "docs" / "costs.md"
PRESETS = list(COSTS)


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


def test_doc_values_match_the_code() -> None:
    """Every number of every preset appears once in the value tables, with the code's value."""
    tables = _tables(DOC.read_text())
    header = f"number | `{PRESETS[0]}`"
    rows = tables[header]
    seen = []
    for row in rows:
        name = row[0].strip("`")
        for preset, cell in zip(PRESETS, row[1:1 + len(PRESETS)], strict=True):
            got = dict(COSTS[preset].numbers())[name]
            assert Fraction(cell.replace(",", "")) == got, (name, preset, cell)
        seen.append(name)
    assert sorted(seen) == sorted(COSTS[PRESETS[0]].number_names())


def test_doc_value_tables_have_the_presets_in_order() -> None:
    """Each value table's columns are the presets, in the code's order."""
    doc = DOC.read_text()
    headers = re.findall(r"^\| number \|(.*)\| meaning \|$", doc, re.M)
    assert len(headers) == 3
    for header in headers:
        assert [c.strip(" `") for c in header.split("|")] == PRESETS


def test_doc_sources_are_the_code_sources() -> None:
    """The Sources table is the code's sources, entry for entry and word for word."""
    rows = _tables(DOC.read_text())["number | source"]
    sources = COSTS[PRESETS[0]].sources
    assert [r[0].strip("`") for r in rows] == list(sources)
    for name, text in rows:
        assert text == sources[name.strip("`")], name
    for costs in COSTS.values():
        assert costs.sources == sources     # one Sources table serves every preset


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
