"""A restart rebuilds the spike filter's and the stuck check's memory from the queued readings.

Found by tests/integration/test_dust_episode_kill.py on a busy host: after a `kill -9` the new
gateway's Hampel windows were empty, so the first samples after the restart (here the step down
after an over-range episode) went unjudged, and the hour held two valid samples more than the
same samples gave without the kill. The queue holds the readings as processed: a value the filter
took in is N, or D with its value (a spike it flagged; the decoder's D readings carry no value).
"""

from __future__ import annotations

from gateway.model import Quality, Reading
from gateway.pipeline import Pipeline, build_pipeline
from gateway.process.limits import LimitsResolver
from tests.gateway.process.support import local

NODE = "dust-1"
T0 = local(9)


def pm10(i: int, value: float | None, quality: Quality = Quality.NORMAL) -> Reading:
    return Reading(NODE, "dust", "pm10", value, "ug/m3", quality, T0 + 60.0 * i, i + 1)


def judged(pipeline: Pipeline, reading: Reading) -> Quality:
    (out,) = [r for r in pipeline.feed([reading], reading.timestamp) if isinstance(r, Reading) and r.channel == "pm10"]
    return out.quality


def test_the_spike_filter_remembers_its_window_across_a_restart() -> None:
    history = [pm10(i, 100.0 + i % 3) for i in range(7)]
    undisturbed = build_pipeline(LimitsResolver())
    queued = [r for reading in history for r in undisturbed.feed([reading], reading.timestamp)]
    assert judged(undisturbed, pm10(7, 400.0)) is Quality.DEVICE_FAULT  # a spike against the last 7

    fresh = build_pipeline(LimitsResolver())  # what a restart had before: an empty window
    assert judged(fresh, pm10(7, 400.0)) is Quality.NORMAL

    restarted = build_pipeline(LimitsResolver())
    restarted.restore((r for r in queued if isinstance(r, Reading)), {}, T0, T0 + 420.0)
    assert judged(restarted, pm10(7, 400.0)) is Quality.DEVICE_FAULT


def test_the_spike_filters_window_takes_flagged_spikes_but_not_over_range_or_missing_values() -> None:
    queued = [pm10(i, 100.0) for i in range(4)] + [
        pm10(4, 900.0, Quality.DEVICE_FAULT),  # a spike it flagged: it was in the window
        pm10(5, None, Quality.DEVICE_FAULT),  # the node said the sensor failed: never in the window
        pm10(6, 1000.0, Quality.OVER_RANGE),  # T: never judged, never in the window
    ]
    restarted = build_pipeline(LimitsResolver())
    restarted.restore(iter(queued), {}, T0, T0 + 420.0)
    # The window now holds 100 x4 and 900: not full (7), so the next two values are taken in unjudged.
    assert judged(restarted, pm10(7, 100.0)) is Quality.NORMAL
    assert judged(restarted, pm10(8, 100.0)) is Quality.NORMAL
    assert judged(restarted, pm10(9, 400.0)) is Quality.DEVICE_FAULT  # full now: 100 x6, 900


def test_the_stuck_check_keeps_counting_a_run_across_a_restart() -> None:
    limits = LimitsResolver()
    stuck_s = limits.site.quality.stuck_s["pm10"]
    steps = int(stuck_s // 60)
    queued = [pm10(i, 77.0) for i in range(steps)]  # the same value for just under stuck_s
    restarted = build_pipeline(limits)
    restarted.restore(iter(queued), {}, T0, T0 + 60.0 * steps)
    assert judged(restarted, pm10(steps + 1, 77.0)) is Quality.DEVICE_FAULT
    fresh = build_pipeline(limits)
    assert judged(fresh, pm10(steps + 1, 77.0)) is Quality.NORMAL
