"""The line-protocol encoder: escaping vectors, field types, timestamps, the schema, a parse-back property."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.deliver.line_protocol import (
    QUALITY_CODES,
    LineProtocolError,
    RecordEncoder,
    escape_key,
    escape_measurement,
    format_field,
    line,
    series_key,
    timestamp,
)
from gateway.deliver.records import Actuation, Outage
from gateway.model import Gap, Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.process.spray import SprayCommand, SprayMode

T0 = 1_700_000_000.25


# A reader of line protocol written from the spec, to check that what the encoder writes reads back.
def _scan(text: str, i: int, stops: str) -> tuple[str, int]:
    """Raw text from i to the first unescaped character of `stops` (or the end)."""
    start = i
    while i < len(text) and text[i] not in stops:
        i += 2 if text[i] == "\\" and i + 1 < len(text) else 1
    return text[start:i], i


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ", =":
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _string(text: str, i: int) -> tuple[str, int]:
    """A double-quoted string field starting at text[i] == '"': its value and the index after it."""
    assert text[i] == '"'
    out, i = [], i + 1
    while text[i] != '"':
        if text[i] == "\\" and text[i + 1] in '"\\':
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out), i + 1


def _number(raw: str) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    if raw.endswith("i"):
        return int(raw[:-1])
    return float(raw)


def parse(text: str) -> tuple[str, list[tuple[str, str]], dict[str, Any], int]:
    assert "\n" not in text
    measurement, i = _scan(text, 0, ", ")
    tags = []
    while text[i] == ",":
        key, i = _scan(text, i + 1, "=")
        value, i = _scan(text, i + 1, ", ")
        tags.append((_unescape(key), _unescape(value)))
    assert text[i] == " "
    fields: dict[str, Any] = {}
    while True:  # at the space or comma before a field
        key, i = _scan(text, i + 1, "=")
        assert text[i] == "="
        if text[i + 1] == '"':
            value, i = _string(text, i + 1)
        else:
            raw, i = _scan(text, i + 1, ", ")
            value = _number(raw)
        fields[_unescape(key)] = value
        if text[i] == " ":
            break
        assert text[i] == ",", text[i:]
    return _unescape(measurement), tags, fields, int(text[i + 1:])


# Vectors from the line protocol reference's escaping rules.
def test_escaping_vectors() -> None:
    assert escape_measurement("my measurement,1") == "my\\ measurement\\,1"
    assert escape_measurement("a=b") == "a=b"  # '=' needs no escape in a measurement
    assert escape_key("a=b c,d") == "a\\=b\\ c\\,d"
    assert format_field("reason", 'PM10 "high"\\ now\nsee') == 'reason="PM10 \\"high\\"\\\\ now see"'
    assert format_field("count", 42) == "count=42i"
    assert format_field("valid", True) == "valid=true"
    assert format_field("value", 21.0) == "value=21.0"
    assert format_field("value", 0.1) == "value=0.1"
    assert format_field("value", 1e20) == "value=1e+20"
    assert format_field("my key", -3) == "my\\ key=-3i"


@pytest.mark.parametrize("bad", ["a\\b", "new\nline", "cr\r", "trailing\\"])
def test_names_line_protocol_cannot_carry_are_refused_by_name(bad: str) -> None:
    with pytest.raises(LineProtocolError, match=r"tag 'node' .* contains"):
        series_key("reading", {"node": bad, "site": "s"})
    with pytest.raises(LineProtocolError, match=r"tag key .* contains"):
        series_key("reading", {bad: "x"})
    with pytest.raises(LineProtocolError, match=r"measurement .* contains"):
        escape_measurement(bad)


def test_empty_names_are_refused_and_empty_tag_values_left_out() -> None:
    with pytest.raises(LineProtocolError, match="measurement is empty"):
        escape_measurement("")
    with pytest.raises(LineProtocolError, match="tag key is empty"):
        series_key("reading", {"": "x"})
    with pytest.raises(LineProtocolError, match="at least one field"):
        line("reading", {}, {}, 0)


def test_a_measurement_starting_with_hash_would_be_a_comment() -> None:
    with pytest.raises(LineProtocolError, match="comment"):
        escape_measurement("#x")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_have_no_spelling(value: float) -> None:
    with pytest.raises(LineProtocolError, match="field 'value'"):
        format_field("value", value)


def test_timestamps_in_each_precision() -> None:
    assert timestamp(T0, "s") == 1_700_000_000  # .25 rounds down
    assert timestamp(1.5, "s") == 2
    assert timestamp(T0, "ms") == 1_700_000_000_250
    assert timestamp(T0, "us") == 1_700_000_000_250_000
    assert timestamp(T0, "ns") == 1_700_000_000_250_000_000
    # Nanoseconds come from the float's microseconds: the same float is the same point everywhere.
    assert timestamp(1_700_000_000.123456, "ns") == 1_700_000_000_123_456_000
    with pytest.raises(LineProtocolError, match="precision 'm'"):
        timestamp(T0, "m")


def test_tags_are_sorted_and_empty_ones_left_out() -> None:
    assert series_key("reading", {"site": "s", "node": "n", "kind": "", "channel": "c"}) == \
        "reading,channel=c,node=n,site=s"


ENCODER = RecordEncoder("zs-site 1", "gw-1", "ns")


def test_a_reading_is_one_point_with_value_quality_and_sequence() -> None:
    r = Reading("dust-1", "dust", "pm10", 41.5, "ug/m3", Quality.NORMAL, T0, 7)
    assert ENCODER.line(r) == ("reading,channel=pm10,gateway=gw-1,kind=dust,node=dust-1,site=zs-site\\ 1,unit=ug/m3"
                               " quality=\"N\",quality_code=0i,seq=7i,value=41.5 1700000000250000000")


def test_a_reading_without_value_keeps_its_quality_visible() -> None:
    r = Reading("dust-1", "dust", "pm25", None, "ug/m3", Quality.COMMUNICATION_FAILURE, T0, 0)
    _, _, fields, _ = parse(ENCODER.line(r) or "")
    assert fields == {"quality": "B", "quality_code": QUALITY_CODES[Quality.COMMUNICATION_FAILURE], "seq": 0}
    assert QUALITY_CODES[Quality.COMMUNICATION_FAILURE] == 7 and QUALITY_CODES[Quality.NORMAL] == 0


def test_a_non_finite_value_is_left_out_and_counted() -> None:
    encoded = ENCODER.encode([Reading("n", "noise", "laeq", math.inf, "dB(A)", Quality.OVER_RANGE, T0, 1)])
    assert encoded.nonfinite == 1 and encoded.written == 1
    assert "value" not in parse(encoded.lines[0])[2]


def aggregate(value: float | None, count: int) -> Aggregate:
    return Aggregate("dust-1", "dust", "pm10_1h_mean", "pm10", "mean", "1h", T0, T0 + 3600, value, "ug/m3", count,
                     3600, count >= 2700, Quality.NORMAL if count >= 2700 else Quality.COMMUNICATION_FAILURE)


def test_a_revised_aggregate_has_the_identity_of_the_first_and_its_revision_as_a_field() -> None:
    first = parse(ENCODER.line(aggregate(40.0, 2000)) or "")
    assert first[0] == "aggregate"
    assert dict(first[1])["window"] == "1h" and dict(first[1])["statistic"] == "mean"
    assert first[2]["revision"] == 0 and first[2]["count"] == 2000 and first[2]["valid"] is False
    assert first[3] == 1_700_000_000_250_000_000  # the window's start

    revised = parse(ENCODER.line(dataclasses.replace(aggregate(42.0, 2800), revision=1)) or "")
    assert (revised[0], revised[1], revised[3]) == (first[0], first[1], first[3])  # same point
    assert revised[2]["revision"] == 1 and revised[2]["value"] == 42.0 and revised[2]["valid"] is True


def test_every_kind_of_record_has_its_measurement_and_spray_commands_are_skipped_and_counted() -> None:
    records = [
        AlarmEvent("crane_wind", "wind-1", "gust_3s", Severity.ALARM, EventState.RAISED, 9.4, 9.0, T0,
                   'gust 9.4 m/s >= 9.0 m/s "GB 55034"'),
        Actuation("dust-1", "spray_relay", True, T0, SprayMode.AUTO, "PM10 high", 160.0, 150.0, "ok", 1, T0 + 0.5),
        Outage("dust-1", "dust", T0, T0 + 30, "B: no reply", 30, closed=False),
        Gap("dust-1", "dust", T0, T0 + 900, 100, None, "reboot"),
        SprayCommand("dust-1", "spray_relay", True, T0, SprayMode.AUTO, "PM10 high", 160.0, 150.0),
    ]
    encoded = ENCODER.encode(records)
    assert (encoded.written, encoded.skipped) == (4, 1)
    alarm, actuation, outage, gap = (parse(text) for text in encoded.lines)
    assert alarm[0] == "alarm" and dict(alarm[1])["state"] == "raised" and dict(alarm[1])["severity"] == "alarm"
    assert alarm[2] == {"reason": 'gust 9.4 m/s >= 9.0 m/s "GB 55034"', "value": 9.4, "limit": 9.0}
    assert actuation[0] == "actuation" and actuation[2]["on"] is True and actuation[2]["result"] == "ok"
    assert actuation[3] == timestamp(T0 + 0.5, "ns")  # stamped with the write: each attempt is a point
    assert outage[0] == "outage" and outage[2]["closed"] is False and outage[2]["duration_s"] == 30.0
    assert gap[0] == "gap" and gap[2] == {"end_s": T0 + 900, "first_sequence": 100, "reason": "reboot"}


def test_a_node_name_with_a_backslash_is_an_error_naming_it() -> None:
    with pytest.raises(LineProtocolError, match=r"tag 'node' 'dust\\\\1' contains"):
        ENCODER.line(Reading("dust\\1", "dust", "pm10", 1.0, "ug/m3", Quality.NORMAL, T0, 1))


def test_site_and_precision_are_checked_when_the_encoder_is_made() -> None:
    with pytest.raises(LineProtocolError, match="site"):
        RecordEncoder("", "gw")
    with pytest.raises(LineProtocolError, match="precision"):
        RecordEncoder("s", "gw", "minutes")


NAME = st.text(st.characters(blacklist_characters="\\\n\r", blacklist_categories=("Cs",)), min_size=1, max_size=12)
FIELD = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
)


@settings(deadline=None)  # no per-example time limit: the suite runs on busy cores
@given(
    measurement=NAME.filter(lambda m: not m.startswith("#")),
    tags=st.dictionaries(NAME, NAME, max_size=5),
    fields=st.dictionaries(NAME, FIELD, min_size=1, max_size=5),
    stamp=st.integers(-(2**62), 2**62),
)
def test_every_encoded_line_parses_back_with_its_tags_sorted(
    measurement: str, tags: dict[str, str], fields: dict[str, Any], stamp: int
) -> None:
    text = line(measurement, tags, fields, stamp)
    got_measurement, got_tags, got_fields, got_stamp = parse(text)
    assert got_measurement == measurement
    assert got_tags == sorted(tags.items())
    expected = {k: v.replace("\n", " ").replace("\r", " ") if isinstance(v, str) else v for k, v in fields.items()}
    assert got_fields == expected
    assert all(type(got_fields[k]) is type(v) for k, v in expected.items())  # a field's type never changes
    assert got_stamp == stamp


@settings(deadline=None)
@given(
    value=st.one_of(st.none(), st.floats(), st.integers(-(10**6), 10**6).map(float)),
    quality=st.sampled_from(list(Quality)),
    seconds=st.floats(0, 4e9),
    sequence=st.integers(0, 2**32),
    node=NAME,
    precision=st.sampled_from(["ns", "us", "ms", "s"]),
)
def test_the_readings_fast_path_writes_what_the_general_encoder_writes(
    value: float | None, quality: Quality, seconds: float, sequence: int, node: str, precision: str
) -> None:
    reading = Reading(node, "dust", "pm10", value, "ug/m3", quality, seconds, sequence)
    encoder = RecordEncoder("site a", "gw", precision)
    fields: dict[str, Any] = {"quality": quality.value, "quality_code": QUALITY_CODES[quality], "seq": sequence}
    if value is not None and math.isfinite(value):
        fields["value"] = value
    tags = {"site": "site a", "gateway": "gw", "node": node, "kind": "dust", "channel": "pm10", "unit": "ug/m3"}
    assert encoder.line(reading) == line("reading", tags, fields, timestamp(seconds, precision))


def test_a_district_tags_every_kind_of_point_and_an_empty_one_is_left_out() -> None:
    encoder = RecordEncoder("zs-site 1", "gw-1", "ns", district="shiqi")
    r = Reading("dust-1", "dust", "pm10", 41.5, "ug/m3", Quality.NORMAL, T0, 7)
    assert encoder.line(r) == ("reading,channel=pm10,district=shiqi,gateway=gw-1,kind=dust,node=dust-1,"
                               "site=zs-site\\ 1,unit=ug/m3 quality=\"N\",quality_code=0i,seq=7i,value=41.5"
                               " 1700000000250000000")
    outage = Outage("dust-1", "dust", T0, T0 + 30, "B: no reply", 30, closed=False)
    assert dict(parse(encoder.line(outage) or "")[1])["district"] == "shiqi"
    assert "district" not in dict(parse(ENCODER.line(r) or "")[1])
    with pytest.raises(LineProtocolError, match="district"):
        RecordEncoder("s", "gw", district="a\\b")
