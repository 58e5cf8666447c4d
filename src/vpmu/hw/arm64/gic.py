"""A minimal GIC: one level-sensitive private peripheral interrupt per CPU (the PMU's overflow
interrupt, PPI 23 on the presets' boards, as Linux's device trees give it).

Level-sensitive (GICv3, "Interrupt handling state machine"): the interrupt is pending while its
line is asserted and stops being pending when the line drops; the CPU is signalled when it
becomes pending while enabled, and again at the end of the interrupt (the handler's EOI and
deactivation) if the line is still asserted then: a source that asserted again while the
handler ran (a counter overflowing between its read and its write-back of PMOVSCLR_EL0) is
not lost. Priorities, groups and the active state's other effects are not modelled.
"""

from __future__ import annotations

from collections.abc import Callable

PMU_PPI = 23
"""The PMU overflow interrupt's INTID on the presets' boards (arm,armv8-pmuv3 in their device
trees: "interrupts = <GIC_PPI 7 ...>", PPI 7 = INTID 23)."""


class PpiLine:
    """One level-sensitive PPI: pending while asserted; ``deliver`` is called when it becomes
    pending while enabled."""

    def __init__(self, deliver: Callable[[], None], intid: int = PMU_PPI) -> None:
        self.intid = intid
        self.deliver = deliver
        self.level = False
        self.enabled = True
        self.deliveries = 0

    def __repr__(self) -> str:
        return f"PpiLine(intid={self.intid}, level={self.level})"

    @property
    def pending(self) -> bool:
        """A level-sensitive interrupt is pending exactly while its line is asserted."""
        return self.level

    def eoi(self) -> None:
        """End of interrupt: a level still asserted makes the interrupt pending again."""
        if self.level and self.enabled:
            self.deliveries += 1
            self.deliver()

    def set_level(self, level: bool) -> None:
        """The source drives the line; a rising edge while enabled signals the CPU."""
        rising = level and not self.level
        self.level = level
        if rising and self.enabled:
            self.deliveries += 1
            self.deliver()
