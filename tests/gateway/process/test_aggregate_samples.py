"""A poll goes to each aggregator as one sample (issue 13, third pass), with the same outcome.

`AggregateStage` hands the readings of one node sample to each aggregator at once (observed and
routed once per sample, not per reading). These tests run random polls (several nodes, late and
too-old samples, failed reads, day / night changes, repeated channels in a poll, ticks) through a
stage that does so and one that goes reading by reading, and compare every record and the late /
dropped counts.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.deliver.records import Record
from gateway.model import Quality, Reading
from gateway.pipeline import AggregateStage
from gateway.process import create_aggregator
from gateway.process.limits import LimitsResolver
from tests.gateway.process.support import local

KINDS = {
    "dust": ("pm25", "pm10", "pm1", "humidity"),
    "noise": ("laeq_1s", "lamax_1s", "lamin_1s"),
    "wind": ("wind_speed", "wind_dir", "wind_gust_3s"),
    "tilt": ("slope_x", "slope_y", "pitch"),
}
steps = st.lists(
    st.one_of(
        st.tuples(st.just("poll"), st.sampled_from(sorted(KINDS)),
                  st.sampled_from([1.0, 1.0, 1.0, 0.25, 7.0, 61.0, 700.0, -5.0, -90.0, -4000.0]),
                  st.lists(st.integers(0, 3), min_size=1, max_size=6),
                  st.sampled_from([Quality.NORMAL] * 3 + [Quality.COMMUNICATION_FAILURE, Quality.OVER_RANGE]),
                  st.floats(0.0, 90.0)),
        st.tuples(st.just("tick"), st.sampled_from([0.0, 30.0, 900.0])),
    ),
    max_size=80,
)
starts = st.sampled_from([local(5, 59), local(21, 58), local(10), local(23, 59, 50)])


def stage(by_sample: bool, weighting: str = "unit") -> AggregateStage:
    limits = LimitsResolver()
    made = AggregateStage([create_aggregator(name, limits, {"weighting": weighting} if name == "wind" else {})
                           for name in ("pm", "noise", "wind", "tilt")])
    assert made._by_sample
    made._by_sample = by_sample
    return made


def run(aggregation: AggregateStage, start: float, plan: list[tuple[object, ...]]) -> list[list[str]]:
    out: list[list[Record]] = []
    t = {kind: start + i / 4 for i, kind in enumerate(KINDS)}
    newest = start
    for sequence, step in enumerate(plan, start=1):
        if step[0] == "poll":
            _, kind, dt, channels, quality, level = step
            assert isinstance(kind, str) and isinstance(dt, float) and isinstance(channels, list)
            assert isinstance(quality, Quality) and isinstance(level, float)
            t[kind] += dt
            newest = max(newest, t[kind])
            value = None if quality is Quality.COMMUNICATION_FAILURE else level + sequence % 5
            poll: list[Record] = [
                Reading(f"{kind}-1", kind, KINDS[kind][c % len(KINDS[kind])], value, "", quality, t[kind], sequence)
                for c in channels
            ]
            out.append(aggregation(poll, newest))
        else:
            delay = step[1]
            assert isinstance(delay, float)
            out.append(aggregation.tick(newest - delay))
    return [[repr(r) for r in records] for records in out]  # repr: NaN values compare equal


@settings(max_examples=120, deadline=None)
@given(steps, starts)
def test_polls_fed_as_samples_make_what_readings_fed_one_by_one_make(plan: list[tuple[object, ...]],
                                                                     start: float) -> None:
    by_sample, by_reading = stage(True), stage(False)
    assert run(by_sample, start, plan) == run(by_reading, start, plan)
    assert by_sample.counts() == by_reading.counts()


@settings(max_examples=60, deadline=None)
@given(steps, starts)
def test_speed_weighted_wind_fed_as_samples_makes_what_readings_fed_one_by_one_make(
    plan: list[tuple[object, ...]], start: float
) -> None:
    """The wind's directions weighted by speed (calm ones, failed speeds, directions before their speeds)
    through its own per-sample path (issue 13, fifth pass) and reading by reading."""
    by_sample, by_reading = stage(True, "speed"), stage(False, "speed")
    assert run(by_sample, start, plan) == run(by_reading, start, plan)
    assert by_sample.counts() == by_reading.counts()


def test_a_late_poll_counts_each_of_its_readings() -> None:
    """Late and dropped count readings, as they did before a poll was routed once."""
    for by_sample in (True, False):
        aggregation = stage(by_sample)
        t = local(10)
        poll: list[Record] = [Reading("dust-1", "dust", c, 10.0, "", Quality.NORMAL, t, 1) for c in ("pm25", "pm10")]
        aggregation(poll, t)
        aggregation.tick(t + 120.0)  # the 1-min window closes
        late: list[Record] = [Reading("dust-1", "dust", c, 12.0, "", Quality.NORMAL, t + 1, 2)
                              for c in ("pm25", "pm10", "pm1")]
        out = aggregation(late, t + 121.0)
        assert aggregation.counts()["late"] == {"dust-1": 3}
        assert any(getattr(r, "revision", 0) == 1 for r in out)


@settings(max_examples=80, deadline=None)
@example([(["wind_speed", "pm10", "wind_dir"], dt, 1) for dt in (1.0, 1.0, 0.5, 1.5, 0.5, 0.5, 1.0)])
@given(st.lists(st.tuples(st.permutations(["wind_speed", "pm10", "wind_dir", "wind_gust_3s"]).map(lambda c: c[:3]),
                          st.sampled_from([0.5, 1.0, 1.0, 1.5]), st.sampled_from([1, 1, 1, 2])), min_size=1,
                max_size=40))
def test_a_sample_shared_by_two_aggregators_in_any_channel_order(polls: list[tuple[list[str], float, int]]) -> None:
    """One node's sample feeding two aggregators: the wind's gust is formed before or after the sample is
    measured exactly as reading by reading (a lower aggregator taking a later reading must not measure it first).
    Irregular times and sequence steps make the node's measured interval change with every sample.
    """
    limits = LimitsResolver()

    def make(by_sample: bool) -> AggregateStage:
        made = AggregateStage([create_aggregator("pm", limits, {"channels": ["pm10"], "windows": ["1min"]}),
                               create_aggregator("wind", limits, {"windows": ["1min"]})])
        made._by_sample = by_sample
        return made

    by_sample, by_reading = make(True), make(False)
    outs: list[list[str]] = [[], []]
    t, sequence = local(10), 0
    for order, dt, step in polls:
        t += dt
        sequence += step
        value = 5.0 + (sequence * 7919) % 97 / 7
        poll: list[Record] = [Reading("site-1", "mast", c, value, "", Quality.NORMAL, t, sequence) for c in order]
        for out, aggregation in zip(outs, (by_sample, by_reading), strict=True):
            out += [repr(r) for r in aggregation(poll, t)]
    for out, aggregation in zip(outs, (by_sample, by_reading), strict=True):
        out += [repr(r) for r in aggregation.tick(t + 120.0)]
    assert outs[0] == outs[1]


@settings(max_examples=40, deadline=None)
@given(steps, starts)
def test_sample_plans_forgotten_at_every_poll_change_nothing(plan: list[tuple[object, ...]], start: float) -> None:
    """The plan of a sample's channels is kept (issue 13, fourth pass); with room for one only, polls of
    other channel lists in between make it again, with the same outcome."""
    import gateway.pipeline as pipeline_module

    kept = pipeline_module.SAMPLE_PLANS_KEPT
    pipeline_module.SAMPLE_PLANS_KEPT = 1
    try:
        forgetful, by_reading = stage(True), stage(False)
        assert run(forgetful, start, plan) == run(by_reading, start, plan)
        assert len(forgetful._sample_plans) <= 1
    finally:
        pipeline_module.SAMPLE_PLANS_KEPT = kept
