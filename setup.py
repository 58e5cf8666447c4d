"""Build vpmu, compiling its hot modules to C with mypyc (issue 14).

Why a setup.py at all: mypyc's build entry point, ``mypycify``, hands setuptools a list of C
extensions, and pyproject.toml alone cannot declare them. Everything else about the package
stays in pyproject.toml, including the one list of compiled modules
(``[tool.vpmu.mypyc] modules``), so a benchmark or test reads the same list the build used.

The pure-Python sources always remain the reference: every compiled module's ``.py`` is still
installed beside its ``.so`` and gives byte-identical results. The build stays pure Python

- with ``VPMU_PURE_PYTHON=1`` in the environment of ``pip install`` (a machine without a C
  compiler, or a bisection between the two builds), and
- for an editable install (``pip install -e .``): its extensions would be built into ``src/``
  beside the sources and go stale at the first edit, so the worktree would silently run old code.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def compiled_paths() -> list[str]:
    """The hot modules' source paths, from pyproject.toml's ``[tool.vpmu.mypyc] modules``."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        modules: list[str] = tomllib.load(f)["tool"]["vpmu"]["mypyc"]["modules"]
    return [str(Path("src", *module.split(".")).with_suffix(".py")) for module in modules]


def pure_python() -> bool:
    """Whether this build installs the sources alone (see the module docstring)."""
    editable = any(command in sys.argv for command in ("editable_wheel", "develop"))
    return editable or os.environ.get("VPMU_PURE_PYTHON", "") not in ("", "0")


def ext_modules() -> list[object]:
    """mypyc's extensions for the hot modules, or none for a pure-Python build."""
    if pure_python():
        return []
    from mypyc.build import mypycify

    # Relative paths: mypycify and the C compiler run from the project root.
    os.chdir(ROOT)
    # pip builds in the tree and setuptools packs whatever build/lib holds: a module dropped
    # from the list would otherwise ship its stale .so from an earlier build, and win.
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    return list(mypycify(compiled_paths(), opt_level="3", debug_level="0"))


setup(ext_modules=ext_modules())
