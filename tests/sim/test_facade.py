"""The public facade: a sorted __all__, every name documented in the module docstring."""

from __future__ import annotations

import re

import vpmu.sim


def test_all_is_sorted_and_importable() -> None:
    """__all__ is sorted (constants, classes, functions) and every name exists."""
    names = vpmu.sim.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    assert all(hasattr(vpmu.sim, name) for name in names)


def test_docstring_names_the_vocabulary() -> None:
    """Each public name appears in the module docstring, so the docs cannot drift from __all__."""
    doc = vpmu.sim.__doc__ or ""
    missing = [name for name in vpmu.sim.__all__ if not re.search(rf"\b{name}\b", doc)]
    assert missing == []


def test_no_project_imports() -> None:
    """The kernel imports nothing else of the project (the layers rule of DESIGN.md)."""
    import pathlib

    package = pathlib.Path(vpmu.sim.__file__).parent
    for module in package.glob("*.py"):
        imports = re.findall(r"^\s*(?:from|import)\s+(vpmu\.\w+)", module.read_text(), re.M)
        assert set(imports) <= {"vpmu.sim"}, module.name
