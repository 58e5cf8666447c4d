"""Workloads: scripted exact streams and rate-based phases of execution."""

from vpmu.workloads.phases import PHASES, Phase, get_phase
from vpmu.workloads.streams import (
    Stream,
    kut_loop,
    loop,
    loop_self,
    selftest_measured_block,
)

__all__ = ["PHASES", "Phase", "Stream", "get_phase", "kut_loop", "loop", "loop_self",
           "selftest_measured_block"]
