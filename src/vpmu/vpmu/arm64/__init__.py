"""KVM's arm64 PMU (arch/arm64/kvm/pmu-emul.c and the PMU handlers of sys_regs.c)."""
