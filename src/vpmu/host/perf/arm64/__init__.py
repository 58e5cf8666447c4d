"""Host perf's Arm PMUv3 driver (Linux drivers/perf/arm_pmuv3.c and arm_pmu.c): the per-CPU
driver (``driver.py``), counter allocation (``assign.py``, armv8pmu_get_event_idx) and the
generic event map with the PMU's sysfs event names (``events_map.py``)."""
