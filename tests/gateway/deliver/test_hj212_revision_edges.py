"""Edge cases of revised windows in the HJ 212 uplink (issue 8: every sink applies a revision)."""

from __future__ import annotations

from gateway.deliver.hj212_session import Settings, Uplink
from gateway.model import Quality
from gateway.process.aggregate import Aggregate

MN = "88888880000001"
T0 = 1_704_427_200.0  # 2024-01-05 12:00:00 +08:00


def minute_mean(value: float | None, count: int, quality: Quality, revision: int) -> Aggregate:
    return Aggregate("dust-1", "dust", "pm10_1min_mean", "pm10", "mean", "1min", T0, T0 + 60, value, "ug/m3",
                     count, 60, quality in (Quality.NORMAL, Quality.OVER_RANGE), quality, revision)


def test_a_backlog_holding_a_window_and_its_revision_sends_the_revision_with_its_own_flag() -> None:
    # The uplink was down: the queue hands over the first emission (20 of 60 samples, invalid, B) and the
    # revision the backfill made (60 of 60, valid, N) in one batch. The platform must get the revision's
    # value *and* its flag, not the revised value under the first emission's B.
    up = Uplink(Settings(mn=MN))
    first = minute_mean(40.0, 20, Quality.COMMUNICATION_FAILURE, 0)
    revised = minute_mean(42.0, 60, Quality.NORMAL, 1)
    (packet,) = up.records([first, revised], T0 + 600)
    assert packet.cn == "2051"
    assert packet.factors()["a34002"] == {"Avg": "42.000", "Flag": "N"}


def test_a_lower_revision_after_a_higher_one_in_a_batch_does_not_win() -> None:
    up = Uplink(Settings(mn=MN))
    revised = minute_mean(42.0, 60, Quality.NORMAL, 1)
    stale = minute_mean(40.0, 20, Quality.COMMUNICATION_FAILURE, 0)
    (packet,) = up.records([revised, stale], T0 + 600)
    assert packet.factors()["a34002"] == {"Avg": "42.000", "Flag": "N"}
