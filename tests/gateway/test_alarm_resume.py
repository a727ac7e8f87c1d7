"""A restart takes up the alarms the last run left raised: they clear when the value falls, and are not raised twice.

Found by tests/integration/test_dust_episode_kill.py: after a `kill -9` the new gateway's alarm
machines started clear, so the dust alarm raised on the 08:00 hour was never cleared by the low
09:00 hour (a platform would show it raised for ever), and a high hour would have raised it again.
The raised / cleared events are in the durable queue; the start reads them back (QueueReplay.alarm_events)
and the alarm machines resume from the last event of each (alarm, node, channel).
"""

from __future__ import annotations

from pathlib import Path

from gateway.deliver.queue import DurableQueue
from gateway.deliver.replay import QueueReplay
from gateway.model import Quality, Reading
from gateway.pipeline import build_pipeline
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.process.limits import LimitsResolver
from tests.gateway.process.support import local

NODE = "dust-1"
H8, H9, H10 = local(8), local(9), local(10)


def hour_mean(start: float, value: float) -> Reading:
    return Reading(NODE, "dust", "pm10_1h_mean", value, "ug/m3", Quality.NORMAL, start, 0)


def dust_events(records: list[object]) -> list[tuple[EventState, float]]:
    return [(r.state, r.time) for r in records if isinstance(r, AlarmEvent) and r.alarm == "dust"]


def raised_at_eight() -> AlarmEvent:
    (event,) = [r for r in build_pipeline(LimitsResolver()).feed([hour_mean(H8, 400.0)], H9)
                if isinstance(r, AlarmEvent)]
    assert (event.state, event.severity, event.channel) == (EventState.RAISED, Severity.ALARM, "pm10_1h_mean")
    return event


def test_a_resumed_alarm_clears_when_the_value_falls_and_is_not_raised_again() -> None:
    raised = raised_at_eight()
    fresh = build_pipeline(LimitsResolver())  # what a restart had before: the alarm forgotten
    assert dust_events(fresh.feed([hour_mean(H9, 60.0)], H10)) == []
    resumed = build_pipeline(LimitsResolver())
    assert resumed.resume_alarms([raised]) == 1
    assert [(a.alarm, a.node, a.since) for a in resumed.alarms.active()] == [("dust", NODE, H8)]  # type: ignore[union-attr]
    assert dust_events(resumed.feed([hour_mean(H9, 400.0)], H10)) == []  # still raised: not raised twice
    assert dust_events(resumed.feed([hour_mean(H10, 60.0)], H10 + 3600)) == [(EventState.CLEARED, H10)]


def test_only_the_last_event_of_an_alarm_counts() -> None:
    raised = raised_at_eight()
    cleared = AlarmEvent(raised.alarm, raised.node, raised.channel, raised.severity, EventState.CLEARED, 60.0,
                         raised.limit, H9, "below")
    resumed = build_pipeline(LimitsResolver())
    assert resumed.resume_alarms([raised, cleared]) == 0
    assert resumed.alarms is not None and resumed.alarms.active() == []
    assert dust_events(resumed.feed([hour_mean(H10, 400.0)], H10 + 3600)) == [(EventState.RAISED, H10)]


def test_the_queue_gives_back_its_alarm_events_in_order(tmp_path: Path) -> None:
    raised = raised_at_eight()
    queue = DurableQueue(tmp_path / "queue.sqlite3", ["s"])
    try:
        queue.append([hour_mean(H8, 400.0), raised])
    finally:
        queue.close()
    replay = QueueReplay(tmp_path / "queue.sqlite3")
    try:
        assert list(replay.alarm_events()) == [raised]
    finally:
        replay.close()
