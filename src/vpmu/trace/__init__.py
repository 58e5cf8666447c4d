"""Trace records every layer emits; metrics read only these."""

from vpmu.trace.records import (
    ContextSwitch,
    CounterRead,
    Interrupt,
    ModeChange,
    PerfCall,
    PerfSample,
    Record,
    Trace,
)

__all__ = ["ContextSwitch", "CounterRead", "Interrupt", "ModeChange", "PerfCall", "PerfSample",
           "Record", "Trace"]
