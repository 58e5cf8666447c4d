"""The scenario: the TOML file a run starts from, its schema and its loader."""

from vpmu.linux.perf import DEFAULT_FREQ
from vpmu.scenario.load import (
    Problem,
    ScenarioError,
    apply_overrides,
    load_scenario,
    parse_scenario,
    validate_scenario,
)
from vpmu.scenario.schema import (
    FilterSpec,
    GuestSpec,
    HostSpec,
    HostTaskSpec,
    Scenario,
    VmPmuSpec,
    VmSpec,
)

__all__ = ["DEFAULT_FREQ", "FilterSpec", "GuestSpec", "HostSpec", "HostTaskSpec", "Problem",
           "Scenario", "ScenarioError", "VmPmuSpec", "VmSpec", "apply_overrides",
           "load_scenario", "parse_scenario", "validate_scenario"]
