"""--ftrace-out: kvm_exit / kvm_msr / kvm_entry lines in the kernel's exact text format."""

from __future__ import annotations

import re

from vpmu.trace import VmExit
from vpmu.trace.ftrace import ftrace_lines, ftrace_text, intr_info

US = 1_000_000  # ps


def _exits() -> list[VmExit]:
    return [
        VmExit(95_922_997_039 * US, 15, "vm", 0, "MSR_WRITE", msr=0x38F, write=True,
               cost_ps=3 * US, value=0x70000000F),
        VmExit(95_922_997_050 * US, 15, "vm", 0, "MSR_READ", msr=0x1A6, cost_ps=2 * US,
               value=0, fault=True),
        VmExit(95_922_997_060 * US, 15, "vm", 0, "EXTERNAL_INTERRUPT", cost_ps=US,
               vector=0xF5),
        VmExit(95_922_997_070 * US, 3, "vm", 1, "EXCEPTION_NMI", cost_ps=US),
    ]


def test_lines_match_the_kernels_format_byte_for_byte() -> None:
    """trace_print_context's ``%16s-%-7d [%03d] flags %5lu.%06lu: `` then TP_printk."""
    lines = list(ftrace_lines(_exits()))
    assert lines[0] == ("       CPU 0/KVM-1000    [015] d.... 95922.997039: kvm_exit: vcpu 0 "
                        "reason MSR_WRITE rip 0x0 info1 0x0000000000000000 info2 "
                        "0x0000000000000000 intr_info 0x00000000 error_code 0x00000000")
    assert lines[1] == ("       CPU 0/KVM-1000    [015] ..... 95922.997039: kvm_msr: "
                        "msr_write 38f = 0x70000000f")
    assert lines[2] == ("       CPU 0/KVM-1000    [015] d.... 95922.997042: kvm_entry: "
                        "vcpu 0, rip 0x0")
    assert "kvm_msr: msr_read 1a6 = 0x0 (#GP)" in lines[4]


def test_interrupt_exits_carry_vector_and_type_in_intr_info() -> None:
    """SDM 25.9.2: valid bit 31, type in 10:8 (0 external, 2 NMI), vector in 7:0."""
    exits = _exits()
    assert intr_info(exits[2]) == 0x800000F5
    assert intr_info(exits[3]) == 0x80000202
    assert intr_info(exits[0]) == 0


def test_lines_are_time_ordered_with_one_entry_per_exit() -> None:
    """Entries follow their exits; the whole file is in time order as ftrace merges it."""
    lines = list(ftrace_lines(_exits()))
    stamps = [float(re.search(r" (\d+\.\d{6}): ", ln).group(1)) for ln in lines]  # type: ignore[union-attr]
    assert stamps == sorted(stamps)
    assert sum(": kvm_exit: " in ln for ln in lines) == 4
    assert sum(": kvm_entry: " in ln for ln in lines) == 4
    assert sum(": kvm_msr: " in ln for ln in lines) == 2


def test_svm_names_and_exitinfo1() -> None:
    """On AMD the reasons are SVM's lower-case names and EXITINFO1 is 1 for WRMSR."""
    lines = list(ftrace_lines(_exits(), isa="svm"))
    assert "reason msr rip 0x0 info1 0x0000000000000001" in lines[0]
    assert "reason interrupt" in "\n".join(lines) and "reason nmi" in "\n".join(lines)


def test_threads_of_two_vms_get_distinct_pids() -> None:
    """QEMU names every VM's vCPU thread CPU n/KVM; the pid tells VMs apart."""
    recs = [VmExit(0, 0, "a", 0, "HLT"), VmExit(1, 1, "b", 0, "HLT")]
    text = ftrace_text(recs)
    assert "CPU 0/KVM-1000 " in text and "CPU 0/KVM-2000 " in text
    assert text.startswith("# tracer: nop\n")
