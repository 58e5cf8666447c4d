"""The hypervisor's PMU: the ops every design implements, design specs, and the registry.

A design is chosen by name, with options: ``NAME`` or ``NAME:key=value,key=value`` (for
example ``emulated:is_paused=false``). ``Design`` is the per-VM object (what the VM's guests
see, the options); ``VcpuPmu`` the per-vCPU state KVM keeps in ``struct kvm_pmu``. Every
kernel-side op is a simulation generator run on the physical CPU the vCPU is on, so its cost
lands there as IN_KVM time; guest-visible faults are returned as values.

Vocabulary (the KVM ``NOTE:`` block): an *MSR address*, an *RDPMC index* (ECX) and a *global
counter index* (GP i = i, fixed i = 32 + i), as in ``vpmu.arch.x86.caps``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from vpmu.arch.x86.caps import X86PmuCaps
from vpmu.vpmu import registry

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.machine import Host
    from vpmu.host.perf.core import PerfSubsystem
    from vpmu.host.perf.kapi import KernelCounterApi
    from vpmu.host.task import Task
    from vpmu.vpmu.costs import KvmCosts
    from vpmu.vpmu.filter import PmuEventFilter

Gen = Generator[Any, Any, Any]
"""A kernel-side op: a simulation generator whose return value is the op's result."""


class VcpuHandle(Protocol):
    """What a design sees of a vCPU (implemented by ``vpmu.machine``)."""

    index: int
    host: Host
    caps: X86PmuCaps
    """The PMU the guest enumerates (after the design's caps and the scenario's shape)."""
    task: Task
    """The vCPU thread (perf events are bound to it)."""
    kapi: KernelCounterApi
    """perf's in-kernel counter API on this host."""
    kvm_costs: KvmCosts
    event_filter: PmuEventFilter | None
    """The VM's KVM_SET_PMU_EVENT_FILTER, if any."""
    cpl: int
    """The guest's current privilege level (0 or 3)."""
    perf: PerfSubsystem
    """The host's perf subsystem (a mediated design borrows the PMU from it)."""
    vm_name: str
    label: str
    """``vm/vcpuN``: how reports and origin tags name this vCPU."""
    lvtpc: int
    """The guest's virtual LVTPC."""

    def request(self, name: str) -> None:
        """Raise a KVM request (KVM_REQ_PMU, KVM_REQ_PMI, ...), handled before the next entry."""
        ...

    def deliver_lvtpc(self) -> bool:
        """kvm_apic_local_deliver(APIC_LVTPC): inject per the virtual LVTPC unless it is
        masked (and mask it, for an Intel guest); True if injected."""
        ...


class VcpuPmu(Protocol):
    """Per-vCPU PMU state and the ops KVM calls (``kvm_pmu_ops`` plus the neutral core)."""

    def is_valid_msr(self, addr: int) -> bool:
        """kvm_pmu_is_valid_msr: ``addr`` is a PMU MSR of this vCPU's PMU."""
        ...

    def intercepts_msr(self, addr: int) -> bool:
        """A guest RDMSR/WRMSR of ``addr`` exits (MSR bitmap)."""
        ...

    def intercepts_rdpmc(self) -> bool:
        """Guest RDPMC exits."""
        ...

    def get_msr(self, cpu: Pcpu, addr: int) -> Gen:
        """kvm_pmu_get_msr: the value, or Fault.GP (an MSR the vPMU does not have)."""
        ...

    def set_msr(self, cpu: Pcpu, addr: int, value: int) -> Gen:
        """kvm_pmu_set_msr: None, or Fault.GP."""
        ...

    def rdpmc(self, cpu: Pcpu, ecx: int) -> Gen:
        """kvm_pmu_rdpmc: the value, or Fault.GP."""
        ...

    def handle_event(self, cpu: Pcpu) -> Gen:
        """KVM_REQ_PMU: kvm_pmu_handle_event (reprogram the dirty counters)."""
        ...

    def deliver_pmi(self, cpu: Pcpu) -> Gen:
        """KVM_REQ_PMI: kvm_pmu_deliver_pmi through the virtual LVTPC; True if injected."""
        ...

    def instruction_retired(self) -> None:
        """KVM skipped/emulated a guest instruction (kvm_pmu_instruction_retired)."""
        ...

    def sched_in(self, cpu: Pcpu) -> int:
        """kvm_arch_sched_in: the vCPU thread is scheduled in; kernel cycles spent."""
        ...

    def sched_out(self, cpu: Pcpu) -> int:
        """kvm_sched_out -> vcpu_put: the vCPU thread leaves the CPU; kernel cycles spent."""
        ...

    def needs_load(self) -> bool:
        """A guest PMU context must be loaded on the hardware before guest code runs."""
        ...

    def load(self, cpu: Pcpu) -> Gen:
        """Load the guest PMU context (just before VM-entry)."""
        ...

    def at_exit(self, cpu: Pcpu, point: str) -> Gen:
        """A VM-exit reached ``point``: "vm-exit" (right after the exit) or "loop-exit"
        (leaving the fastpath loop for a full exit). A design may put its context here."""
        ...

    def fastpath_allowed(self) -> bool:
        """kvm_pmu_is_fastpath_emulation_allowed: the fastpath may complete an exit."""
        ...

    def lvtpc_written(self, cpu: Pcpu) -> int:
        """The guest wrote its virtual LVTPC (a loaded context may need the hardware's);
        kernel cycles spent."""
        ...


