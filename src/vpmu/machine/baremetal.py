"""Bare metal: a guest program or a guest OS runs directly on one simulated CPU, no hypervisor.

This is the reference every design is compared with: the same program, the same register
port, and the hardware's own semantics with no exits in between.

``run(program)`` runs a bare program: a PMI only counts for ``WaitPmi``. ``run_os(guest_os)``
runs a ``GuestOs``: its timer ticks every 1/tick_hz s and a PMI delivered through the LAPIC
interrupts the running code at the next instruction boundary (an ``Execute`` is stopped where
it is and resumed after), runs the OS's handler to completion at CPL 0, and goes back.

Priorities follow how the CPU delivers the PMI (its ``deliver(vector, nmi)`` callback), so
they are the architecture's without a test of which one it is:

- **An NMI** (x86: Linux programs LVTPC in NMI mode) preempts the main program and the tick
  handler (Linux's AMD driver relies on it: amd_pmu_wait_on_overflow polls for the NMI to
  re-arm a counter), and nothing preempts its handler.
- **A maskable interrupt** (arm64: the PMU's PPI through the GIC, a normal IRQ unless the
  kernel enables pseudo-NMI; x86 with LVTPC in fixed mode) runs at the tick's level: it
  preempts only the main program, and neither handler preempts the other (Linux runs IRQ
  handlers with interrupts masked).

A tick preempts only the main program. An interrupt that cannot preempt is latched and taken
when the handler returns: at most one PMI and one tick are pending, and a pending PMI is taken
first (x86: the NMI's priority; arm64 assumption: at the GIC's equal default priority the PMU's
INTID 23 goes before the timer's 27 / 30).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from vpmu.arch.lazy import resolve
from vpmu.arch.presets import CpuPreset, as_preset
from vpmu.arch.registry import arch_entry
from vpmu.errors import RunIncompleteError
from vpmu.guest.os import GuestOs
from vpmu.guest.port import Execute, GuestGen, GuestProgram, Op, SetCpl, WaitPmi
from vpmu.host.costs import cost_table
from vpmu.hw.core import CpuCore
from vpmu.hw.counting import RING_KERNEL
from vpmu.hw.models import make_cpu
from vpmu.sim import PS_PER_S, Environment, Event, Handle, ns
from vpmu.workloads.streams import Stream

PMI, TICK = "pmi", "tick"
"""The interrupt kinds a guest OS handles."""
NMI_LEVEL, IRQ_LEVEL = 2, 1
"""What a handler runs at: an NMI's above every maskable interrupt's (the tick's, and a PMI
delivered as a normal interrupt); the main program runs at 0. An interrupt preempts code
running below its level."""


@dataclass(frozen=True, slots=True)
class HandlerRun:
    """One run of a guest OS's interrupt handler."""

    kind: str
    """``"pmi"`` or ``"tick"``."""
    raised_ps: int
    """When the interrupt was delivered to the CPU (the LAPIC's delivery, the timer)."""
    start_ps: int
    """When the handler's first operation began."""
    end_ps: int
    """When its last operation completed."""

    @property
    def latency_ps(self) -> int:
        """From delivery to the handler's end (the guest PMI handler latency of
        docs/guide/metrics/guest_pmi.md)."""
        return self.end_ps - self.raised_ps


