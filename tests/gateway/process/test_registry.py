from __future__ import annotations

import pytest

import gateway.process  # noqa: F401  (registers every stage)
from gateway.process.limits import LimitsResolver
from gateway.process.registry import (
    AGGREGATORS,
    ALARMS,
    PROCESSORS,
    Registry,
    RegistryError,
    create_aggregator,
    create_alarms,
    create_processor,
)


def test_every_stage_named_in_the_brief_is_registered() -> None:
    assert set(PROCESSORS.names()) >= {"range", "hampel", "stuck", "humidity", "units"}
    assert set(AGGREGATORS.names()) >= {"noise", "wind", "pm", "tilt"}
    assert set(ALARMS.names()) >= {
        "crane_wind",
        "lifting_wind",
        "work_at_height_wind",
        "placing_boom_wind",
        "noise",
        "noise_night_lmax",
        "formwork_tilt",
        "dust",
    }


def test_every_registered_stage_builds_with_defaults() -> None:
    limits = LimitsResolver()
    for name in PROCESSORS.names():
        if name != "units":  # needs its table of target units
            assert hasattr(create_processor(name, limits), "process")
    assert hasattr(create_processor("units", limits, {"to": {"pm10": "mg/m3"}}), "process")
    for name in AGGREGATORS.names():
        aggregator = create_aggregator(name, limits)
        assert aggregator.advance(0.0) == []
    for name in ALARMS.names():
        definitions = create_alarms(name, limits)
        assert [d.name for d in definitions] == [name]


def test_unknown_names_and_parameters_are_registry_errors() -> None:
    limits = LimitsResolver()
    with pytest.raises(RegistryError, match="unknown aggregator 'pn'"):
        create_aggregator("pn", limits)
    with pytest.raises(RegistryError, match="aggregator 'pm'"):
        create_aggregator("pm", limits, {"window": ["1h"]})  # misspelt key


def test_decorator_registers_and_refuses_duplicates() -> None:
    registry: Registry[type[object]] = Registry("thing")

    @registry.register("a")
    class A:
        pass

    assert registry.get("a") is A and "a" in registry
    with pytest.raises(RegistryError):
        registry.register("a")(A)
