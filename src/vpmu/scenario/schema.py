"""The scenario schema: what a TOML scenario file may say, checked when it is loaded.

Every model forbids unknown keys (a typo is an error, not a silently ignored knob), is frozen,
and is strict: TOML already has integers, floats, booleans, strings, arrays and tables, so a
string where an integer belongs is the user's mistake, not something to coerce. The one
conversion is that an integer is accepted where a float is expected (``duration_ms = 600``).

Names that belong to lower layers are checked here against those layers' tables (CPU presets,
workload phases, the guest's and the host's perf event names); a design spec is checked against
the one grammar of ``vpmu.vpmu.design.DesignSpec``, and its name and options when the machine is
built (``vpmu.scenario.run.build``, which names the key path too). Every number has a stated
range (in its docstring and docs/scenarios.md), so no value overflows or runs for ever.

Cross-field checks (a pin per vCPU, a pCPU inside the host, ...) report each problem at its own
key path through :func:`vpmu.scenario.checks.raise_problems`, so the loader can name
``vm[0].pin[2]`` rather than the whole scenario. The error shapes, the strict model
configuration and the checks the scenario's tables share are ``vpmu.scenario.checks``'s.
"""

import re
from contextvars import ContextVar
from typing import Annotated, Any, Final, Literal, Self, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ModelWrapValidatorHandler,
    PlainValidator,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from vpmu.arch.presets import (
    HOST_PRESETS,
    PRESET_NAMES,
    boot_preset,
)
from vpmu.linux.perf import DEFAULT_CPU_TIME_MAX_PERCENT, DEFAULT_FREQ, DEFAULT_MAX_SAMPLE_RATE
from vpmu.scenario.checks import (
    BAD_VALUE,
    STRICT,
    Loc,
    bad,
    one_of,
    raise_problems,
    repeated_names,
    show,
    valid_name,
)
from vpmu.scenario.events import (
    EventCode,
    GuestEvent,
    HostPerfEvent,
    host_event_problem,
)
from vpmu.scenario.workload_schema import WorkloadSpec
from vpmu.vpmu import registry
from vpmu.vpmu.design import DesignSpec
from vpmu.workloads.table import Workload
from vpmu.workloads.table import builtin as builtin_workloads

MAX_CPUS: Final = 4096
"""A guard against typos such as ``cpus = 40000``, not a modelling limit (x86 NR_CPUS max,
and KVM_MAX_VCPUS on x86 since Linux 5.15)."""
MAX_DURATION_MS: Final = 1e9
"""About 11.6 simulated days: beyond it a duration is a typo (``1e300``), not a plan."""
MIN_DURATION_MS: Final = 1e-3
"""One simulated microsecond, a thousand times the picosecond clock's resolution."""
INT_MAX: Final = 2**31 - 1
"""A sysctl or an ``int`` field of the kernel's uapi (perf_event_max_sample_rate, -F)."""
U64_MAX: Final = 2**64 - 1
MAX_RUNS: Final = 1_000_000
"""``runs``: more back-to-back runs than any shell loop a user would write."""

GuestTool = Literal["none", "perf-record", "perf-stat", "lbr-sampler"]
"""What a guest runs around its workload."""
HostTaskKind = Literal["perf-record", "perf-stat", "rdpmc-reader", "load"]
BranchStack = Literal["none", "any", "call-stack"]
"""perf record's LBR options: none, ``-b`` (any taken branch), ``--call-graph lbr``."""
"""What a host task is."""
FilterAction = Literal["allow", "deny"]
"""``KVM_PMU_EVENT_ALLOW`` / ``KVM_PMU_EVENT_DENY``."""


def _literal(choices: Any) -> BeforeValidator:
    """Check a Literal field first, so that its error lists the choices in declared order."""
    values: tuple[str, ...] = get_args(choices)
    return BeforeValidator(one_of(lambda: values))


_OPTION_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def _design_spec(value: object) -> object:
    if not isinstance(value, str):
        raise bad("a design spec NAME or NAME:key=value,...", value)
    try:
        DesignSpec.parse(value)
    except ValueError as err:
        raise PydanticCustomError(BAD_VALUE, "{reason}", {"reason": str(err)}) from None
    return value


def _option_value(value: object) -> str | int | bool:
    if isinstance(value, str | int):  # bool is an int
        return value
    raise bad("a string, an integer or a boolean", value)


def _option_key(value: object) -> object:
    if isinstance(value, str) and _OPTION_KEY.fullmatch(value):
        return value
    raise bad("an option name of letters, digits, '_', '.' or '-'", value)


