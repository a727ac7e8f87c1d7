"""Bodies written a batch at a time (`to_json_many`, the queue's append) and reading values written from
records.py's cache of value texts (issue 13, fourth pass): byte for byte the documented JSON.

Values recur (the cache's hits), zeros of both signs follow each other (one dict key, two spellings),
and the cache fills and starts again; every body is compared with json.dumps through
tests/gateway/deliver/test_record_bodies.py's independent spelling.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.deliver import records
from gateway.deliver.records import to_json, to_json_many
from gateway.model import Quality, Reading
from gateway.process.aggregate import Aggregate
from tests.gateway.deliver.test_record_bodies import aggregate_body, aggregates, reading_body, readings

# Values that compare equal but are written apart, and values that repeat: what a cache by value can get wrong.
values = st.sampled_from([0.0, -0.0, 1.0, 1, True, 0, 2.5, -2.5, 1e16, 1e-7, float("nan"), float("inf"), None]) | (
    st.floats(allow_nan=False, allow_infinity=False)
)


def body(record: Reading | Aggregate) -> str:
    return reading_body(record) if isinstance(record, Reading) else aggregate_body(record)


@given(st.lists(values, max_size=30))
def test_repeated_and_signed_zero_values_are_written_as_the_documented_json(plan: list[float | None]) -> None:
    for i, value in enumerate(plan):
        reading = Reading("n1", "dust", "pm10", value, "ug/m3", Quality.NORMAL, 1790000000.5, i)
        assert to_json(reading) == reading_body(reading)


def test_zero_after_negative_zero_and_back() -> None:
    for value in (0.0, -0.0, 0.0, -0.0, 1.0, -0.0):
        reading = Reading("n1", "dust", "pm10", value, "", Quality.NORMAL, 1790000000.5, 3)
        assert f'"value":{value!r},' in to_json(reading)


def test_the_value_cache_starts_again_when_full_and_stays_right() -> None:
    limit = records._VALUE_CACHE_LIMIT
    for i in range(limit + 10):
        value = 0.1 * (i + 1)
        reading = Reading("n1", "dust", "pm10", value, "", Quality.NORMAL, 1790000000.5, 1)
        assert to_json(reading) == reading_body(reading)
        assert len(records._value_texts) <= limit
    assert 0 < len(records._value_texts) <= limit  # it was emptied once, and kept filling


@given(st.lists(readings | aggregates, max_size=20))
def test_a_batch_gives_each_record_its_own_body_in_order(batch: list[Reading | Aggregate]) -> None:
    assert to_json_many(batch) == [body(r) for r in batch]
    assert to_json_many(batch) == [to_json(r) for r in batch]


# Batches whose readings share what a poll shares (node, kind, time, sequence) and sometimes differ in one
# field only: the unit or the flag of a channel, a timestamp of the other sign, a sequence that is a bool.
pooled_readings = st.builds(
    Reading,
    st.sampled_from(["dust-1", "dust-2", 'n "q"']),
    st.sampled_from(["dust", "wind"]),
    st.sampled_from(["pm10", "pm25", "hum\u00e9"]),
    values,
    st.sampled_from(["ug/m3", "%", ""]),
    st.sampled_from([Quality.NORMAL, Quality.OVER_RANGE, Quality.DEVICE_FAULT]),
    st.sampled_from([0.0, -0.0, 1790000000.25, 1790000001.0, 7]),  # (a NaN time is refused by to_json)
    st.sampled_from([0, 1, True, 2**40]),
)


@given(st.lists(pooled_readings | aggregates, max_size=30))
def test_a_batch_of_polls_sharing_fields_is_written_as_the_documented_json(batch: list[Reading | Aggregate]) -> None:
    assert to_json_many(batch) == [body(r) for r in batch]


def test_the_batch_tables_stay_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(records, "_PREFIX_CACHE_LIMIT", 4)
    batch = [Reading(f"node-{i % 9}", "dust", f"c{i}", 1.5, "", Quality.NORMAL, 1.5, 1) for i in range(60)]
    assert to_json_many(batch) == [body(r) for r in batch]
    assert len(records._series_tables) <= 4
    assert all(len(table) <= 4 for table in records._series_tables.values())
