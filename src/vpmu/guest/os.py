"""The guest OS as the machine sees it: a main program plus interrupt handlers.

A machine (bare metal or a VM's vCPU) runs ``main()``; when it delivers an interrupt to the
guest (a PMI through the LVTPC, or the guest's timer tick) it runs the matching handler to
completion before the interrupted code resumes, exactly where it stopped. Handlers are port
programs too, so every register access they make takes the same path as the main program's
(on a VM: the same exits). A PMI arriving while the PMI handler runs is latched and runs the
handler again when it returns (one NMI may be pending, as on x86).
"""

from __future__ import annotations

from typing import Protocol

from mypy_extensions import mypyc_attr

from vpmu.guest.port import GuestGen, GuestProgram


class GuestOs(Protocol):
    """A guest kernel: what runs, and what runs on each interrupt."""

    tick_hz: int
    """The guest timer's frequency (CONFIG_HZ); 0 for no timer (a bare test program)."""

    def main(self) -> GuestGen:
        """The vCPU's program (boot, tools, workload); its return value is the run's."""
        ...

    def on_pmi(self) -> GuestGen | None:
        """The handler for a PMI delivered through the LVTPC, or None if there is none
        (the delivery is still counted for ``WaitPmi``)."""
        ...

    def on_tick(self) -> GuestGen | None:
        """The timer interrupt's handler (scheduler tick, perf's tick work), or None."""
        ...


@mypyc_attr(allow_interpreted_subclasses=True)  # tests' guests extend it in pure Python
class ProgramOs:
    """A bare guest program with no kernel around it (the conformance programs): no timer,
    and a PMI only counts for ``WaitPmi`` (kvm-unit-tests' handler bumps ``irq_received``)."""

    tick_hz = 0

    def __init__(self, program: GuestProgram) -> None:
        self.program = program

    def __repr__(self) -> str:
        return f"ProgramOs({self.program!r})"

    def main(self) -> GuestGen:
        """The program itself."""
        return self.program()

    def on_pmi(self) -> GuestGen | None:
        """No handler code."""
        return None

    def on_tick(self) -> GuestGen | None:
        """No timer."""
        return None