def _vcpu(value: object) -> int | Literal["all"]:
    if value == "all":
        return "all"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise bad("a vCPU index (an integer >= 0) or 'all'", value)


_DECLARED_WORKLOADS: ContextVar[tuple[str, ...]] = ContextVar("declared_workloads",
                                                             default=())
"""The ``[[workload]]`` names of the scenario being validated (set by :class:`Scenario`
around its own validation), so a guest's ``workload`` is checked with its other keys."""


def _workload_names() -> list[str]:
    return [*builtin_workloads(), *_DECLARED_WORKLOADS.get()]


Phase = Annotated[str, BeforeValidator(one_of(_workload_names))]
"""A workload name: a built-in one (``vpmu.workloads.table.builtin``: the phases of
``vpmu.workloads.phases.PHASES`` and the SPEC CPU2017 presets) or a ``[[workload]]`` of the
scenario being validated."""


def _sampling_problems(spec: "GuestSpec | HostTaskSpec", sampling: bool) -> list[tuple[Loc, str]]:
    """freq and period: only for ``perf record``, and not both."""
    given = [k for k in ("freq", "period") if getattr(spec, k) is not None]
    if given and not sampling:
        return [((k,), "applies only to perf-record") for k in given]
    if len(given) == 2:
        return [(("period",), f"give freq (-F) or period (-c), not both; got freq = "
                              f"{spec.freq} and period = {spec.period}")]
    return []


def _sample_freq(record: bool, freq: int | None, period: int | None,
                 max_rate: int = DEFAULT_MAX_SAMPLE_RATE) -> int | None:
    """The -F perf record uses: ``freq``, else the default unless a period is given; None
    for anything but perf record. As the perf tool does (record_opts__config_freq), the
    default is lowered to ``max_rate`` when the sysctl is below it; a ``freq`` above it is
    refused by the schema."""
    if not record or period is not None:
        return None
    return min(DEFAULT_FREQ, max_rate) if freq is None else freq


def _freq_problems(freq: int | None, max_rate: int, where: str) -> list[tuple[Loc, str]]:
    """perf record refuses -F above perf_event_max_sample_rate ("Maximum frequency rate
    exceeded"); the kernel's perf_event_open would fail with EINVAL."""
    if freq is not None and freq > max_rate:
        return [(("freq",), f"expected at most {where} = {max_rate} "
                            f"(perf_event_max_sample_rate), got {freq}")]
    return []


class _Model(BaseModel):
    """A scenario table (``STRICT``: unknown keys are errors, values frozen and strict)."""

    model_config = STRICT


