"""Bodies of a poll's readings, one after another (records.py keeps the last body's timestamp text, issue 13).

Each must still be exactly the documented JSON: readings sharing a timestamp and sequence, readings of
the next poll, and the timestamps that compare equal but are written apart (0.0 and -0.0).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.deliver.records import to_json
from gateway.model import Quality, Reading
from tests.gateway.deliver.test_record_bodies import reading_body

times = st.sampled_from([0.0, -0.0, 1790000000.4375, 1790000001.0, 5e-324]) | st.floats(allow_nan=False,
                                                                                     allow_infinity=False)
polls = st.lists(st.tuples(times, st.sampled_from([0, 1, 2, 2**40]), st.integers(1, 4)), max_size=12)


@given(polls)
def test_the_bodies_of_consecutive_polls_are_the_documented_json(plan: list[tuple[float, int, int]]) -> None:
    for t, sequence, size in plan:
        for channel in range(size):
            reading = Reading("n1", "dust", f"c{channel}", 1.5, "", Quality.NORMAL, t, sequence)
            assert to_json(reading) == reading_body(reading)


def test_zero_and_negative_zero_with_one_sequence_are_written_apart() -> None:
    for t in (0.0, -0.0, 0.0):
        reading = Reading("n1", "dust", "pm10", 1.5, "", Quality.NORMAL, t, 7)
        assert to_json(reading).endswith(f'"ts":{t!r},"seq":7}}')
