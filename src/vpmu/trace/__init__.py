"""Trace records every layer emits; metrics read only these."""

from vpmu.trace.records import (
    ContextSwitch,
    CounterRead,
    GuestPmi,
    GuestSelectors,
    Interrupt,
    ModeChange,
    PerfCall,
    PerfOpen,
    PerfSample,
    PmuContext,
    Record,
    Trace,
    VmExit,
)

__all__ = ["ContextSwitch", "CounterRead", "GuestPmi", "GuestSelectors", "Interrupt",
           "ModeChange", "PerfCall", "PerfOpen", "PerfSample", "PmuContext", "Record", "Trace",
           "VmExit"]
