"""The docs and the code cite upstream sources, never files a clone of the project lacks.

A user who clones the repository has docs/, README.md, examples/ and src/; the project's
working notes and the mailing-list threads it started from are not there. So a citation must
name the upstream source itself (a kernel file at a version, a commit, a mailing-list subject
and date, a manual section; docs/sources.md lists them), and a seed thread ("seed 001") must
say what it is, or point to docs/sources.md, in every file that names it.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

NOTES = ("kvm_x86_vpmu", "kvm_arm64_pmu", "conformance_suites", "anchors_peers",
         "style_anchors", "DESIGN", "STYLE")
"""The project's working notes, cited by file name: outside the repository unless a file of
that name is in it."""

OUTSIDE = [
    (re.compile(r"(?<![\w./-])(?:\.\./)*(?:shared|reference|seeds)/"),
     "a path into the working notes (reference/, seeds/, shared/)"),
    (re.compile(r"\bref\. ?(?:\d|open|section)"), "a section of the working notes (ref. N)"),
    (re.compile(r"\b[Rr]eference (?:\d|open question)|\b[Rr]eference section"),
     "a section of the working notes (reference N)"),
    (re.compile(r"\b[Tt]he reference(?:'s)? (?:is silent|does not say|leaves|attributes|gives"
                r"|open question|says)"), "the working notes as a document"),
    (re.compile(r"\[(?:mem|inf|ML|code)(?:[/,][^\]\n]*)?\]"),
     "a tag of the working notes ([mem], [inf], [ML], [code])"),
    (re.compile(r"\(issue \d+\)|\b(?:in|from|since) issue \d+\b"), "the project's issue tracker"),
    (re.compile(r"/work/"), "a path on the machine the project was written on"),
]
"""Citations of something a clone does not have."""

SEED = re.compile(r"\b[Ss]eeds? (0\d\d)\b")
"""A seed thread named in prose (``examples/seed-001.toml``, a path, is not prose)."""

SEED_SUBJECT = {
    "000": "save/restore of PMU state",
    "001": "pmc->is_paused",
    "002": "save/restore the guest lbr stack",
    "003": "save/restore of PMU state",
    "004": "multiple host PMUs",
}
"""What a file that names a seed must also say (a part of the thread's subject), unless it
points to docs/sources.md."""


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _checked(path: Path) -> bool:
    rel = _rel(path)
    return "__pycache__" not in rel


def text_files() -> list[Path]:
    """The docs, the README and the examples: every line is checked."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
             *sorted(p for p in (ROOT / "examples").rglob("*") if p.is_file())]
    return [p for p in files if _checked(p)]


def source_files() -> list[Path]:
    """The package's modules: their strings, docstrings and comments are checked."""
    return [p for p in sorted((ROOT / "src" / "vpmu").rglob("*.py")) if _checked(p)]


def prose(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of what a reader reads: a text file's lines, a module's strings and
    comments."""
    text = path.read_text()
    if path.suffix != ".py":
        yield from enumerate(text.splitlines(), 1)
        return
    kinds = {tokenize.STRING, tokenize.COMMENT}
    kinds |= {getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in kinds:
            for i, line in enumerate(tok.string.splitlines()):
                yield tok.start[0] + i, line.lstrip("# ") if tok.type == tokenize.COMMENT else line


def outside_citations(path: Path) -> list[str]:
    """Every citation in a file of something outside the repository, as ``file:line: why``."""
    notes = [n for n in NOTES if not (ROOT / f"{n}.md").exists()]
    note_file = re.compile(rf"\b(?:{'|'.join(notes)})\.md\b") if notes else None
    found = []
    for line_no, line in prose(path):
        whys = [why for pattern, why in OUTSIDE if pattern.search(line)]
        if note_file is not None and note_file.search(line):
            whys.append("a file of the working notes")
        found += [f"{_rel(path)}:{line_no}: {why}: {line.strip()}" for why in whys]
    return found


def unexplained_seeds(path: Path) -> list[str]:
    """The seeds a file names without saying what they are."""
    said = " ".join(" ".join(line.strip().lstrip("#") for _, line in prose(path)).split())
    if "sources.md" in said:
        return []
    return [f"{_rel(path)}: seed {seed} named without its thread (subject, or docs/sources.md)"
            for seed in sorted(set(SEED.findall(said))) if SEED_SUBJECT[seed] not in said]


ALL = text_files() + source_files()


@pytest.mark.parametrize("path", ALL, ids=_rel)
def test_cites_nothing_outside_the_repository(path: Path) -> None:
    """No path into the working notes, no section or tag of them, no machine path."""
    assert outside_citations(path) == []


@pytest.mark.parametrize("path", ALL, ids=_rel)
def test_every_seed_named_says_what_it_is(path: Path) -> None:
    """A file naming seed NNN gives the thread's subject or points to docs/sources.md."""
    assert unexplained_seeds(path) == []


def test_sources_page_is_linked_and_lists_every_seed() -> None:
    """docs/sources.md exists, names every seed's thread, and the README and the
    architecture page link it."""
    sources = (ROOT / "docs" / "sources.md").read_text()
    for seed, subject in SEED_SUBJECT.items():
        assert f"seed {seed}" in sources and subject in sources
    assert "docs/sources.md" in (ROOT / "README.md").read_text()
    assert "sources.md" in (ROOT / "docs" / "architecture.md").read_text()


@pytest.mark.parametrize("line", [
    "see reference/kvm_x86_vpmu.md 2.3", "as ../shared/reference/x.md says",
    "seeds/001_c462949b22e1e6a0.txt", "(ref. 4)", "(ref. open question 2)",
    "recalled from memory [mem].", "(upstream's effect, 2.2 [inf])", "[code/mem]",
    "reference 5", "where the reference is silent", "(issue 3)", "fitted in issue 3",
    "/work/main/src",
])
def test_the_patterns_catch_outside_citations(line: str) -> None:
    """Each kind of outside citation is caught."""
    assert any(p.search(line) for p, _ in OUTSIDE)


@pytest.mark.parametrize("line", [
    "src/vpmu/vpmu/designs/mediated/switch.py", "docs/mediated.md", "tests/test_readme.py",
    "arch/x86/kvm/pmu.c@v6.6", "tools/testing/selftests/kvm/x86/pmu_counters_test.c",
    "examples/seed-001.toml", "kvm-unit-tests x86/pmu.c", "every design is compared against "
    "this reference", "the .py sources stay the reference: the compiled modules",
    "tests/properties/reference_model.py", "arch/arm64/kvm/pmu-emul.c (Linux v6.16)",
    "Intel SDM Vol. 3B 20.2", "Arm ARM DDI 0487 D13.2", "102142 issue 01",
])
def test_the_patterns_leave_repository_paths_alone(line: str) -> None:
    """In-repository paths, kernel paths and manual sections are not outside citations."""
    assert not any(p.search(line) for p, _ in OUTSIDE)
