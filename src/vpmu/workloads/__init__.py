"""Workloads: scripted exact streams and rate-based phases of execution."""

from vpmu.workloads.streams import (
    Stream,
    kut_loop,
    loop,
    loop_self,
    selftest_measured_block,
)

__all__ = ["Stream", "kut_loop", "loop", "loop_self", "selftest_measured_block"]
