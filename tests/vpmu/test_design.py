"""Design specs, the registry, and the ``none`` design."""

import pytest

from vpmu.arch.faults import Fault
from vpmu.arch.presets import get_preset
from vpmu.arch.x86.caps import cpuid
from vpmu.vpmu.design import DesignSpec, make_design


def test_spec_parses_names_and_options() -> None:
    """NAME and NAME:key=value,key=value parse; str() gives the spec back."""
    assert DesignSpec.parse("none") == DesignSpec("none")
    spec = DesignSpec.parse("emulated:is_paused=false,reuse_perf_events=true")
    assert spec.options == (("is_paused", "false"), ("reuse_perf_events", "true"))
    assert str(spec) == "emulated:is_paused=false,reuse_perf_events=true"


@pytest.mark.parametrize(("text", "message"), [
    ("", "design must be NAME"), ("em ulated", "design must be NAME"),
    ("none:is_paused", "key=value"), ("none:=1", "key=value"),
])
def test_bad_specs_name_the_problem(text: str, message: str) -> None:
    """A malformed spec gets one error saying what was expected."""
    with pytest.raises(ValueError, match=message):
        DesignSpec.parse(text)


def test_registry_rejects_unknown_designs_and_options() -> None:
    """Unknown design names and options are refused with the valid ones listed."""
    with pytest.raises(ValueError, match="design must be one of"):
        make_design("nosuch")
    with pytest.raises(ValueError, match="option must be one of"):
        make_design("none:is_paused=true")


def test_none_enumerates_no_pmu_and_faults_every_access() -> None:
    """none: CPUID.0xA is 0, PDCM clear, AMD PMU bits clear; MSRs and RDPMC take #GP."""
    design = make_design("none")
    icx = design.guest_caps(get_preset("intel-icx").caps)
    assert cpuid(icx, 0xA) == (0, 0, 0, 0)
    assert not cpuid(icx, 1)[2] >> 15 & 1
    zen = design.guest_caps(get_preset("amd-zen4").caps)
    assert cpuid(zen, 0x8000_0001)[2] == 0 and cpuid(zen, 0x8000_0022) == (0, 0, 0, 0)
    pmu = design.create_vcpu(None)  # type: ignore[arg-type]
    assert pmu.intercepts_msr(0x186) and pmu.intercepts_rdpmc()

    def run(gen):  # type: ignore[no-untyped-def]
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
        raise AssertionError("a none op takes no time")
    assert run(pmu.get_msr(None, 0x186)) is Fault.GP  # type: ignore[arg-type]
    assert run(pmu.set_msr(None, 0x38F, 1)) is Fault.GP  # type: ignore[arg-type]
    assert run(pmu.rdpmc(None, 0)) is Fault.GP  # type: ignore[arg-type]
