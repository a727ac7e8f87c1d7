"""A window's expected sample count follows the node's own sample interval, not a site-wide constant."""

from __future__ import annotations

import pytest

from gateway.deliver.records import Record
from gateway.model import Quality
from gateway.pipeline import SprayPlan, build_pipeline
from gateway.process.aggregate import Aggregate, SampleIntervals
from gateway.process.limits import LimitsResolver
from gateway.process.pm import PmAggregator
from gateway.process.spray import SprayCommand
from tests.gateway.process.support import local, reading

T0 = local(9, 0)


def pm10(value: float, t: float, seq: int, node: str = "dust-1") -> Record:
    return reading("pm10", value, t, node=node, kind="dust", unit="ug/m3", sequence=seq)


def test_a_node_sampling_every_2_s_makes_valid_windows_and_still_runs_the_spray() -> None:
    # The site's configured interval is the 1 s default; this node's sample_interval register says 2000 ms.
    pipeline = build_pipeline(LimitsResolver(), spray=SprayPlan())
    out: list[Record] = []
    for i in range(450):  # 15 min at one sample per 2 s
        t = T0 + 2 * i + 0.003 * (i % 3)  # a few ms of timing jitter, as acquisition gives
        out += pipeline.feed([pm10(400.0, t, 101 + i)], t)
    out += pipeline.tick(T0 + 900 + 10)
    (mean,) = [r for r in out if isinstance(r, Aggregate) and r.channel == "pm10_15min_mean"]
    assert (mean.count, mean.expected, mean.valid, mean.quality) == (450, 450, True, Quality.NORMAL)
    assert any(isinstance(c, SprayCommand) and c.on for c in out)


def test_the_interval_follows_each_node_and_its_changes() -> None:
    intervals = SampleIntervals()
    for i in range(20):
        intervals.observe("a", 1 + i, T0 + 5.0 * i)
        intervals.observe("b", 1 + i, T0 + 0.5 * i)
        intervals.observe("b", 1 + i, T0 + 0.5 * i)  # another channel of the same sample
    assert intervals.get("a") == pytest.approx(5.0)
    assert intervals.get("b") == pytest.approx(0.5)
    assert intervals.get("c") is None
    # Node a is set to 1 s; a few samples later the measured interval follows.
    for i in range(20, 40):
        intervals.observe("a", 1 + i, T0 + 100.0 + (i - 20))
    assert intervals.get("a") == pytest.approx(1.0)
    # A restart (sequence back to 1) is not a negative interval.
    intervals.observe("a", 1, T0 + 200.0)
    assert intervals.get("a") is None  # measured afresh
    intervals.observe("a", 2, T0 + 201.0)
    assert intervals.get("a") == pytest.approx(1.0)


def test_a_missed_stretch_of_samples_does_not_change_the_interval() -> None:
    intervals = SampleIntervals()
    for i in range(10):
        intervals.observe("a", 1 + i, T0 + 2.0 * i)
    intervals.observe("a", 100, T0 + 2.0 * 99)  # 89 samples lost for good
    assert intervals.get("a") == pytest.approx(2.0)


def test_until_the_node_is_measured_the_configured_interval_counts() -> None:
    limits = LimitsResolver.from_config({"sampling": {"interval_s": 10.0}})
    aggregator = PmAggregator(limits, channels=("pm10",), windows=("1min",))
    aggregator.feed(reading("pm10", 50.0, T0, sequence=0))  # no sequence: nothing to measure
    (mean,) = [a for a in aggregator.advance(T0 + 60) if a.channel == "pm10_1min_mean"]
    assert mean.expected == 6


def test_an_older_sample_fetched_late_does_not_disturb_the_measurement() -> None:
    intervals = SampleIntervals()
    for i in range(10):
        intervals.observe("a", 100 + i, T0 + 2.0 * i)
    intervals.observe("a", 50, T0 - 100.0)  # from the history ring, long after it was taken
    assert intervals.get("a") == pytest.approx(2.0)
    intervals.observe("a", 110, T0 + 20.0)
    assert intervals.get("a") == pytest.approx(2.0)
