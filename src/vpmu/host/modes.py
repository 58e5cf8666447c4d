"""The execution mode of a CPU at each instant: who runs, at which privilege, for whom.

``IN_KVM`` is host kernel code running the hypervisor for a vCPU (exit handling, the run
loop): to the PMU it is host kernel; to a blind-spot metric it is its own category.
"""

from __future__ import annotations

import enum


class Mode(enum.Enum):
    """What a CPU executes."""

    IDLE = "idle"
    HOST_USER = "host-user"
    HOST_KERNEL = "host-kernel"
    IN_KVM = "in-kvm"
    GUEST_USER = "guest-user"
    GUEST_KERNEL = "guest-kernel"

    @property
    def is_guest(self) -> bool:
        """Guest code (between VM-entry and VM-exit)."""
        return self in (Mode.GUEST_USER, Mode.GUEST_KERNEL)

    @property
    def cpl(self) -> int:
        """The privilege level the PMU's USR/OS filters see."""
        return 3 if self in (Mode.HOST_USER, Mode.GUEST_USER) else 0
