"""Backfilled samples get the flags they would have had live (issue 8: same per-channel flags for history).

The spike filter judges a sample against the samples taken just before it. A backfill delivers samples minutes
after later live ones: judged against those, a level that changed in between made them "spikes".
"""

from __future__ import annotations

from gateway.model import Quality
from gateway.process.limits import LimitsResolver
from gateway.process.processors import HampelFilter, HumidityFlag
from tests.gateway.process.support import local, reading

EPISODE_STARTS = 330  # PM10 jumps from about 50 to about 400 ug/m3 at this sample


def level(i: int) -> float:
    return (50.0 if i < EPISODE_STARTS else 400.0) + (i % 3)


def flagged(order: list[int]) -> set[int]:
    hampel = HampelFilter(LimitsResolver())
    out = set()
    for i in order:
        (judged,) = hampel.process(reading("pm10", level(i), local(9) + i, sequence=i + 1))
        if judged.quality is not Quality.NORMAL:
            out.add(i)
    return out


def test_backfilled_samples_are_judged_against_their_own_neighbours_in_time() -> None:
    live = flagged(list(range(600)))
    assert live == set(range(EPISODE_STARTS, EPISODE_STARTS + 4))  # the step, until it fills half the window
    # Samples 300-359 missed live (the episode began during the outage), fetched from the ring at sample 400.
    missed = list(range(300, 360))
    order = [i for i in range(400) if i not in missed] + missed + list(range(400, 600))
    backfilled = flagged(order)
    assert not backfilled & set(range(300, EPISODE_STARTS)), "samples before the episode flagged as spikes"
    assert backfilled & set(missed) == live & set(missed)


def dry_values(order: list[int]) -> dict[int, float | None]:
    """pm10_dry of each sample when the samples arrive in `order` (PM before RH within a sample, as decoded)."""
    humid = HumidityFlag(LimitsResolver.from_config({"humidity": {"correction": True}}))
    out: dict[int, float | None] = {}
    for i in order:
        t = local(9) + i
        rh = 75.0 + i * 0.05  # humid and rising: every sample has its own correction
        for r in (reading("pm10", 100.0, t, sequence=i + 1), reading("humidity", rh, t, sequence=i + 1)):
            for made in humid.process(r):
                if made.channel == "pm10_dry":
                    out[i] = made.value
    return out


def test_backfilled_pm_is_corrected_with_the_humidity_of_its_own_time_not_the_newest_one() -> None:
    live = dry_values(list(range(400)))
    missed = list(range(200, 300))
    backfilled = dry_values([i for i in range(400) if i not in missed] + missed)
    assert all(live[i] is not None for i in missed)
    assert {i: backfilled[i] for i in missed} == {i: live[i] for i in missed}
    # (Sample 300, the first live one after the outage, arrives before the backfill: it is corrected with the
    # latest humidity the gateway has then, sample 199's, as documented: "the node's latest humidity".)
