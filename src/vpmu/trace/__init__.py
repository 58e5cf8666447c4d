"""Trace records every layer emits; metrics read only these."""

from vpmu.trace.records import (
    ContextSwitch,
    CounterRead,
    GuestPmi,
    Interrupt,
    ModeChange,
    PerfCall,
    PerfSample,
    Record,
    Trace,
    VmExit,
)

__all__ = ["ContextSwitch", "CounterRead", "GuestPmi", "Interrupt", "ModeChange", "PerfCall",
           "PerfSample", "Record", "Trace", "VmExit"]
