from __future__ import annotations

import pytest

from gateway.model import Quality
from gateway.process.limits import LimitsError, LimitsResolver
from gateway.process.spray import SprayCommand, SprayLinkage, SprayMode
from tests.gateway.process.support import reading

MEAN = "pm10_15min_mean"


def mean(value: float | None, node: str = "dust-1", quality: Quality = Quality.NORMAL) -> object:
    return reading(MEAN, value, 0.0, node=node, quality=quality)


def feed(linkage: SprayLinkage, value: float | None, now: float, **kw: object) -> list[SprayCommand]:
    return linkage.feed(mean(value, **kw), now)  # type: ignore[arg-type]


def states(commands: list[SprayCommand]) -> list[bool]:
    return [c.on for c in commands]


def test_on_above_the_dust_setting_for_at_least_thirty_minutes_then_off_with_hysteresis() -> None:
    spray = SprayLinkage(LimitsResolver())
    assert feed(spray, 150.0, 0.0) == []  # "exceeds": 150 is not above 150
    (on,) = feed(spray, 180.0, 900.0)
    assert (on.node, on.coil, on.on, on.time, on.mode) == ("dust-1", "spray_relay", True, 900.0, SprayMode.AUTO)
    assert on.reason == "PM10 15-min mean 180 ug/m3 > 150 ug/m3" and on.value == 180.0 and on.level == 150.0
    assert feed(spray, 20.0, 1800.0) == []  # clean air, but only 15 min ran
    assert spray.tick(2699.0) == []
    (off,) = spray.tick(2700.0)  # 30 min after switching on
    assert not off.on and off.reason == "PM10 15-min mean 20 ug/m3 < 130 ug/m3; ran 1800 s"
    assert spray.tick(3000.0) == []  # a command only on a change


def test_no_chatter_between_the_off_level_and_the_on_level() -> None:
    spray = SprayLinkage(LimitsResolver())
    assert states(feed(spray, 151.0, 0.0)) == [True]
    for i, value in enumerate([140.0, 131.0, 149.9, 130.0, 145.0]):
        assert feed(spray, value, 1800.0 + 900.0 * i) == []
    assert states(feed(spray, 129.0, 9000.0)) == [False]
    assert feed(spray, 140.0, 9900.0) == []  # below the on level: stays off


def test_stale_data_stops_the_spray_after_the_minimum_on_time_and_never_starts_it() -> None:
    spray = SprayLinkage(LimitsResolver())
    assert states(feed(spray, 300.0, 0.0)) == [True]
    assert feed(spray, None, 900.0, quality=Quality.COMMUNICATION_FAILURE) == []
    assert spray.tick(1800.0) == []  # the last valid mean is 30 min old: not stale yet
    (off,) = spray.tick(1801.0)
    assert not off.on and off.reason.startswith("no valid PM10 15-min mean for 1801 s")
    assert spray.tick(5000.0) == []


def test_manual_override() -> None:
    spray = SprayLinkage(LimitsResolver())
    (on,) = spray.set_mode("dust-1", SprayMode.ON, 0.0, who="safety officer")
    assert on.on and on.reason == "manual on by safety officer" and on.mode is SprayMode.ON
    assert feed(spray, 10.0, 900.0) == [] and spray.tick(99999.0) == []  # the rule is suspended
    (off,) = spray.set_mode("dust-1", SprayMode.OFF, 100000.0)
    assert not off.on and off.reason == "manual off by operator"
    assert feed(spray, 500.0, 100900.0) == []  # manual off holds even in thick dust
    (auto,) = spray.set_mode("dust-1", SprayMode.AUTO, 101000.0)
    assert auto.on and auto.reason == "auto mode set by operator: PM10 15-min mean 500 ug/m3 > 150 ug/m3"
    # Minimum on-time counts from when the coil went on, whoever switched it.
    spray = SprayLinkage(LimitsResolver())
    spray.set_mode("dust-1", SprayMode.ON, 0.0)
    (auto,) = spray.set_mode("dust-1", SprayMode.AUTO, 60.0)
    assert auto.on and auto.reason == "auto mode set by operator: coil stays on"
    assert spray.tick(1799.0) == []
    assert states(spray.tick(1800.0)) == [False]  # no data at all: stale


def test_each_dust_node_drives_its_coil_and_the_limits_are_per_node() -> None:
    limits = LimitsResolver(nodes={"dust-2": {"dust": {"pm10_1h_limit": 80}}})
    spray = SprayLinkage(limits, coils={"dust-3": "cannon-1"})
    assert feed(spray, 100.0, 0.0, node="dust-1") == []
    (on,) = feed(spray, 100.0, 0.0, node="dust-2")
    assert (on.node, on.level) == ("dust-2", 80.0)
    (cannon,) = feed(spray, 200.0, 0.0, node="dust-3")
    assert cannon.node == "cannon-1"
    assert set(spray.controllers) == {"dust-1", "dust-2", "cannon-1"}
    with pytest.raises(LimitsError):
        SprayLinkage(limits, coils={"dust-1": "cannon-1", "dust-2": "cannon-1"})


def test_other_channels_are_ignored() -> None:
    spray = SprayLinkage(LimitsResolver())
    assert spray.feed(reading("pm10_1h_mean", 900.0, 0.0, node="dust-1"), 0.0) == []
    assert spray.feed(reading("pm10", 900.0, 0.0, node="dust-1"), 0.0) == []


def test_a_mean_of_exactly_the_setting_summed_in_binary_does_not_switch_the_spray_on() -> None:
    # 900 samples whose mean is exactly 150.0 ug/m3 in decimal; summed in floating point it is a hair above.
    values = [149.6, 150.3, 150.1] * 300
    total = 0.0
    for value in values:
        total += value
    at_setting = total / len(values)
    assert at_setting > 150.0
    spray = SprayLinkage(LimitsResolver())
    assert feed(spray, at_setting, 0.0) == []
