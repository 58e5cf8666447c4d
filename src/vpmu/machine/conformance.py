"""Running the ported conformance suites on bare metal or on a one-vCPU VM of a design.

Each design names the guest-visible differences KVM documents as ``Expectations`` fields;
a difference that is not listed there is a failure.

A variant's VM setup (``event_filter``, ``pmu_disabled``) is done here, where the hypervisor
is visible: the VM runner issues the ioctl before the guest runs, the bare-metal runner
answers ``Unsupported`` (there is no hypervisor to ask).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from vpmu.arch.presets import CpuPreset, as_preset
from vpmu.arch.x86.caps import X86PmuCaps, x86_caps
from vpmu.errors import RunIncompleteError
from vpmu.guest.conformance import RUN_SUITE, SUITE_ARCH, SUITES, suites_for
from vpmu.guest.conformance._framework import (
    CheckResult,
    EventFilterArgs,
    Expectations,
    FilterRefused,
    Runner,
    Unsupported,
    Variant,
)
from vpmu.guest.conformance.arm64.vpmu_counter_access import ArmVariant, KvmSetupRefused
from vpmu.guest.port import GuestProgram
from vpmu.machine.baremetal import BareMetal
from vpmu.machine.build import event_filter
from vpmu.machine.vm import run_vm_program
from vpmu.vpmu import registry
from vpmu.vpmu.design import DesignSpec, enforces_event_filter, make_design
from vpmu.vpmu.filter import Errno, PmuEventFilter


def bare_metal_runner(preset: CpuPreset, *, seed: int = 0) -> Runner:
    """A runner that gives each program a fresh bare-metal CPU; a variant is a hardware
    variant of the preset (the same part with a different PMU shape)."""

    def run(program: GuestProgram, variant: Variant | None = None) -> Any:
        reason = _needs_kvm(variant)
        if reason:
            return Unsupported(reason)
        hw = preset.with_caps(**variant.changes()) if variant else preset
        return BareMetal(hw, seed=seed).run(program)

    return run


def _needs_kvm(variant: Variant | None) -> str | None:
    """Why bare metal cannot run ``variant``'s VM setup, or None if it asks for none."""
    if variant is None:
        return None
    if isinstance(variant, ArmVariant) and variant.needs_kvm:
        return "KVM_ARM_VCPU_PMU_V3 attributes are KVM vCPU ioctls: bare metal has no hypervisor"
    if variant.event_filter is not None:
        return "KVM_SET_PMU_EVENT_FILTER is a KVM VM ioctl: bare metal has no hypervisor"
    if variant.pmu_disabled:
        return "KVM_CAP_PMU_CAPABILITY is a KVM VM capability: bare metal has no hypervisor"
    return None


def _expectations(entry: registry.DesignEntry) -> Expectations:
    return Expectations(**entry.conformance)  # type: ignore[arg-type]


DESIGN_EXPECTATIONS: Mapping[str, Expectations] = registry.EntryView(_expectations)
"""What each design documents as different from bare metal (its registry entry)."""


def vm_runner(preset: CpuPreset, design: str, *, seed: int = 0) -> Runner:
    """A runner that gives each program a fresh one-vCPU VM of ``design``; a variant is the
    guest PMU shape userspace asks KVM for (the design clamps it), plus its VM setup:
    ``KVM_PMU_CAP_DISABLE`` makes the VM ``none``; an event filter is installed before the
    first run, or its errno returned as ``FilterRefused`` without running the program."""

    def run(program: GuestProgram, variant: Variant | None = None) -> Any:
        if isinstance(variant, ArmVariant):
            return _run_arm_variant(program, preset, design, variant, seed)
        shape = variant.changes() if variant else None
        flt: PmuEventFilter | None = None
        if variant is not None and variant.event_filter is not None:
            built = build_event_filter(variant.event_filter, x86_caps(preset.caps))
            if isinstance(built, Errno):
                return FilterRefused(built.name)
            flt = built
        vm_design = registry.pmu_disabled_design() \
            if variant is not None and variant.pmu_disabled else design
        return run_vm_program(program, preset=preset, design=vm_design, seed=seed, shape=shape,
                              event_filter=flt)

    return run


