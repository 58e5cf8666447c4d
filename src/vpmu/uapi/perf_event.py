"""``include/uapi/linux/perf_event.h``: the ``perf_event_attr`` type and generic hardware event
ids every architecture's perf driver maps (Linux v6.6)."""

PERF_TYPE_HARDWARE = 0
"""``attr.type`` of the generic hardware events: ``config`` is a ``PERF_COUNT_HW_*`` id."""
PERF_TYPE_RAW = 4
"""``attr.type`` of raw events: ``config`` is the event select (the type x86's core PMU
registers with)."""

PERF_COUNT_HW_CPU_CYCLES = 0
PERF_COUNT_HW_INSTRUCTIONS = 1
PERF_COUNT_HW_CACHE_REFERENCES = 2
PERF_COUNT_HW_CACHE_MISSES = 3
PERF_COUNT_HW_BRANCH_INSTRUCTIONS = 4
PERF_COUNT_HW_BRANCH_MISSES = 5
PERF_COUNT_HW_BUS_CYCLES = 6
PERF_COUNT_HW_STALLED_CYCLES_FRONTEND = 7
PERF_COUNT_HW_STALLED_CYCLES_BACKEND = 8
PERF_COUNT_HW_REF_CPU_CYCLES = 9
PERF_COUNT_HW_MAX = 10
"""One past the last generic id: ``x86_pmu.max_events``; a config at or past it is -EINVAL."""
