"""The wind aggregator's own per-sample path (issue 13, fifth pass) gives what `feed` reading by reading gives.

`WindAggregator._add_sample` works a reading's validity, a direction's exact unit-vector terms and the
node's calm speed out once for all the windows it goes to. Random samples of one node (channels in any
order, repeated or missing, calm and failed speeds, failed and over-range directions, late samples)
go through `feed_sample` and through `feed`, with unit and speed weighting, and every aggregate of
the windows they close must be the same (repr: NaN and -0.0 compare as written).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Quality, Reading
from gateway.process import create_aggregator
from gateway.process.aggregate import Aggregate, WindowedAggregator
from gateway.process.limits import LimitsResolver
from tests.gateway.process.support import local

CHANNELS = ("wind_speed", "wind_dir", "wind_gust_3s")
samples = st.lists(
    st.tuples(
        st.permutations(CHANNELS).flatmap(lambda c: st.integers(1, 3).map(lambda n: c[:n])),
        st.sampled_from([1.0, 1.0, 1.0, 1.0, 0.5, 3.0, -2.0]),  # time since the last sample (late ones too)
        st.sampled_from([0.0, 0.1, 0.2, 0.3, 0.5, 2.0, 7.5]),  # speeds around the calm speed (0.3 m/s)
        st.floats(0.0, 359.9),
        st.sampled_from([Quality.NORMAL] * 4 + [Quality.COMMUNICATION_FAILURE, Quality.OVER_RANGE]),
        st.booleans(),  # whether the speed is the failed reading (else the direction)
    ),
    min_size=40,  # windows of 1 and 2 min that close valid
    max_size=200,
)


def aggregator(weighting: str) -> WindowedAggregator[object]:
    made = create_aggregator("wind", LimitsResolver(), {"weighting": weighting, "windows": ["1min", "2min"]})
    assert isinstance(made, WindowedAggregator)
    return made


def run(weighting: str, by_sample: bool, plan: list[tuple[object, ...]]) -> list[str]:
    wind = aggregator(weighting)
    out: list[Aggregate] = []
    t = local(10, 0, 30.0)
    for sequence, (channels, dt, speed, direction, quality, speed_failed) in enumerate(plan, start=1):
        assert isinstance(channels, list) and isinstance(dt, float) and isinstance(quality, Quality)
        assert isinstance(speed, float) and isinstance(direction, float)
        t += dt
        values = {"wind_speed": speed, "wind_dir": direction, "wind_gust_3s": speed + 1.0}
        poll = []
        for channel in channels:
            failed = (channel == "wind_speed") == speed_failed
            flag = quality if failed else Quality.NORMAL
            value = None if flag is Quality.COMMUNICATION_FAILURE else values[channel]
            poll.append(Reading("wind-1", "wind", channel, value, "", flag, t, sequence))
        if by_sample:
            out += wind.feed_sample(poll)
        else:
            for r in poll:
                out += wind.feed(r)
        out += wind.advance(t - 5.0)
    out += wind.advance(t + 600.0)
    return [repr(a) for a in out]


@settings(max_examples=150, deadline=None)
@given(samples, st.sampled_from(["unit", "speed"]))
def test_wind_samples_fed_at_once_make_what_readings_fed_one_by_one_make(
    plan: list[tuple[object, ...]], weighting: str
) -> None:
    assert run(weighting, True, plan) == run(weighting, False, plan)
