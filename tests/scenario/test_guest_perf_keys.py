"""The guest perf keys of ``[[vm.guest]]``: event groups in ``events``,
``perf_cpu_time_max_percent`` and ``mux_interval_ms`` (checked, and dumped only when set)."""

import pytest

from vpmu.scenario import ScenarioError, parse_scenario

BASE = """\
duration_ms = 10
[host]
preset = "intel-icx"
[[vm]]
[[vm.guest]]
tool = "perf-record"
"""


def problems(text: str) -> list[str]:
    """The lines of the ScenarioError parsing ``text`` raises."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "x.toml")
    return str(info.value).splitlines()


def test_groups_are_events_and_new_keys_dump_only_when_set() -> None:
    """A group string is an ``events`` entry; at their defaults the two keys are left out of
    the dump (the results' ``scenario.file_model``), set they are kept."""
    plain = parse_scenario(BASE + 'events = ["{cycles,instructions}:S", "cache-misses"]\n')
    guest = plain.vm[0].guest[0]
    assert (guest.perf_cpu_time_max_percent, guest.mux_interval_ms) == (25, None)
    dumped = plain.model_dump()["vm"][0]["guest"][0]
    assert "perf_cpu_time_max_percent" not in dumped and "mux_interval_ms" not in dumped
    assert dumped["events"] == ["{cycles,instructions}:S", "cache-misses"]
    pinned = parse_scenario(BASE + 'events = ["cycles"]\nperf_cpu_time_max_percent = 0\n'
                            'mux_interval_ms = 4\n')
    dumped = pinned.model_dump()["vm"][0]["guest"][0]
    assert (dumped["perf_cpu_time_max_percent"], dumped["mux_interval_ms"]) == (0, 4)


def test_events_take_perf_modifiers() -> None:
    """``instructions:u`` and ``cycles:k`` are events (perf's user / kernel-only modifiers)."""
    sc = parse_scenario(BASE + 'events = ["instructions:u", "cycles:k", "{branches:u,cycles}"]\n')
    assert sc.vm[0].guest[0].events == ["instructions:u", "cycles:k", "{branches:u,cycles}"]


@pytest.mark.parametrize(("line", "where"), [
    ('events = ["cycles", "{cycles,}"]', "vm[0].guest[0].events[1]: an event group must list"),
    ('events = ["{cycles}:u"]', "vm[0].guest[0].events[0]: an event group's modifier must be"),
    ('events = ["{cycles,instructions"]', "vm[0].guest[0].events[0]: an event group must be"),
    ('events = ["{cycles,bogus}"]', "vm[0].guest[0].events[0]: event must be one of"),
    ('events = ["branches:x"]', "vm[0].guest[0].events[0]: event modifiers must be among"),
    ('events = ["cycles"]\nperf_cpu_time_max_percent = 101',
     "vm[0].guest[0].perf_cpu_time_max_percent:"),
    ('events = ["cycles"]\nmux_interval_ms = 0', "vm[0].guest[0].mux_interval_ms:"),
], ids=["empty-member", "modifier", "unclosed", "unknown-member", "bad-modifier", "percent",
        "mux"])
def test_a_bad_group_or_setting_names_its_key(line: str, where: str) -> None:
    """Each mistake is one error at its key path."""
    (message,) = problems(BASE + line + "\n")
    assert message.startswith(f"x.toml: {where}"), message
