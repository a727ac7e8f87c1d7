"""Alarm events outlive the queue's retention: a restart must find the alarms that are still raised.

Audit: an alarm raised longer ago than `[queue] retention_days` (a formwork tilt alarm standing for a week)
was pruned with the readings. The next start did not resume it: the next reading raised it again (a second
notification, a new `since` that no acknowledgement on the page matches, "raised twice" in the report).
"""

from __future__ import annotations

from pathlib import Path

from gateway.deliver.queue import DurableQueue
from gateway.deliver.replay import QueueReplay
from gateway.model import Quality, Reading
from gateway.process.alarms import AlarmEvent, EventState, Severity

DAY = 86400.0
T0 = 1_790_000_000.0


class Wall:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def _alarm(t: float, state: EventState = EventState.RAISED) -> AlarmEvent:
    return AlarmEvent("formwork_tilt", "tilt-1", "slope_x", Severity.ALARM, state, 4.5, 4.0, t, "slope 4.5 >= 4")


def test_pruning_keeps_alarm_events_and_a_restart_resumes_the_raised_alarm(tmp_path: Path) -> None:
    wall = Wall()
    queue = DurableQueue(tmp_path / "q.sqlite3", ["sqlite"], wall=wall)
    try:
        reading = Reading("tilt-1", "tilt", "slope_x", 4.5, "permille", Quality.NORMAL, T0, 1)
        queue.append([reading, _alarm(T0), reading])
        wall.t += 10 * DAY
        queue.append([Reading("tilt-1", "tilt", "slope_x", 4.6, "permille", Quality.NORMAL, wall.t, 2)])
        queue.confirm("sqlite", queue.last_id())
        assert queue.prune(7 * DAY) == 2  # the two old readings; the alarm event stays
    finally:
        queue.close()
    replay = QueueReplay(tmp_path / "q.sqlite3")
    try:
        assert list(replay.alarm_events()) == [_alarm(T0)]
    finally:
        replay.close()
