"""Host machine: CPUs, scheduler, interrupts and the host perf-events subsystem."""
