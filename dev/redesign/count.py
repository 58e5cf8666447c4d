"""The redesign issue's figures for one tree: modules outside the x86 code that import x86
code, and vendor branches outside it.

x86 code: a module under a directory named ``x86`` (arch/x86, hw/x86, vpmu/x86, machine/x86,
costs/x86) or a module named ``x86`` (host/perf/x86.py, guest/linux/x86.py,
guest/ports/x86.py). An import is any ``import``/``from`` of such a module, wherever it is
(top level, TYPE_CHECKING, in a function). A vendor branch is an ``if``/``elif``, conditional
expression, ``while``, ``assert``, comprehension filter or ``match`` guard whose test reads
``is_intel``/``is_amd``, compares a ``vendor``, or tests a vendor-only feature flag.

usage: python dev/redesign/count.py REPO [--list]
"""

import ast
import pathlib
import re
import sys

VENDOR = re.compile(r"\bis_intel\b|\bis_amd\b|vendor\s*[=!]=|[=!]=\s*\S*vendor|perfmon_v2"
                    r"|perfctr_core|==\s*\"(intel|amd)\"")


def is_x86(parts: tuple[str, ...]) -> bool:
    return "x86" in parts[:-1] or parts[-1] == "x86.py"


def is_x86_module(name: str) -> bool:
    return "x86" in name.split(".")


def tests(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.If | ast.IfExp | ast.While | ast.Assert):
        return [node.test]
    if isinstance(node, ast.comprehension):
        return list(node.ifs)
    if isinstance(node, ast.match_case) and node.guard is not None:
        return [node.guard]
    return []


def main() -> None:
    root = pathlib.Path(sys.argv[1]) / "src" / "vpmu"
    importers: set[str] = set()
    branches: dict[str, int] = {}
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root)
        if is_x86(rel.parts):
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and is_x86_module(node.module):
                importers.add(str(rel))
            if isinstance(node, ast.Import) and any(is_x86_module(a.name) for a in node.names):
                importers.add(str(rel))
            n = sum(bool(VENDOR.search(ast.unparse(t))) for t in tests(node))
            if n:
                branches[str(rel)] = branches.get(str(rel), 0) + n
    print(f"modules outside x86 code importing x86 code: {len(importers)}")
    print(f"vendor branches outside x86 code: {sum(branches.values())} in {len(branches)} files")
    if "--list" in sys.argv:
        print("importers:", *sorted(importers), sep="\n  ")
        print("branches:", *(f"{k}: {v}" for k, v in sorted(branches.items())), sep="\n  ")


if __name__ == "__main__":
    main()
