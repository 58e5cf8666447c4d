"""Helpers the conformance ports' tests share: failures of a run, their printout, and a
bare-metal runner whose register port is broken on purpose (to show that checks bite)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vpmu.arch.presets import PRESETS
from vpmu.guest.conformance import CheckResult, Runner, Variant
from vpmu.guest.port import GuestGen, GuestProgram, Op
from vpmu.machine.conformance import bare_metal_runner


def failed(results: list[CheckResult]) -> list[CheckResult]:
    """The checks that did not pass."""
    return [r for r in results if not r.passed]


def fmt(results: list[CheckResult]) -> str:
    """One line per check, for an assertion's message."""
    return "\n".join(f"{r.test} :: {r.check}: {r.detail}" for r in results)


def shim(preset: str, op_map: Callable[[Op], Op] = lambda op: op,
          result_map: Callable[[Op, Any], Any] = lambda op, r: r) -> Runner:
    """A bare-metal runner whose port is broken as ``op_map`` / ``result_map`` say."""
    inner = bare_metal_runner(PRESETS[preset])

    def run(program: GuestProgram, variant: Variant | None = None) -> Any:
        def broken() -> GuestGen:
            gen, result = program(), None
            while True:
                try:
                    op = op_map(gen.send(result))
                except StopIteration as stop:
                    return stop.value
                result = result_map(op, (yield op))

        return inner(broken, variant)

    return run