class BareMetal:
    """One CPU of ``preset`` running guest programs; its state stays inspectable afterwards."""

    def __init__(self, preset: str | CpuPreset, *, seed: int = 0) -> None:
        self.preset = as_preset(preset)
        self.env = Environment(seed)
        """The run's event kernel."""
        costs = cost_table(self.preset.costs)
        self.cpu = make_cpu(self.preset, self.env, deliver=self._on_pmi,
                            instruction_cycles=costs.instruction_cycles)
        """The CPU the program runs on."""
        self._arch_op: Callable[[CpuCore, Op], Generator[Event, Any, Any]] = resolve(
            arch_entry(self.preset.caps.arch).bare_metal)
        """The architecture's port operations (``vpmu.machine.x86.bare.execute``)."""
        self.pmis: list[tuple[int, int, bool]] = []
        """Every PMI delivered: (time_ps, vector, is_nmi)."""
        self.handler_runs: list[HandlerRun] = []
        """Every interrupt handler a guest OS ran, in order (``run_os`` only)."""
        self._pending = 0
        self._waiter: Event | None = None
        self._os: GuestOs | None = None
        self._level = 0
        self._wake: Event | None = None
        self._pmi_raised: int | None = None
        self._pmi_level = NMI_LEVEL
        """The level of the pending (or last) PMI: NMI_LEVEL if delivered as an NMI."""
        self._tick_raised: int | None = None
        self._tick: Handle | None = None

    def __repr__(self) -> str:
        return f"BareMetal(preset={self.preset.name!r})"

    def run(self, program: GuestProgram) -> Any:
        """Run ``program`` to completion and return its return value."""
        proc = self.env.process(self._drive(program))
        self.env.run()
        if proc.is_alive:
            raise RunIncompleteError(f"guest program {program!r} did not finish")
        return proc.value

    def run_os(self, guest_os: GuestOs) -> Any:
        """Run ``guest_os.main()`` with its interrupts; return main's return value."""
        tick_hz = guest_os.tick_hz
        if type(tick_hz) is not int or tick_hz < 0:
            raise ValueError(f"tick_hz must be a non-negative int, not {tick_hz!r}")
        self._os = guest_os
        proc = self.env.process(self._drive_os(guest_os))
        if tick_hz:
            self._tick = self.env.schedule(self._on_tick, delay_ps=PS_PER_S // tick_hz)
        try:
            # Step until main returns, not until the queue drains: the cancelled next tick
            # stays queued (lazy deletion) and would move the clock past the run's end.
            while proc.is_alive and self.env.peek() is not None:
                self.env.step()
        finally:
            self._os = None
        if proc.is_alive:
            raise RunIncompleteError(f"guest OS {guest_os!r} did not finish")
        return proc.value

    # -- driving programs -----------------------------------------------------------------
    def _drive(self, program: GuestProgram) -> Generator[Event, Any, Any]:
        return (yield from self._run_gen(program()))

    def _run_gen(self, gen: GuestGen) -> Generator[Event, Any, Any]:
        result: Any = None
        while True:
            try:
                op = gen.send(result)
            except StopIteration as stop:
                return stop.value
            result = yield from self._dispatch(op)

    def _drive_os(self, guest_os: GuestOs) -> Generator[Event, Any, Any]:
        """main(); the timer stops with it."""
        try:
            return (yield from self._run_os_gen(guest_os.main()))
        finally:
            if self._tick is not None:
                self._tick.cancel()
                self._tick = None

    def _run_os_gen(self, gen: GuestGen) -> Generator[Event, Any, Any]:
        """A guest OS program, taking the interrupts that preempt it before each operation."""
        result: Any = None
        while True:
            yield from self._take_interrupts()
            try:
                op = gen.send(result)
            except StopIteration as stop:
                return stop.value
            result = yield from self._dispatch(op)

    def _dispatch(self, op: Op) -> Generator[Event, Any, Any]:
        cpu = self.cpu
        match op:
            case Execute(stream):
                if self._os is not None and self._level < NMI_LEVEL:
                    return (yield from self._execute_interruptible(stream))
                return (yield from cpu.execute(stream))
            case WaitPmi(timeout_ns):
                if self._os is not None:
                    return (yield from self._wait_pmi_os(timeout_ns))
                return (yield from self._wait_pmi(timeout_ns))
            case SetCpl(cpl):
                cpu.set_cpl(cpl)
                return None
        return (yield from self._arch_op(cpu, op))

    # -- interrupts -----------------------------------------------------------------------
    def _on_pmi(self, vector: int, nmi: bool) -> None:
        self.pmis.append((self.env.now_ps, vector, nmi))
        self._pending += 1
        if self._waiter is not None and not self._waiter.triggered:
            self._waiter.succeed(True)
        if self._os is not None and self._pmi_raised is None:
            self._pmi_raised = self.env.now_ps
            self._pmi_level = NMI_LEVEL if nmi else IRQ_LEVEL
            self._interrupt()

    def _on_tick(self) -> None:
        assert self._os is not None
        self._tick = self.env.schedule(self._on_tick, delay_ps=PS_PER_S // self._os.tick_hz)
        if self._tick_raised is None:
            self._tick_raised = self.env.now_ps
            self._interrupt()

    def _interrupt(self) -> None:
        """Wake the running code if it is executing or waiting and the interrupt preempts it."""
        if self._wake is not None and not self._wake.triggered and self._preempted():
            self._wake.succeed()

    def _preempted(self) -> bool:
        """A pending interrupt preempts the code running now."""
        return ((self._pmi_raised is not None and self._level < self._pmi_level)
                or (self._tick_raised is not None and self._level < IRQ_LEVEL))

    def _take_interrupts(self) -> Generator[Event, Any, None]:
        """Run the pending handlers that preempt the running code, PMI first."""
        assert self._os is not None
        while self._preempted():
            if self._pmi_raised is not None and self._level < self._pmi_level:
                raised, self._pmi_raised = self._pmi_raised, None
                yield from self._run_handler(PMI, raised, self._os.on_pmi())
            else:
                assert self._tick_raised is not None
                raised, self._tick_raised = self._tick_raised, None
                yield from self._run_handler(TICK, raised, self._os.on_tick())

    def _run_handler(self, kind: str, raised_ps: int,
                     gen: GuestGen | None) -> Generator[Event, Any, None]:
        """Run one handler to completion at CPL 0, then return to the interrupted CPL."""
        if gen is None:
            return
        start, cpl, level = self.env.now_ps, self.cpu.cpl, self._level
        if cpl != RING_KERNEL:
            self.cpu.set_cpl(RING_KERNEL)
        self._level = self._pmi_level if kind == PMI else IRQ_LEVEL
        try:
            yield from self._run_os_gen(gen)
        finally:
            self._level = level
        if cpl != RING_KERNEL:
            self.cpu.set_cpl(cpl)
        self.handler_runs.append(HandlerRun(kind, raised_ps, start, self.env.now_ps))
        if kind == PMI:
            self.cpu.end_of_interrupt()  # a level-sensitive PMU interrupt still up comes back

    def _sleep_until_woken(self, delay_ps: int) -> Generator[Event, Any, None]:
        """Wait ``delay_ps`` unless an interrupt is (or becomes) pending."""
        wake = self._wake = self.env.event()
        if self._preempted():
            wake.succeed()
            timer = None
        else:
            timer = self.env.schedule(lambda: wake.triggered or wake.succeed(),
                                      delay_ps=delay_ps)
        yield wake
        if timer is not None:
            timer.cancel()
        self._wake = None

    def _execute_interruptible(self, stream: Stream) -> Generator[Event, Any, None]:
        """Execute ``stream``; each preempting interrupt stops it, runs its handler, and the
        rest resumes where it stopped."""
        rest: Stream | None = stream
        while rest is not None:
            yield from self._take_interrupts()
            yield from self._sleep_until_woken(self.cpu.start(rest))
            rest = self.cpu.stop()

    def _wait_pmi_os(self, timeout_ns: int) -> Generator[Event, Any, bool]:
        """WaitPmi under a guest OS: idle, taking interrupts, until a PMI or the timeout."""
        deadline = self.env.now_ps + ns(timeout_ns)
        while True:
            yield from self._take_interrupts()
            if self._pending:
                self._pending -= 1
                return True
            if self.env.now_ps >= deadline:
                return False
            yield from self._sleep_until_woken(deadline - self.env.now_ps)

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
    """Run a guest program and return its return value (the README's entry point).

    ``design=None`` is bare metal; a design spec (``"emulated"``, ``"emulated:is_paused=false"``)
    runs it on one vCPU of a VM of that design on a one-CPU host.
    """
    if design is not None:
        from vpmu.machine.vm import run_vm_program  # vm imports this module's layer peers
        return run_vm_program(program, preset=preset, design=design, seed=seed)
    return BareMetal(preset, seed=seed).run(program)