def _run_arm_variant(program: GuestProgram, preset: CpuPreset, design: str,
                     variant: ArmVariant, seed: int) -> Any:
    """An arm64 run whose VMM sets the variant's vCPU PMU attributes (design options) and
    KVM_SET_ONE_REG writes; a refused attribute is ``KvmSetupRefused``."""
    from vpmu.guest.os import ProgramOs
    from vpmu.host.machine import Host
    from vpmu.machine.vm import Vm, run_until_done
    from vpmu.sim import ms
    spec = DesignSpec.parse(design)
    if variant.fixed_counters_only and not DESIGN_EXPECTATIONS[spec.name].fixed_counters_only:
        return Unsupported(f"design {spec.name!r} has no fixed-counters-only opt-in (its "
                           f"kernel's vCPU PMU attribute 5 is another proposal's)")
    options = {**dict(spec.options), **variant.design_options()}
    host = Host(preset, cpus=1, seed=seed)
    vm = Vm(host, make_design(DesignSpec(spec.name, tuple(options.items()))),
            [ProgramOs(program)])
    vcpu = vm.vcpus[0]
    if variant.userspace_all_ones:
        for name in ("PMCNTENSET_EL0", "PMCNTENCLR_EL0", "PMINTENSET_EL1", "PMINTENCLR_EL1",
                     "PMOVSSET_EL0", "PMOVSCLR_EL0"):
            vcpu.pmu.set_one_reg(name, (1 << 64) - 1)  # type: ignore[attr-defined]
    if not run_until_done(host, [vm], limit_ps=ms(60_000), step_ps=ms(10)):
        raise RunIncompleteError(f"guest program {program!r} did not finish")
    result = vcpu.task.result
    refused = getattr(result, "attr", None), getattr(result, "errno", None)
    if refused[0] is not None and isinstance(refused[1], str):
        return KvmSetupRefused(str(refused[0]), refused[1])
    return result


def build_event_filter(args: EventFilterArgs, host_caps: X86PmuCaps) -> PmuEventFilter | Errno:
    """KVM_SET_PMU_EVENT_FILTER with the guest suite's arguments (``machine.build``)."""
    return event_filter(host_caps, args.action, args.events,
                        fixed_counter_bitmap=args.fixed_counter_bitmap, flags=args.flags,
                        nevents=args.nevents)


def run_conformance(preset: str | CpuPreset, *, suites: tuple[str, ...] | None = None,
                    design: str | None = None) -> list[CheckResult]:
    """Run the named suites (default: every suite of the preset's architecture) on
    ``preset``, on bare metal or under ``design``, and return every check result. A named
    suite of another architecture is one skipped result; a design that does not run on the
    preset's architecture is a ValueError."""
    p = as_preset(preset)
    arch = p.caps.arch
    names = suites or suites_for(arch)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise ValueError(f"suite must be one of {sorted(SUITES)}, not {unknown[0]!r}")
    if design is None:
        runner, expect = bare_metal_runner(p), Expectations()
    else:
        spec = DesignSpec.parse(design)
        built = make_design(spec)  # an unknown name or option fails here, before any run
        registry.check_arch(spec.name, arch)
        runner = vm_runner(p, design)
        expect = DESIGN_EXPECTATIONS.get(spec.name,
                                         Expectations(platform=spec.name, kvm_vm_ioctls=True))
        # An option may take the filter out of KVM's hands (the design object says).
        if not enforces_event_filter(built):
            expect = replace(expect, event_filter_enforced=False)
    results: list[CheckResult] = []
    for name in names:
        if SUITE_ARCH[name] != arch:
            results.append(CheckResult(name, "*", "skipped", True, f"an {SUITE_ARCH[name]} "
                                       f"suite; {p.name} is an {arch} preset", True))
            continue
        results += RUN_SUITE[arch](SUITES[name], runner, expect)
    return results
