"""A kernel path's price: its own code's cycles plus the PMU register accesses it makes, each
priced at the preset's instruction latency (``CostTable.instruction_cycles``), so the same
kernel code costs more on a part whose register accesses are slower. Every architecture's
tables price their paths this way."""

from __future__ import annotations

from collections.abc import Mapping


class KernelPath:
    """``cycles`` of code plus ``accesses`` (instruction name -> how many)."""

    __slots__ = ("accesses", "cycles")

    def __init__(self, cycles: int, **accesses: int) -> None:
        self.cycles = cycles
        self.accesses = dict(accesses)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self.accesses.items())
        return f"KernelPath({self.cycles}{extra})"

    def price(self, instruction_cycles: Mapping[str, int]) -> int:
        """The path's cycles on a part with these instruction latencies."""
        return self.cycles + sum(n * instruction_cycles[name]
                                 for name, n in self.accesses.items())
