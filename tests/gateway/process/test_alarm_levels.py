"""Alarm levels that depend on a node's limits alone are worked out once per node and limits (issue 13).

A changed limit (a threshold command, a reload) gives the alarms a new resolver: the next reading is
judged by the new levels, for that node only.
"""

from __future__ import annotations

from gateway.model import Quality, Reading
from gateway.process.alarms import AlarmEvent, AlarmSet, EventState, default_definitions
from gateway.process.limits import LimitsResolver
from tests.gateway.process.support import local


def gust(node: str, value: float, second: int) -> Reading:
    return Reading(node, "wind", "wind_gust_3s", value, "m/s", Quality.NORMAL, local(10, 0, second), second)


def crane(events: list[AlarmEvent]) -> list[tuple[str, str]]:
    return [(e.node, e.state) for e in events if e.alarm == "crane_wind"]


def test_a_changed_limit_reaches_the_next_reading() -> None:
    limits = LimitsResolver()
    alarms = AlarmSet(default_definitions(limits), limits)
    assert [d.name for d in alarms.definitions if d.timeless] == [
        "crane_wind", "dust", "formwork_tilt", "lifting_wind", "placing_boom_wind", "work_at_height_wind"]
    assert crane(alarms.feed(gust("top", 8.5, 1))) == []
    assert crane(alarms.feed(gust("low", 8.5, 1))) == []
    alarms.limits = alarms.limits.changed("wind.crane_gust", 8.0, "top")
    assert crane(alarms.feed(gust("top", 8.5, 2))) == [("top", EventState.RAISED)]
    assert crane(alarms.feed(gust("low", 8.5, 2))) == []  # the other node keeps 9.0
    alarms.limits = alarms.limits.changed("wind.crane_gust", 8.4)  # site-wide
    assert crane(alarms.feed(gust("low", 8.5, 3))) == [("low", EventState.RAISED)]
