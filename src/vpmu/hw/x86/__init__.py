"""x86 hardware: the PMU (Intel v1-v5, AMD K7/F15H/PerfMonV2), the LVTPC and the CPU."""

from vpmu.hw.x86.cpu import INSTRUCTIONS, X86Cpu
from vpmu.hw.x86.lapic import Lapic
from vpmu.hw.x86.pmu import X86Pmu

__all__ = ["INSTRUCTIONS", "Lapic", "X86Cpu", "X86Pmu"]
