"""Trace records every layer emits; metrics read only these."""

from vpmu.trace.records import (
    ContextSwitch,
    CounterRead,
    GuestPmi,
    GuestSelectors,
    Interrupt,
    LbrContext,
    LbrOwner,
    LbrRead,
    ModeChange,
    PerfCall,
    PerfOpen,
    PerfSample,
    PmuContext,
    Record,
    Sink,
    Trace,
    TraceNotKeptError,
    VmExit,
)

__all__ = ["ContextSwitch", "CounterRead", "GuestPmi", "GuestSelectors", "Interrupt",
           "LbrContext", "LbrOwner", "LbrRead", "ModeChange", "PerfCall", "PerfOpen",
           "PerfSample", "PmuContext", "Record", "Sink", "Trace", "TraceNotKeptError", "VmExit"]
