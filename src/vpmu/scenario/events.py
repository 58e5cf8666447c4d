"""The perf event names a scenario gives: the guest's and the host's perf tools' ``-e``
arguments (checked against the guest's event map and the host's PMUs) and the event selects
of KVM's PMU event filter."""

import functools
import re
from typing import Annotated

from pydantic import BeforeValidator, PlainValidator
from pydantic_core import PydanticCustomError

from vpmu.arch.presets import PRESETS, Cluster, HostPreset, host_layout
from vpmu.guest.linux.event_map import parse_event as guest_parse_event
from vpmu.guest.linux.event_map import parse_group as guest_parse_group
from vpmu.host.machine import Host
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.x86.events_map import parse_event as host_parse_event
from vpmu.host.tools import tool_attrs
from vpmu.scenario.checks import BAD_VALUE, bad

_PERF_EVENT = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*(:[A-Za-z]+)?")
"""A perf event name, with perf's modifiers after a colon (``branch-misses:u``; the guest's
event parser says which it takes)."""
_HOST_PERF_EVENT = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*(/[A-Za-z0-9_.=-]+/)?")


def _event_code(value: object) -> int:
    """A KVM filter event: an integer or a hex string such as ``"0x00c0"``."""
    code: object = value
    if isinstance(value, str):
        try:
            code = int(value, 16) if value.lower().startswith("0x") else None
        except ValueError:
            code = None
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code < 1 << 64:
        return code
    raise bad("an event select as an integer or a hex string like '0x00c0'", value)


def _perf_event(value: object) -> object:
    if isinstance(value, str) and _PERF_EVENT.fullmatch(value):
        return value
    raise bad("a perf event name like 'cycles', 'instructions:u' or a raw event like "
               "'r00c0'", value)


def _host_perf_event(value: object) -> object:
    """The host's perf tool also takes a PMU's event (``pmu/event/``): the host may have
    several core PMUs."""
    if isinstance(value, str) and _HOST_PERF_EVENT.fullmatch(value):
        return value
    raise bad("a perf event name like 'cycles', a raw event like 'r00c0' or a PMU's event "
               "like 'armv8_cortex_a72/cycles/'", value)


def host_event_problem(preset: str, event: str) -> str:
    """Why the host's perf tool would refuse ``event`` on ``preset``, or ''. Where the host
    has several PMUs or another architecture than x86, the tool's own resolution runs on a
    host of one CPU per cluster (which PMU an event goes to, ``pmu/event/`` terms)."""
    try:
        if preset in PRESETS and PRESETS[preset].caps.arch == "x86":
            host_parse_event(PRESETS[preset].caps, event)
        else:
            tool_attrs(_probe_perf(preset), event)
    except ValueError as err:
        return str(err)
    return ""


@functools.cache
def _probe_perf(preset: str) -> PerfSubsystem:
    """Perf on a host of ``preset`` with one CPU per cluster: what the perf tool sees."""
    layout = host_layout(preset)
    if isinstance(layout, HostPreset):
        layout = HostPreset(layout.name, tuple(
            Cluster((i,), cl.preset) for i, cl in enumerate(layout.clusters)))
    return PerfSubsystem(Host(layout))


def _guest_event(value: object) -> object:
    """An event the guest's perf knows (``vpmu.guest.linux.event_map``), or a group of them
    as one string: ``{cycles,instructions}``, ``{cycles,instructions}:S``."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            members = guest_parse_group(value).members
        except ValueError as err:
            raise PydanticCustomError(BAD_VALUE, "{reason}", {"reason": str(err)}) from None
        if not all(_PERF_EVENT.fullmatch(name) for name in members):
            raise bad("a group of perf event names like '{cycles,instructions}'", value)
        return value
    _perf_event(value)
    try:
        guest_parse_event(str(value))
    except ValueError as err:
        raise PydanticCustomError(BAD_VALUE, "{reason}", {"reason": str(err)}) from None
    return value


HostPerfEvent = Annotated[str, BeforeValidator(_host_perf_event)]
"""A perf event as the host's perf tool takes it after -e (checked against the host's PMUs
by :class:`Scenario`)."""
GuestEvent = Annotated[str, BeforeValidator(_guest_event)]
"""An event the guest's perf accepts after -e."""
EventCode = Annotated[int, PlainValidator(_event_code)]
"""An event select for KVM's PMU event filter."""
