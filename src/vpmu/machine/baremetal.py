"""Bare metal: a guest program runs directly on one simulated CPU, no hypervisor.

This is the reference every design is compared with: the same program, the same register
port, and the hardware's own semantics with no exits in between.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from vpmu.arch.presets import CpuPreset, get_preset
from vpmu.guest.port import (
    Cpuid,
    Execute,
    GuestProgram,
    Op,
    Rdmsr,
    Rdpmc,
    SetCpl,
    SetCr4Pce,
    WaitPmi,
    Wrmsr,
)
from vpmu.host.costs import cost_table, instruction_cycles
from vpmu.hw.x86.cpu import X86Cpu
from vpmu.sim import Environment, Event, ns


class BareMetal:
    """One CPU of ``preset`` running guest programs; its state stays inspectable afterwards."""

    def __init__(self, preset: str | CpuPreset, *, seed: int = 0) -> None:
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        self.env = Environment(seed)
        """The run's event kernel."""
        costs = cost_table(self.preset.costs)
        self.cpu = X86Cpu(self.preset, self.env, deliver=self._on_pmi,
                          instruction_cycles=instruction_cycles(costs))
        """The CPU the program runs on."""
        self.pmis: list[tuple[int, int, bool]] = []
        """Every PMI delivered: (time_ps, vector, is_nmi)."""
        self._pending = 0
        self._waiter: Event | None = None

    def __repr__(self) -> str:
        return f"BareMetal(preset={self.preset.name!r})"

    def run(self, program: GuestProgram) -> Any:
        """Run ``program`` to completion and return its return value."""
        proc = self.env.process(self._drive(program))
        self.env.run()
        if proc.is_alive:
            raise RuntimeError(f"guest program {program!r} did not finish")
        return proc.value

    def _drive(self, program: GuestProgram) -> Generator[Event, Any, Any]:
        gen = program()
        result: Any = None
        while True:
            try:
                op = gen.send(result)
            except StopIteration as stop:
                return stop.value
            result = yield from self._dispatch(op)

    def _dispatch(self, op: Op) -> Generator[Event, Any, Any]:
        cpu = self.cpu
        match op:
            case Rdmsr(addr):
                return (yield from cpu.rdmsr(addr))
            case Wrmsr(addr, value):
                return (yield from cpu.wrmsr(addr, value))
            case Rdpmc(ecx):
                return (yield from cpu.rdpmc(ecx))
            case Cpuid(leaf, subleaf):
                return (yield from cpu.cpuid(leaf, subleaf))
            case Execute(stream):
                return (yield from cpu.execute(stream))
            case WaitPmi(timeout_ns):
                return (yield from self._wait_pmi(timeout_ns))
            case SetCpl(cpl):
                cpu.set_cpl(cpl)
                return None
            case SetCr4Pce(enabled):
                return (yield from cpu.set_cr4_pce(enabled))
        raise TypeError(f"a guest program must yield a port operation, not {op!r}")

    def _on_pmi(self, vector: int, nmi: bool) -> None:
        self.pmis.append((self.env.now_ps, vector, nmi))
        self._pending += 1
        if self._waiter is not None and not self._waiter.triggered:
            self._waiter.succeed(True)

    def _wait_pmi(self, timeout_ns: int) -> Generator[Event, Any, bool]:
        if not self._pending:
            waiter = self._waiter = self.env.event()

            def expire() -> None:
                if not waiter.triggered:
                    waiter.succeed(False)

            timer = self.env.schedule(expire, delay_ps=ns(timeout_ns))
            yield waiter
            timer.cancel()
            self._waiter = None
        if self._pending:
            self._pending -= 1
            return True
        return False


def run_guest(program: GuestProgram, *, preset: str | CpuPreset = "intel-icx",
              design: str | None = None, seed: int = 0) -> Any:
    """Run a guest program and return its return value (DESIGN.md's entry point).

    ``design=None`` is bare metal; a design spec (``"emulated"``, ``"emulated:is_paused=false"``)
    runs it on one vCPU of a VM of that design on a one-CPU host.
    """
    if design is not None:
        from vpmu.machine.vm import run_vm_program  # vm imports this module's layer peers
        return run_vm_program(program, preset=preset, design=design, seed=seed)
    return BareMetal(preset, seed=seed).run(program)