class NoGuestContext:
    """The context-switch ops of a design that never loads guest state on the PMU."""

    def sched_out(self, cpu: Pcpu) -> int:
        """Nothing PMU-related in vcpu_put."""
        return 0

    def needs_load(self) -> bool:
        """Nothing to load."""
        return False

    def load(self, cpu: Pcpu) -> Gen:
        """Nothing to load."""
        yield from ()

    def at_exit(self, cpu: Pcpu, point: str) -> Gen:
        """Nothing to put."""
        yield from ()

    def fastpath_allowed(self) -> bool:
        """The fastpath does not depend on the vPMU."""
        return True

    def lvtpc_written(self, cpu: Pcpu) -> int:
        """The LVTPC is the virtual APIC's alone."""
        return 0


class Design(Protocol):
    """One vPMU design for one VM."""

    name: str
    options: Mapping[str, object]

    def guest_caps(self, host: X86PmuCaps) -> X86PmuCaps:
        """The PMU the guest enumerates (CPUID.0xA, PERF_CAPABILITIES, AMD leaves)."""
        ...

    def create_vcpu(self, vcpu: VcpuHandle) -> VcpuPmu:
        """kvm_pmu_init for one vCPU."""
        ...


KVM_REQ_PMU: Final = "KVM_REQ_PMU"
"""kvm_make_request(KVM_REQ_PMU): kvm_pmu_handle_event reprograms the counters the reprogram
bitmap names before the next VM-entry."""
KVM_REQ_PMI: Final = "KVM_REQ_PMI"
"""kvm_make_request(KVM_REQ_PMI): kvm_pmu_deliver_pmi injects the guest PMI before the next
VM-entry (and kicks a halted vCPU)."""


_DESIGN_NAME = re.compile(r"[A-Za-z0-9_-]+")
_OPTION_KEY = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class DesignSpec:
    """A design named with options: ``NAME`` or ``NAME:key=value,key=value``."""

    name: str
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> DesignSpec:
        """Parse a spec (the one grammar of design specs: files, ``--design`` and ``--set``
        alike); errors say what was expected and where. Each option is given once, and a
        ``:`` is followed by at least one ``key=value``."""
        name, colon, rest = text.partition(":")
        if not _DESIGN_NAME.fullmatch(name):
            raise ValueError(f"design must be NAME or NAME:key=value,..., not {text!r}")
        options: dict[str, str] = {}
        for item in rest.split(",") if colon else ():
            key, eq, value = (part.strip() for part in item.partition("="))
            if not eq or not _OPTION_KEY.fullmatch(key):
                raise ValueError(f"design option must be key=value, not {item!r} in {text!r}")
            if key in options:
                raise ValueError(f"design option {key} must be given once, not twice in "
                                 f"{text!r}")
            options[key] = value
        return cls(name, tuple(options.items()))

    def __str__(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        return f"{self.name}:{opts}" if opts else self.name


OPTION_TYPES: dict[type, Callable[[str], object]] = {
    bool: lambda v: {"true": True, "1": True, "false": False, "0": False}[v.lower()],
    int: int, str: str,
}


def coerce_options(name: str, defaults: Mapping[str, object],
                   given: tuple[tuple[str, str], ...]) -> dict[str, object]:
    """Merge option strings into a design's typed defaults; unknown keys and bad values fail."""
    result = dict(defaults)
    for key, raw in given:
        if key not in defaults:
            raise ValueError(f"design {name!r} option must be one of {sorted(defaults)}, "
                             f"not {key!r}")
        kind = type(defaults[key])
        try:
            result[key] = OPTION_TYPES[kind](raw)
        except (KeyError, ValueError):
            raise ValueError(f"design {name!r} option {key} must be a {kind.__name__}, "
                             f"not {raw!r}") from None
    return result


class _Designs(Mapping[str, str]):
    """name -> ``module:Class`` of every design in the registry, in listing order."""

    def __getitem__(self, name: str) -> str:
        found = registry.entry(name)
        if found is None:
            raise KeyError(name)
        return found.factory

    def __iter__(self) -> Iterator[str]:
        return (e.name for e in registry.design_entries())

    def __len__(self) -> int:
        return len(registry.design_entries())


DESIGNS: Mapping[str, str] = _Designs()
"""Registered designs (``vpmu.vpmu.registry``): name -> "module:Class", imported when first
used."""


def make_design(spec: str | DesignSpec) -> Design:
    """Build the design a spec names (the one place design names are resolved)."""
    s = DesignSpec.parse(spec) if isinstance(spec, str) else spec
    target = DESIGNS.get(s.name)
    if target is None:
        raise ValueError(f"design must be one of {sorted(DESIGNS)}, not {s.name!r}")
    module, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    design: Design = cls(dict(s.options))
    return design


def instant(value: object) -> Gen:
    """A kernel op that takes no simulated time and returns ``value``."""
    yield from ()
    return value


@dataclass(frozen=True)
class DesignInfo:
    """What ``vpmu designs`` shows of a design: its one-line summary and its options as
    ``key -> (default, choices)`` (no choices for a boolean or free value)."""

    name: str
    summary: str
    options: dict[str, tuple[object, tuple[str, ...]]]


def design_info(name: str) -> DesignInfo:
    """The summary (the design module's first docstring line) and options of a design."""
    target = DESIGNS.get(name)
    if target is None:
        raise ValueError(f"design must be one of {sorted(DESIGNS)}, not {name!r}")
    module_name, _, cls_name = target.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, cls_name)
    summary = (module.__doc__ or name).strip().splitlines()[0].replace("``", "")
    choices: Mapping[str, tuple[str, ...]] = getattr(module, "CHOICES", {})
    defaults: Mapping[str, object] = getattr(cls, "defaults", {})
    return DesignInfo(name, summary, {k: (v, tuple(choices.get(k, ()))) for k, v in
                                      defaults.items()})