class HostSpec(_Model):
    """``[host]``: the machine the VMs run on."""

    preset: Annotated[str, BeforeValidator(one_of(lambda: list(PRESET_NAMES)))]
    """CPU preset name, or a host preset's (a machine whose clusters differ: ``rk3399``);
    ``vpmu presets`` lists both."""
    cpus: int = Field(default=1, ge=1, le=MAX_CPUS)
    """Number of pCPUs (1-4096); a host preset's own count (``rk3399``: 6)."""
    nmi_watchdog: bool = False
    """Whether the host's NMI watchdog holds a pinned cycles event on every CPU."""
    tick_hz: int = Field(default=250, ge=1, le=10_000)
    """Host CONFIG_HZ (1-10000)."""
    clear_dirty_counters: bool = True
    """perf clears counters a task with RDPMC access could see but does not own."""
    max_sample_rate: int = Field(default=DEFAULT_MAX_SAMPLE_RATE, ge=1, le=INT_MAX)
    """Host ``kernel.perf_event_max_sample_rate`` (1 to 2^31-1)."""
    vhe: bool = True
    """arm64: the host kernel runs at EL2 (VHE) where every core has FEAT_VHE, or at EL1
    beside its guests' kernels (nVHE, ``kvm-arm.mode=nvhe``) when false; an Armv8.0 core
    (A53, A72) boots nVHE either way. Refused on x86, which has no such choice."""

    @model_validator(mode="after")
    def _check_vhe(self) -> Self:
        arch = boot_preset(self.preset).caps.arch
        if not self.vhe and arch != "arm64":
            raise_problems([(("vhe",), f"applies only to an arm64 host (VHE or nVHE); got "
                                        f"preset = {self.preset!r}, an {arch} host")])
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Every key, but ``vhe`` only when false: a scenario that does not ask for nVHE
        dumps (and so embeds in its results) as before the key existed."""
        data: dict[str, Any] = handler(self)
        if self.vhe:
            data.pop("vhe", None)
        return data


class VmPmuSpec(_Model):
    """``[vm.pmu]``: overrides of the PMU shape the guest enumerates (None = the design's)."""

    version: int | None = Field(default=None, ge=0, le=0xFF)
    """Architectural PMU version (CPUID.0xA.EAX[7:0], 0-255)."""
    gp_counters: int | None = Field(default=None, ge=0, le=0xFF)
    """Number of general-purpose counters (CPUID.0xA.EAX[15:8], 0-255)."""
    fixed_counters: int | None = Field(default=None, ge=0, le=0x1F)
    """Number of fixed counters (CPUID.0xA.EDX[4:0], 0-31)."""


class FilterSpec(_Model):
    """``[vm.filter]``: a KVM PMU event filter (``KVM_SET_PMU_EVENT_FILTER``)."""

    action: Annotated[FilterAction, _literal(FilterAction)]
    """Whether the listed events are the only ones allowed or the ones denied."""
    events: list[EventCode] = []
    """Event selects; hex strings such as ``"0x00c0"`` are read as integers."""
    fixed_counter_bitmap: int = Field(default=0, ge=0, le=2**32 - 1)
    """Fixed counters the action applies to, one bit each (the uapi's __u32)."""
    masked: bool = False
    """``KVM_PMU_EVENT_FLAG_MASKED_EVENTS``: events are masked-event entries."""


class GuestSpec(_Model):
    """``[[vm.guest]]``: what runs on the guest's vCPUs."""

    vcpu: Annotated[int | Literal["all"], PlainValidator(_vcpu)] = 0
    """The vCPU the workload (and tool) runs on, like ``taskset -c``; ``"all"`` for every one."""
    tick_hz: int = Field(default=1000, ge=1, le=10_000)
    """Guest CONFIG_HZ (1-10000)."""
    workload: Phase = "br_instr"
    """Workload phase name."""
    tool: Annotated[GuestTool, _literal(GuestTool)] = "none"
    """The tool wrapped around the workload: a perf tool, or ``lbr-sampler`` (a kernel module
    that enables the LBR and reads its stack at every timer tick, no counter, no events)."""
    events: list[GuestEvent] = Field(default=[], max_length=64)
    """Events given to the tool with -e; required with a tool, forbidden without one. One
    string may be a group, ``{cycles,instructions}`` (``:S``: only the leader samples)."""
    freq: int | None = Field(default=None, ge=1, le=INT_MAX)
    """``perf record -F`` (at most ``max_sample_rate``); the default is
    :data:`DEFAULT_FREQ` when period is not given."""
    period: int | None = Field(default=None, ge=1, le=U64_MAX)
    """``perf record -c`` (1 to 2^64-1, attr.sample_period)."""
    max_sample_rate: int = Field(default=DEFAULT_MAX_SAMPLE_RATE, ge=1, le=INT_MAX)
    """The guest's ``kernel.perf_event_max_sample_rate`` (1 to 2^31-1)."""
    perf_cpu_time_max_percent: int = Field(default=DEFAULT_CPU_TIME_MAX_PERCENT, ge=0, le=100)
    """The guest's ``kernel.perf_cpu_time_max_percent`` (0-100, written after
    ``max_sample_rate``): the share of the CPU its PMU interrupts may take before the kernel
    lowers the sample rate; 0 or 100 turn that off (seed 001: 0)."""
    mux_interval_ms: int | None = Field(default=None, ge=1, le=INT_MAX)
    """The guest PMU's ``perf_event_mux_interval_ms`` (1 to 2^31-1): how often multiplexed
    events rotate; unset, the kernel's default of one tick (1000 / tick_hz)."""
    branch_stack: Annotated[BranchStack, _literal(BranchStack)] = "none"
    """An LBR branch stack in each sample (tool = perf-record only): ``any`` is
    ``perf record -b``, ``call-stack`` is ``--call-graph lbr``; an event with one is
    <not supported> where the guest's PERF_CAPABILITIES has no LBR format."""
    start_ms: float = Field(default=0.0, ge=0, le=MAX_DURATION_MS)
    """When the first run starts, in simulated milliseconds (before ``duration_ms``)."""
    runs: int = Field(default=1, ge=1, le=MAX_RUNS)
    """How many times tool + workload run back to back (seed 001, docs/sources.md: ``for i in seq 1
    10``)."""

    @property
    def sample_freq(self) -> int | None:
        """The -F perf record uses (see ``_sample_freq``)."""
        return _sample_freq(self.tool == "perf-record", self.freq, self.period,
                            self.max_sample_rate)

    @model_validator(mode="after")
    def _check_tool(self) -> Self:
        problems = _sampling_problems(self, self.tool == "perf-record")
        problems += _freq_problems(self.freq, self.max_sample_rate, "max_sample_rate")
        if self.branch_stack != "none" and self.tool != "perf-record":
            problems.append((("branch_stack",), "applies only with tool = 'perf-record'; "
                                                f"got tool = {self.tool!r}"))
        if self.tool in ("none", "lbr-sampler") and self.events:
            problems.append((("events",), "applies only with tool = 'perf-record' or "
                                          f"'perf-stat'; got tool = {self.tool!r}"))
        if self.tool in ("perf-record", "perf-stat") and not self.events:
            problems.append((("events",), f"expected at least one event for "
                                          f"tool = {self.tool!r}, got []"))
        raise_problems(problems)
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Every key, but ``perf_cpu_time_max_percent`` and ``mux_interval_ms`` only when
        not at their defaults: a scenario that sets neither dumps (and so embeds in its
        results) as before the keys existed."""
        data: dict[str, Any] = handler(self)
        if self.perf_cpu_time_max_percent == DEFAULT_CPU_TIME_MAX_PERCENT:
            data.pop("perf_cpu_time_max_percent", None)
        if self.mux_interval_ms is None:
            data.pop("mux_interval_ms", None)
        return data


class VmSpec(_Model):
    """``[[vm]]``: one VM, its vPMU design and what its guest runs."""

    name: Annotated[str, BeforeValidator(valid_name)] = "vm0"
    """Unique VM name; the scenario names unnamed VMs ``vm0``, ``vm1``, ... by position."""
    vcpus: int = Field(default=1, ge=1, le=MAX_CPUS)
    """Number of vCPUs (1-4096)."""
    pin: list[Annotated[int, Field(ge=0, le=MAX_CPUS - 1)]] | None = None
    """pCPU of each vCPU (one entry per vCPU); None lets the host scheduler place them."""
    design: Annotated[str, BeforeValidator(_design_spec)] = registry.default_design()
    """vPMU design spec: ``NAME`` or ``NAME:key=value,...``; the name is checked by the machine."""
    design_options: dict[Annotated[str, BeforeValidator(_option_key)],
                         Annotated[str | int | bool, PlainValidator(_option_value)]] = {}
    """``[vm.design_options]``: more options of the design, typed as TOML values."""
    pmu: VmPmuSpec | None = None
    """``[vm.pmu]``: overrides of the guest PMU shape."""
    filter: FilterSpec | None = None
    """``[vm.filter]``: a PMU event filter."""
    guest: list[GuestSpec] = Field(min_length=1)
    """``[[vm.guest]]``: the guest programs, at least one."""

    @property
    def design_name(self) -> str:
        """The design's registry name (the spec without its options)."""
        return DesignSpec.parse(self.design).name

    @property
    def design_spec(self) -> str:
        """One spec string with the options of ``design`` and of ``design_options`` merged."""
        options = list(DesignSpec.parse(self.design).options)
        options += [(k, _option_text(v)) for k, v in self.design_options.items()]
        text = ",".join(f"{k}={v}" for k, v in options)
        return f"{self.design_name}:{text}" if text else self.design_name

    @model_validator(mode="after")
    def _check_vcpus(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.pin is not None and len(self.pin) != self.vcpus:
            problems.append((("pin",), f"expected one pCPU per vCPU ({self.vcpus} entries "
                                       f"for vcpus = {self.vcpus}), got {show(self.pin)}"))
        spec_keys = dict(DesignSpec.parse(self.design).options)
        problems += [(("design_options", k), f"is also set in design = {self.design!r}; "
                                             "set it in one place")
                     for k in self.design_options if k in spec_keys]
        problems += [(("guest", i, "vcpu"), f"expected 'all' or a vCPU index < vcpus = "
                                            f"{self.vcpus}, got {g.vcpu}")
                     for i, g in enumerate(self.guest)
                     if isinstance(g.vcpu, int) and g.vcpu >= self.vcpus]
        raise_problems(problems)
        return self


def _option_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


HOST_TASK_ONLY: Final = {"workload": "load", "interval_us": "rdpmc-reader",
                         "clear_dirty_counters": "rdpmc-reader", "branch_stack": "perf-record"}
"""``[[host_task]]`` keys that apply to one kind only."""
NOT_FOR_LOAD: Final = ("events", "exclude_guest")
"""``[[host_task]]`` keys a load does not take."""


class HostTaskSpec(_Model):
    """``[[host_task]]``: something the host runs beside the VMs."""

    kind: Annotated[HostTaskKind, _literal(HostTaskKind)]
    """``perf-record`` / ``perf-stat`` (host profiling), ``rdpmc-reader`` (a task reading
    counters with RDPMC, seed 003) or ``load`` (a CPU-bound task competing for pCPUs)."""
    cpu: int | None = Field(default=None, ge=0, le=MAX_CPUS - 1)
    """The pCPU it runs on; None = system-wide for perf, any pCPU otherwise."""
    events: list[HostPerfEvent] = Field(default=[], max_length=64)
    """Events for perf (required); not for a load or an RDPMC reader (it reads every counter
    of the host and opens none)."""
    exclude_guest: bool = True
    """Open the events with ``exclude_guest`` (perf's ``:H``); not for a load."""
    freq: int | None = Field(default=None, ge=1, le=INT_MAX)
    """``perf record -F`` (at most ``host.max_sample_rate``); the default is
    :data:`DEFAULT_FREQ` when period is not given."""
    period: int | None = Field(default=None, ge=1, le=U64_MAX)
    """``perf record -c`` (1 to 2^64-1)."""
    branch_stack: Annotated[BranchStack, _literal(BranchStack)] = "none"
    """An LBR branch stack in each sample (kind = perf-record only): ``any`` is
    ``perf record -b``, ``call-stack`` is ``--call-graph lbr``; needs a preset with an LBR."""
    start_ms: float = Field(default=0.0, ge=0, le=MAX_DURATION_MS)
    """When it starts, in simulated milliseconds (before ``duration_ms``)."""
    workload: Phase = "compute"
    """The load's workload phase (kind = load only)."""
    interval_us: float = Field(default=100.0, ge=1e-3, le=MAX_DURATION_MS * 1000)
    """Time between two reads of the RDPMC reader (kind = rdpmc-reader only), 1 ns or
    more."""
    clear_dirty_counters: bool | None = None
    """Override of ``host.clear_dirty_counters`` for this RDPMC reader; None = the host's."""

    @property
    def sample_freq(self) -> int | None:
        """The -F perf record uses (see ``_sample_freq``)."""
        return _sample_freq(self.kind == "perf-record", self.freq, self.period)

    @model_validator(mode="after")
    def _check_kind(self) -> Self:
        problems = _sampling_problems(self, self.kind == "perf-record")
        problems += [((k,), f"applies only to kind = {kind!r}; got kind = {self.kind!r}")
                     for k, kind in HOST_TASK_ONLY.items()
                     if k in self.model_fields_set and self.kind != kind]
        if self.kind == "load":
            problems += [((k,), "does not apply to kind = 'load'")
                         for k in NOT_FOR_LOAD if k in self.model_fields_set]
        if self.kind == "rdpmc-reader" and self.events:
            problems.append((("events",), "an rdpmc-reader reads every counter of the host "
                                          "and opens no events; got "
                                          f"{show(self.events)}"))
        if self.kind in ("perf-record", "perf-stat") and not self.events:
            problems.append((("events",), f"expected at least one event for "
                                          f"kind = {self.kind!r}, got []"))
        raise_problems(problems)
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Every key that applies to this kind: the dump (a results file's scenario echo)
        reads back, which restating another kind's key at its default would not."""
        data: dict[str, Any] = handler(self)
        for key, kind in HOST_TASK_ONLY.items():
            if self.kind != kind:
                data.pop(key, None)
        if self.kind == "load":
            for key in NOT_FOR_LOAD:
                data.pop(key, None)
        return data


def _workload_problems(sc: "Scenario") -> list[tuple[Loc, str]]:
    """Each ``[[workload]]`` name is new: not a built-in workload's, not another's."""
    builtin, problems = builtin_workloads(), list[tuple[Loc, str]]()
    own: set[str] = set()
    for i, w in enumerate(sc.workload):
        if w.name in builtin or w.name in own:
            what = "a built-in workload's" if w.name in builtin else "another [[workload]]'s"
            problems.append((("workload", i, "name"), f"expected a new workload name, got "
                                                      f"{w.name!r}, {what}"))
        own.add(w.name)
    return problems


def _declared(data: Any) -> tuple[str, ...]:
    """The string names of a raw scenario's ``[[workload]]`` tables."""
    tables = data.get("workload") if isinstance(data, dict) else None
    if not isinstance(tables, list):
        return ()
    return tuple(t["name"] for t in tables
                 if isinstance(t, dict) and isinstance(t.get("name"), str))


class Scenario(_Model):
    """A whole scenario file.

    Every field is a JSON type (no tuples, sets or enums), so ``model_dump()`` is already what a
    results file embeds under ``"scenario"``, and ``Scenario.model_validate`` reads it back
    unchanged.
    """

    name: str = ""
    """Short name, for reports."""
    description: str = ""
    """What the scenario reproduces."""
    duration_ms: float = Field(ge=MIN_DURATION_MS, le=MAX_DURATION_MS)
    """Simulated guest work the run asks for, in milliseconds (0.001 to 1e9)."""
    seed: int = Field(default=0, ge=0, le=U64_MAX)
    """Seed of the run's random choices; same scenario + seed = same results."""
    host: HostSpec
    """``[host]``."""
    vm: list[VmSpec] = []
    """``[[vm]]``: the VMs."""
    host_task: list[HostTaskSpec] = []
    """``[[host_task]]``: the host tasks."""
    workload: list[WorkloadSpec] = []
    """``[[workload]]``: the scenario's own workloads (docs/workloads.md); dumped only when
    there are some, so a scenario without any embeds in its results as before the key."""

    @model_validator(mode="before")
    @classmethod
    def _name_vms(cls, data: Any) -> Any:
        """Unnamed VMs are ``vm0``, ``vm1``, ... by position."""
        if isinstance(data, dict) and isinstance(data.get("vm"), list):
            vms = [dict(vm, name=vm.get("name", f"vm{i}")) if isinstance(vm, dict) else vm
                   for i, vm in enumerate(data["vm"])]
            data = {**data, "vm": vms}
        return data

    @model_validator(mode="after")
    def _check_host_fit(self) -> Self:
        ncpu, problems = self.host.cpus, list[tuple[Loc, str]]()
        layout = HOST_PRESETS.get(self.host.preset)
        if layout is not None and ncpu != layout.ncpus:
            problems.append((("host", "cpus"), f"expected {layout.ncpus}, the CPUs of host "
                                               f"preset {layout.name!r}, got {ncpu}"))
        problems += repeated_names((vm.name for vm in self.vm), "vm", "VM")
        for i, vm in enumerate(self.vm):
            problems += [(("vm", i, "pin", j), f"expected a pCPU < host.cpus = {ncpu}, got {c}")
                         for j, c in enumerate(vm.pin or ()) if c >= ncpu]
            problems += [(("vm", i, "guest", j, "start_ms"), self._late(g.start_ms))
                         for j, g in enumerate(vm.guest) if g.start_ms >= self.duration_ms]
        for i, t in enumerate(self.host_task):
            if t.cpu is not None and t.cpu >= ncpu:
                problems.append((("host_task", i, "cpu"),
                                 f"expected a pCPU < host.cpus = {ncpu}, got {t.cpu}"))
            if t.start_ms >= self.duration_ms:
                problems.append((("host_task", i, "start_ms"), self._late(t.start_ms)))
            problems += [(("host_task", i, *loc), msg) for loc, msg in _freq_problems(
                t.freq, self.host.max_sample_rate, "host.max_sample_rate")]
            problems += [(("host_task", i, "events", j), msg)
                         for j, e in enumerate(t.events)
                         if (msg := host_event_problem(self.host.preset, e))]
        raise_problems(problems)
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _with_declared_workloads(cls, data: Any, handler: ModelWrapValidatorHandler[Self]
                                 ) -> Self:
        """Guests and loads may name the scenario's own ``[[workload]]`` tables."""
        token = _DECLARED_WORKLOADS.set(_declared(data))
        try:
            return handler(data)
        finally:
            _DECLARED_WORKLOADS.reset(token)

    @model_validator(mode="after")
    def _check_workloads(self) -> Self:
        raise_problems(_workload_problems(self))
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Every key, but ``workload`` only when the scenario has some."""
        data: dict[str, Any] = handler(self)
        if not self.workload:
            data.pop("workload", None)
        return data

    def workloads(self) -> dict[str, Workload]:
        """The scenario's own workloads by name, as runs execute them."""
        return {w.name: w.to_workload() for w in self.workload}

    def _late(self, start_ms: float) -> str:
        return f"expected a start before duration_ms = {self.duration_ms:g}, got {start_ms:g}"
