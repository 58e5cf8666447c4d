"""Host perf's x86 PMU driver (``arch/x86/events/``): the per-CPU driver (``driver.py``,
``struct cpu_hw_events``), counter constraints and scheduling (``assign.py``,
x86_schedule_events), and the vendors' generic event maps with the perf tool's event names
(``events_map.py``)."""
