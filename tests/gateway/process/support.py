"""Small builders shared by the processing-stage tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gateway.model import Quality, Reading

CST = timezone(timedelta(hours=8))
# Local midnight at the start of 2024-06-03 (a Monday) in China Standard Time.
MIDNIGHT = datetime(2024, 6, 3, tzinfo=CST).timestamp()


def local(hour: int, minute: int = 0, second: float = 0.0, day: int = 0) -> float:
    """Epoch seconds of a local (+08:00) time on the test day."""
    return MIDNIGHT + day * 86400 + hour * 3600 + minute * 60 + second


def reading(
    channel: str,
    value: float | None,
    t: float,
    *,
    node: str = "n1",
    kind: str = "dust",
    unit: str = "",
    quality: Quality = Quality.NORMAL,
    sequence: int = 0,
) -> Reading:
    return Reading(node, kind, channel, value, unit, quality, t, sequence)
