"""The README's example runs and prints what the README says it prints."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_print_their_comment() -> None:
    """Each of the README's Python blocks (x86, then Arm) runs and prints the value in its
    trailing comment."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 2
    for code in blocks:
        expected = re.search(r"# (\d+)\s*$", code.strip())
        assert expected is not None
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
        assert out.getvalue().strip() == expected.group(1)


def test_quick_start_has_exactly_two_commands() -> None:
    """The Quick start opens with exactly two commands, install+run and install+test."""
    section = README.read_text().split("## Quick start", 1)[1]
    commands = re.search(r"```sh\n(.*?)```", section, re.S)
    assert commands is not None
    lines = [ln for ln in commands.group(1).splitlines() if ln.strip()]
    assert len(lines) == 2
    assert lines[0].startswith("pip install . && vpmu ") and "pytest" in lines[1]
    command = lines[0].split(" && vpmu ", 1)[1].split()
    assert command[0] in ("run", "compare") and command[1].startswith("examples/")
    example = command[1]
    assert (README.parent / example).is_file()      # the built-in example it runs exists


def test_host_doc_example_runs_and_multiplexes() -> None:
    """docs/host.md's example runs; its six events print at 66.67% running."""
    doc = (README.parent / "docs" / "host.md").read_text()
    block = re.search(r"```python\n(.*?)```", doc, re.S)
    assert block is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.group(1), "docs/host.md", "exec"), {})
    assert out.getvalue().count("(66.67%)") == 6
