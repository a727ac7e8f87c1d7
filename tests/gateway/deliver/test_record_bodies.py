"""The queue bodies of readings and aggregates: written directly (issue 13), byte for byte what the
documented format is (a flat JSON object of the fields, in field order, compact, NaN and infinities
spelt as strings), and read back as the same record.

The expected text is built here with json.dumps, independently of gateway/deliver/records.py, so a
difference in key order, escaping, number spelling or booleans fails.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.deliver import records
from gateway.deliver.queue import DurableQueue
from gateway.deliver.records import from_json, to_json
from gateway.model import Quality, Reading
from gateway.process.aggregate import Aggregate

texts = st.text(max_size=12)  # any text: quotes, backslashes, control characters, non-ASCII, surrogates aside
numbers = st.none() | st.floats() | st.integers(-(2**70), 2**70)
times = st.floats(allow_nan=False, allow_infinity=False) | st.integers(0, 2**40)
qualities = st.sampled_from(list(Quality))

readings = st.builds(Reading, texts, texts, texts, numbers, texts, qualities, times, st.integers(0, 2**64))
aggregates = st.builds(
    Aggregate, texts, texts, texts, texts, texts, texts, times, times, numbers, texts, st.integers(0, 2**40),
    st.integers(0, 2**40), st.booleans(), qualities, st.integers(0, 1000),
)


def spelt(value: Any) -> Any:
    """The body's number: JSON has no NaN or infinity, the body spells them as Python does."""
    return repr(value) if isinstance(value, float) and not math.isfinite(value) else value


def expected(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def reading_body(r: Reading) -> str:
    return expected({
        "node": r.node, "kind": r.kind, "channel": r.channel, "value": spelt(r.value), "unit": r.unit,
        "quality": r.quality.value, "ts": spelt(r.timestamp), "seq": r.sequence,
    })


def aggregate_body(a: Aggregate) -> str:
    return expected({
        "node": a.node, "kind": a.kind, "channel": a.channel, "source": a.source, "statistic": a.statistic,
        "window": a.window, "start": spelt(a.start), "end": spelt(a.end), "value": spelt(a.value), "unit": a.unit,
        "count": a.count, "expected": a.expected, "valid": a.valid, "quality": a.quality.value,
        "revision": a.revision,
    })


def same(back: float | None, sent: float | None) -> bool:
    """A body's value reads back as a float (an int value too: the record's field is a float)."""
    if sent is None or back is None:
        return back is sent
    return back == float(sent) or (math.isnan(back) and math.isnan(sent))


@given(readings)
def test_a_reading_body_is_the_documented_json(r: Reading) -> None:
    assert to_json(r) == reading_body(r)


@given(aggregates)
def test_an_aggregate_body_is_the_documented_json(a: Aggregate) -> None:
    assert to_json(a) == aggregate_body(a)


@given(readings)
def test_a_reading_body_reads_back_as_the_reading(r: Reading) -> None:
    back = from_json("reading", to_json(r))
    assert isinstance(back, Reading)
    assert (back.node, back.kind, back.channel, back.unit, back.quality, back.sequence) == (
        r.node, r.kind, r.channel, r.unit, r.quality, r.sequence
    )
    assert same(back.value, r.value) and back.timestamp == r.timestamp


@given(aggregates)
def test_an_aggregate_body_reads_back_as_the_aggregate(a: Aggregate) -> None:
    back = from_json("aggregate", to_json(a))
    assert isinstance(back, Aggregate)
    assert same(back.value, a.value)
    assert (back.node, back.channel, back.window, back.start, back.end, back.count, back.valid, back.quality,
            back.revision) == (a.node, a.channel, a.window, a.start, a.end, a.count, a.valid, a.quality, a.revision)


def test_ordinary_records_take_the_direct_path() -> None:
    """What the pipeline makes (floats, ints, flags) never needs the general encoder."""
    reading = Reading("dust-1", "dust", "pm10", 81.5, "ug/m3", Quality.NORMAL, 1_790_000_000.25, 7)
    aggregate = Aggregate("dust-1", "dust", "pm10_15min_mean", "pm10", "mean", "15min", 1_790_000_000.0,
                          1_790_000_900.0, None, "ug/m3", 0, 900, False, Quality.COMMUNICATION_FAILURE, 2)
    assert records._reading_json(reading) == reading_body(reading)
    assert records._aggregate_json(aggregate) == aggregate_body(aggregate)


def test_the_series_caches_stay_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(records, "_PREFIX_CACHE_LIMIT", 8)
    for i in range(50):
        r = Reading(f"node-{i}", "dust", "pm10", float(i), f"u{i}", Quality.NORMAL, 1.5 + i, i)
        assert to_json(r) == reading_body(r)
    assert len(records._reading_prefixes) <= 8 and len(records._reading_units) <= 8


def test_sqlite_reads_a_direct_body_as_json(tmp_path: Path) -> None:
    """The queue finds a node's newest sequence with SQLite's json_extract: the body must stay JSON to it."""
    queue = DurableQueue(tmp_path / "queue.sqlite3", ["store"])
    r = Reading('dust "1"', "dust", "pm10", 81.5, "ug/m3", Quality.NORMAL, 1_790_000_000.25, 41)
    queue.append([r])
    assert queue.latest_sequence('dust "1"') == 41
    queue.close()
    with sqlite3.connect(tmp_path / "queue.sqlite3") as db:
        (body,) = db.execute("SELECT body FROM records").fetchone()
    assert json.loads(body)["node"] == 'dust "1"'
