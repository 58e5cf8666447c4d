"""A guest LBR user that is not perf: a kernel module sampling the LBR stack from a timer.

Seed 002 (Wei Wang, 9 Jul 2019, in "Re: [PATCH v7 08/12] KVM/x86/vPMU: Add APIs to support host
save/restore the guest lbr stack") argues that LBR emulation must not depend on counter
emulation because a guest "could choose to use a regular timer to do sampling": this is that
guest. It enables the LBR (DEBUGCTL.LBR, LBR_SELECT for the rings it wants), and at every
timer tick reads TOS and every entry (FROM, TO and, from format 5, INFO), with no counter
programmed. A run reports how many stacks it read and how many held a record (a stack of
zeros means the guest's records were lost: the host took the LBR, or it was wiped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import PERF_CAP_LBR_FMT
from vpmu.guest.linux.lbr import LBR_DEPTH
from vpmu.guest.linux.x86 import Gen
from vpmu.guest.port import GuestGen, Rdmsr, SetCpl, Wrmsr

if TYPE_CHECKING:
    from vpmu.guest.linux.kernel import LinuxGuest
    from vpmu.guest.linux.tools import Workload

DEBUGCTL_LBR = 1 << msrs.DEBUGCTL_LBR
SELECT_KERNEL_ONLY = 1 << 1
"""LBR_SELECT.CPL_NEQ_0: user branches suppressed."""
SELECT_USER_ONLY = 1 << 0
"""LBR_SELECT.CPL_EQ_0: kernel branches suppressed (the sampler's default: the workload)."""


@dataclass(frozen=True, slots=True)
class LbrSamplerResult:
    """One run of the sampler."""

    tool: str
    supported: bool
    """The guest's PERF_CAPABILITIES had an LBR format."""
    samples: int
    """Stacks read (one per tick while the workload ran)."""
    empty: int
    """Stacks whose newest entry (at TOS) was zero: nothing recorded, or records lost."""


class LbrSampler:
    """Enable the LBR around the workload; read the whole stack at each timer tick."""

    tool = "lbr-sampler"

    def __init__(self, select: int = SELECT_USER_ONLY, depth: int = LBR_DEPTH) -> None:
        self.select, self.depth = select, depth
        self._samples = self._empty = 0
        self._on = False

    def __repr__(self) -> str:
        return f"LbrSampler(select={self.select:#x}, depth={self.depth})"

    def run(self, linux: LinuxGuest, program: Workload) -> Gen[LbrSamplerResult]:
        """One run: enable, the workload at CPL 3 (sampled at each tick), disable."""
        caps = yield Rdmsr(msrs.IA32_PERF_CAPABILITIES)
        supported = isinstance(caps, int) and bool(caps & PERF_CAP_LBR_FMT)
        self._samples = self._empty = 0
        if supported:
            yield Wrmsr(msrs.MSR_LBR_SELECT, self.select)
            yield Wrmsr(msrs.IA32_DEBUGCTL, DEBUGCTL_LBR)
            self._on = True
            linux.tick_hooks.append(self.sample)
        yield SetCpl(3)
        yield from program()
        yield SetCpl(0)
        if supported:
            linux.tick_hooks.remove(self.sample)
            self._on = False
            yield Wrmsr(msrs.IA32_DEBUGCTL, 0)
        return LbrSamplerResult(self.tool, supported, self._samples, self._empty)

    def sample(self) -> GuestGen:
        """The timer callback: TOS, then FROM/TO/INFO of every entry."""
        tos = yield Rdmsr(msrs.MSR_LBR_TOS)
        newest = 0
        for i in range(self.depth):
            frm = yield Rdmsr(msrs.MSR_LBR_NHM_FROM + i)
            yield Rdmsr(msrs.MSR_LBR_NHM_TO + i)
            yield Rdmsr(msrs.MSR_LBR_INFO_0 + i)
            if isinstance(tos, int) and i == tos % self.depth and isinstance(frm, int):
                newest = frm
        self._samples += 1
        self._empty += not newest
