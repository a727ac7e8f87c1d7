"""Identification, sans-IO: sitewatch nodes by their own registers, vendor devices by the profiles."""

from __future__ import annotations

import pytest

from firmware import regmap
from gateway.profiles.vendor import VendorProfile, load_vendor_profiles
from gateway.protocols import modbus_rtu_master as rtu
from gateway.scan.identify import match_profiles, profile_reads, sitewatch_kind
from gateway.scan.plan import SerialSettings

PROFILES = load_vendor_profiles()
LINE = SerialSettings(9600)


def test_a_sitewatch_node_is_known_by_version_kind_and_its_own_unit_id() -> None:
    identity = rtu.Registers((regmap.FIRMWARE_VERSION, regmap.KIND_WIND))
    assert sitewatch_kind(7, identity, rtu.Registers((7,))) == "wind"
    assert sitewatch_kind(7, identity, rtu.Registers((8,))) is None  # unit id register disagrees
    assert sitewatch_kind(7, rtu.Registers((0x0900, regmap.KIND_WIND)), rtu.Registers((7,))) is None  # other major
    assert sitewatch_kind(7, rtu.Registers((regmap.FIRMWARE_VERSION, 99)), rtu.Registers((7,))) is None
    assert sitewatch_kind(7, rtu.ExceptionReply(2), None) is None


def replies_of(profile: VendorProfile, values: dict[str, float]) -> dict[tuple[int, int, int], rtu.Reply | None]:
    """What a device laid out as `profile` answers to every read any profile needs (exception 2 elsewhere)."""
    words = profile.encode(values)
    replies: dict[tuple[int, int, int], rtu.Reply | None] = {}
    for function, address, count in profile_reads(list(PROFILES.values())):
        span = [(function, a) for a in range(address, address + count)]
        replies[(function, address, count)] = (
            rtu.Registers(tuple(words[k] for k in span)) if all(k in words for k in span) else rtu.ExceptionReply(2)
        )
    return replies


TYPICAL = {
    "calypso-ulp-ultrasonic": {"wind_speed": 6.5, "wind_dir": 225.0},
    "deltaohm-pmsense": {"pm1": 12.0, "pm25": 35.0, "pm10": 80.0},
    "generic-485-noise": {"laeq_1s": 64.0},
    "geokon-6150f-inclinometer": {"slope_x": 1.5, "slope_y": -0.8},
    "lambrecht-14523-wind-direction": {"wind_dir": 270.0},
    "lambrecht-14524-wind-speed": {"wind_speed": 9.1},
}


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_shipped_profile_is_the_best_match_for_its_own_layout(name: str) -> None:
    profile = PROFILES[name]
    values = {q: v for q, v in TYPICAL[name].items() if q in profile.quantities}
    assert values, f"no typical values for {name}: add them to TYPICAL"
    matches = match_profiles(list(PROFILES.values()), replies_of(profile, values), LINE)
    assert matches and matches[0].profile == name
    assert sum(m.confidence for m in matches) == pytest.approx(1.0)


def test_implausible_values_or_exceptions_fit_no_profile() -> None:
    profiles = [PROFILES["lambrecht-14524-wind-speed"]]
    (read,) = profile_reads(profiles)
    assert match_profiles(profiles, {read: rtu.ExceptionReply(2)}, LINE) == []
    assert match_profiles(profiles, {read: None}, LINE) == []
    # 6000 raw: far beyond the profile's range (an anemometer reading hundreds of m/s is no anemometer).
    assert match_profiles(profiles, {read: rtu.Registers((60000,))}, LINE) == []


def test_the_profiles_default_line_settings_raise_the_confidence() -> None:
    noise = PROFILES["generic-485-noise"]  # ships at 4800 8N1
    replies = replies_of(noise, {"laeq_1s": 60.0})
    at_default = match_profiles([noise, PROFILES["lambrecht-14524-wind-speed"]], replies, SerialSettings(4800))
    assert at_default[0].profile == "generic-485-noise"
    assert at_default[0].profile_settings == (4800, "N")
