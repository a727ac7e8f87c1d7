"""Late samples revise their closed windows; samples older than the revision horizon are counted and dropped."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import node as firmware_node
from gateway.model import Quality, Reading
from gateway.pipeline import AggregateStage, build_pipeline
from gateway.process.aggregate import Aggregate
from gateway.process.limits import (
    NODE_HISTORY_SAMPLES,
    REVISION_MARGIN_S,
    LimitsResolver,
    SiteLimits,
    default_revision_horizon_s,
    override,
)
from gateway.process.pm import PmAggregator
from tests.gateway.process.support import local, reading


def means(out: list[Aggregate]) -> list[Aggregate]:
    return [a for a in out if a.statistic == "mean"]


def test_the_default_horizon_is_the_nodes_history_depth_plus_a_margin() -> None:
    assert NODE_HISTORY_SAMPLES == firmware_node.HISTORY_CAPACITY
    assert default_revision_horizon_s(1.0) == NODE_HISTORY_SAMPLES + REVISION_MARGIN_S
    slow = LimitsResolver(override(SiteLimits(), {"sampling": {"interval_s": 10.0}}))
    assert PmAggregator(slow).horizon_s("n1") == 6000.0 + REVISION_MARGIN_S


def test_a_backfilled_minute_is_revised_once_per_batch_and_becomes_valid() -> None:
    # The case: 20 samples live, the node drops off, the other 40 come from its history.
    pm = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min",))
    for s in range(20):
        pm.feed(reading("pm10", 10.0, local(9, 0, s)))
    first = means(pm.feed(reading("pm10", 50.0, local(9, 1, 0))))  # the next minute's first live sample
    assert [(a.count, a.valid, a.revision) for a in first] == [(20, False, 0)]
    assert pm.flush() == []
    for s in range(20, 60):  # the backfill's batch
        assert pm.feed(reading("pm10", 40.0, local(9, 0, s))) == []
    revised = means(pm.flush())
    assert [(a.start, a.count, a.expected, a.valid, a.revision) for a in revised] == [(local(9), 60, 60, True, 1)]
    assert revised[0].value == (20 * 10.0 + 40 * 40.0) / 60
    assert pm.flush() == []  # one revision per batch, not one per sample
    assert (pm.late, pm.dropped, pm.late_by_node()) == (40, 0, {"n1": 40})
    # Another late sample: revision 2.
    pm.feed(reading("pm10", 40.0, local(9, 0, 59.5)))
    assert [a.revision for a in means(pm.flush())] == [2]


def test_a_window_the_node_was_silent_through_is_emitted_when_its_samples_arrive() -> None:
    pm = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min",))
    pm.feed(reading("pm10", 1.0, local(9, 0, 0)))
    pm.feed(reading("pm10", 3.0, local(9, 2, 0)))  # closes 9:00; 9:01 never opened
    pm.feed(reading("pm10", 2.0, local(9, 1, 30)))
    out = means(pm.flush())
    assert [(a.start, a.value, a.revision) for a in out] == [(local(9, 1), 2.0, 0)]


def test_samples_older_than_the_horizon_are_dropped_and_counted_per_node() -> None:
    pm = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min",))
    pm.revision_horizon_s = 120.0
    pm.feed(reading("pm10", 1.0, local(9, 0, 0), node="a"))
    pm.feed(reading("pm10", 1.0, local(9, 5, 0), node="a"))
    assert pm.feed(reading("pm10", 9.0, local(9, 0, 30), node="a")) == []
    assert pm.flush() == []
    assert pm.dropped_by_node() == {"a": 1} and pm.late == 0
    # Within the horizon: revised.
    pm.feed(reading("pm10", 9.0, local(9, 3, 30), node="a"))
    assert [a.start for a in means(pm.flush())] == [local(9, 3)]
    # advance() moves the horizon too, and forgets closed windows behind it.
    assert pm._set.revisable() > 0
    pm.advance(local(10))
    assert pm._set.revisable() == 0
    pm.feed(reading("pm10", 9.0, local(9, 5, 30), node="a"))
    assert pm.dropped_by_node() == {"a": 2}


def test_the_stage_emits_revisions_after_the_batch_and_alarms_ignore_them() -> None:
    pipeline = build_pipeline(LimitsResolver(), processors=(), revision_horizon_s=900.0)
    stage = pipeline.aggregation
    assert isinstance(stage, AggregateStage)
    assert all(a.revision_horizon_s == 900.0 for a in stage.windowed)
    live = [Reading("d", "dust", "pm10", 10.0, "ug/m3", Quality.NORMAL, local(9, 0, s), s)
            for s in range(30)]
    pipeline.feed(live, local(9, 0, 30))
    pipeline.tick(local(9, 1, 10))  # closes the minute with 30 of 60
    backfill = [Reading("d", "dust", "pm10", 10.0, "ug/m3", live[0].quality, local(9, 0, s), s) for s in range(30, 60)]
    out = pipeline.feed(backfill, local(9, 1, 20))
    revisions = [r for r in out if isinstance(r, Aggregate) and r.channel == "pm10_1min_mean"]
    assert [(a.count, a.valid, a.revision) for a in revisions] == [(60, True, 1)]
    assert out[: len(backfill)] == backfill  # the readings first, the revisions after the batch
    assert pipeline.window_counts() == {"late": {"d": 30}, "dropped": {}}


def test_dropped_readings_are_logged_per_node_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    pipeline = build_pipeline(LimitsResolver(), processors=(), alarms=[], revision_horizon_s=60.0)

    def pm10(t: float) -> Reading:
        return Reading("d", "dust", "pm10", 10.0, "ug/m3", Quality.NORMAL, t, 0)

    pipeline.feed([pm10(local(9, 0)), pm10(local(9, 5))], local(9, 5))
    with caplog.at_level(logging.INFO, logger="gateway.pipeline"):
        pipeline.feed([pm10(local(9, 0, 30))], local(9, 5, 1))  # 4.5 min old: too old
        pipeline.feed([pm10(local(9, 0, 31))], local(9, 5, 2))  # within the minute: counted, not logged
        pipeline.feed([pm10(local(9, 0, 32))], local(9, 6, 2))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "d: 1 readings older than the revision horizon dropped from aggregation (1 in all)",
        "d: 2 readings older than the revision horizon dropped from aggregation (3 in all)",
    ]
    assert pipeline.window_counts() == {"late": {}, "dropped": {"d": 3}}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=500.0, allow_nan=False), min_size=240, max_size=240),
    st.lists(st.integers(min_value=0, max_value=120), min_size=240, max_size=240),
    st.integers(min_value=1, max_value=30),
)
def test_the_highest_revisions_equal_the_windows_of_samples_in_order(
    values: list[float], delays: list[int], batch: int
) -> None:
    """Whatever the order samples arrive in (within the horizon), the last revision of each window is right."""
    samples = [reading("pm10", v, local(9, 0, i), unit="ug/m3") for i, v in enumerate(values)]
    in_order = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min", "2min"))
    truth = {(a.channel, a.start): a for r in samples for a in in_order.feed(r)}
    truth.update({(a.channel, a.start): a for a in in_order.advance(local(10))})

    shuffled = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min", "2min"))
    arrival = [r for _, _, r in sorted((i + d, i, r) for i, (r, d) in enumerate(zip(samples, delays, strict=True)))]
    latest: dict[tuple[str, float], Aggregate] = {}
    emitted: list[Aggregate] = []
    for k in range(0, len(arrival), batch):
        for r in arrival[k : k + batch]:
            emitted += shuffled.feed(r)
        emitted += shuffled.flush()
    emitted += shuffled.advance(local(10))
    for a in emitted:
        key = (a.channel, a.start)
        assert key not in latest or a.revision == latest[key].revision + 1  # revisions count up one by one
        latest[key] = a
    assert latest.keys() == truth.keys()
    for key, a in latest.items():
        t = truth[key]
        assert (a.count, a.expected, a.valid, a.quality, a.end) == (t.count, t.expected, t.valid, t.quality, t.end)
        assert a.value == pytest.approx(t.value, rel=1e-12, abs=1e-9)
    assert shuffled.dropped == 0
