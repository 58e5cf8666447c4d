"""The x86 conformance suites: ports of kvm-unit-tests ``x86/pmu.c`` and of the KVM
selftests ``tools/testing/selftests/kvm/x86/pmu_counters_test.c`` and
``pmu_event_filter_test.c``. (The arm64 ports, ``arm/pmu.c`` and ``vpmu_counter_access``, go in
``..arm64``.)"""
