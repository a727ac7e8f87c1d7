"""The day's summary from hand-made records: every number against a value worked out by hand."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import date

import pytest

from gateway.deliver.records import Outage
from gateway.model import Gap, Quality, Reading
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.process.limits import LimitsResolver
from gateway.report.summary import (
    DayRecords,
    alarm_episodes,
    day_bounds,
    measured_interval,
    silences,
    summarize,
)

DAY = date(2025, 9, 23)
START, END = day_bounds(DAY, 8 * 3600)  # local midnight, +08:00
LIMITS = LimitsResolver()


def minute_readings(
    node: str,
    kind: str,
    channel: str,
    value_at: Callable[[int], float | None],
    unit: str = "",
    skip: Callable[[int], bool] = lambda m: False,
) -> list[Reading]:
    """One reading a minute through the day; value_at(minute) gives its value (None: no reading)."""
    out = []
    for m in range(1440):
        value = value_at(m)
        if value is None or skip(m):
            continue
        out.append(Reading(node, kind, channel, float(value), unit, Quality.NORMAL, START + 60.0 * m + 1.0, m + 1))
    return out


def test_day_bounds_are_local_midnights() -> None:
    assert START == 1758556800.0  # 2025-09-22T16:00:00Z is 2025-09-23 00:00 at +08:00
    assert END - START == 86400.0


def test_pm_day_mean_hourly_means_exceedances_and_validity() -> None:
    pm10 = minute_readings("dust-1", "dust", "pm10", lambda m: 200 if m // 60 == 10 else 100,
                           skip=lambda m: m // 60 == 5 and m % 60 >= 30)  # half of 05:00-06:00 missing
    pm25 = minute_readings("dust-1", "dust", "pm25", lambda m: 40)
    humidity = minute_readings("dust-1", "dust", "humidity", lambda m: 80 if m < 90 else 60)
    # A sample flagged D never enters a mean.
    bad = Reading("dust-1", "dust", "pm10", 999.0, "ug/m3", Quality.DEVICE_FAULT, START + 11 * 3600 + 30.5, 5000)
    summary = summarize("s", DAY, DayRecords([*pm10, *pm25, *humidity, bad]), LIMITS)
    (node,) = summary.dust
    assert node.pm10_day.count == 1410 and node.pm10_day.expected == 1440 and node.pm10_day.valid
    assert node.pm10_day.value == pytest.approx((1350 * 100 + 60 * 200) / 1410)
    assert node.pm25_day.value == pytest.approx(40.0)
    hours = {round((b.start - START) / 3600): b for b in node.pm10_hours}
    assert len(hours) == 24
    assert hours[5].count == 30 and not hours[5].valid  # 30 of 60 expected: below 75 %
    assert hours[10].value == 200.0 and hours[10].valid
    assert [round((b.start - START) / 3600) for b in node.exceedances] == [10]  # 200 > 150; 100 is not
    assert node.humid_samples == 90


def test_noise_day_and_night_by_energy_with_evaluation_periods() -> None:
    def level(m: int) -> float:
        if 6 * 60 <= m < 22 * 60:
            return 60.0
        return 70.0 if 23 * 60 <= m < 23 * 60 + 20 else 50.0

    laeq = minute_readings("noise-1", "noise", "laeq_1s", level)
    lamax = minute_readings("noise-1", "noise", "lamax_1s", lambda m: 90.0 if m == 23 * 60 + 5 else level(m) + 5)
    summary = summarize("s", DAY, DayRecords([*laeq, *lamax]), LIMITS)
    (node,) = summary.noise
    assert node.day.leq == pytest.approx(60.0) and not node.day.over
    night = [level(m) for m in range(1440) if not 6 * 60 <= m < 22 * 60]
    expected = 10 * math.log10(sum(10 ** (v / 10) for v in night) / len(night))
    assert node.night.leq == pytest.approx(expected)
    assert expected != pytest.approx(sum(night) / len(night))  # energy, not the arithmetic mean of dB
    assert node.night.over  # above 55
    assert node.night.periods_over == 1 and node.day.periods_over == 0
    assert node.night.lmax == 90.0 and node.night.lmax_time == START + (23 * 60 + 5) * 60 + 1
    assert node.night.lmax_over  # 90 > 55 + 15
    assert node.day.count == 960 and node.night.count == 480 and node.night.expected == 480
    assert node.night.l90 == 50.0 and node.night.l10 == 50.0  # 20 of 480 minutes at 70 dB: 4 %, below L10's 10 %
    assert len(node.periods) == 72
    peaks = {round((p.start - START) / 60): p.peak for p in node.periods}
    assert peaks[23 * 60] == 90.0 and peaks[22 * 60] == 55.0 and peaks[12 * 60] == 65.0  # each period's Lmax


def test_wind_mean_direction_gusts_and_crane_stop_periods() -> None:
    def g(m: int) -> float:
        return 12.5 if m == 615 else (10.0 if 600 <= m < 630 else 5.0)

    speeds = minute_readings("wind-1", "wind", "wind_speed", lambda m: 4.0)
    gusts = minute_readings("wind-1", "wind", "wind_gust_3s", g)
    dirs = minute_readings("wind-1", "wind", "wind_dir", lambda m: 350.0 if m % 2 else 10.0)
    summary = summarize("s", DAY, DayRecords([*speeds, *gusts, *dirs]), LIMITS)
    (node,) = summary.wind
    assert node.mean.value == pytest.approx(4.0)
    assert node.direction == pytest.approx(0.0, abs=1e-9) or node.direction == pytest.approx(360.0)
    assert node.gust == 12.5 and node.gust_time == START + 615 * 60 + 1
    (crane,) = node.crane_stops
    assert crane.start == START + 600 * 60 + 1
    # Below 9 - 1 m/s from minute 630 on; cleared once that lasted the 600-s hold: minute 640.
    assert crane.end == START + 640 * 60 + 1
    assert crane.peak == 12.5
    (lifting,) = node.lifting_stops
    # 10 m/s from minute 616 is below 12 - 1: cleared after the hold, at minute 626, while the crane stop goes on.
    assert lifting.start == START + 615 * 60 + 1 and lifting.end == START + 626 * 60 + 1
    assert len(node.bins) == 144 and all(b.valid for b in node.bins)
    peaks = {round((b.start - START) / 60): b.peak for b in node.bins}
    assert peaks[610] == 12.5 and peaks[600] == 10.0 and peaks[630] == 5.0  # the 10-min gusts the chart draws


def test_a_crane_stop_going_on_at_midnight_starts_before_the_day() -> None:
    before = [Reading("w", "wind", "wind_gust_3s", 11.0, "m/s", Quality.NORMAL, START - 300.0 + 60 * i, i + 1)
              for i in range(5)]
    after = minute_readings("w", "wind", "wind_gust_3s", lambda m: 11.0 if m < 30 else 3.0)
    (node,) = summarize("s", DAY, DayRecords([*before, *after]), LIMITS).wind
    (stop,) = node.crane_stops
    assert stop.start == START - 300.0 and stop.end == START + 40 * 60 + 1


def test_tilt_combined_slope_peak_and_time_over_levels() -> None:
    xs = minute_readings("tilt-1", "tilt", "slope_x", lambda m: 3.0 if 100 <= m < 110 else 0.5)
    ys = minute_readings("tilt-1", "tilt", "slope_y", lambda m: 4.0 if 100 <= m < 105 else 0.5)
    (node,) = summarize("s", DAY, DayRecords([*xs, *ys]), LIMITS).tilt
    assert node.peak == pytest.approx(5.0) and node.peak_time == START + 100 * 60 + 1
    assert node.peak_x == 3.0 and node.peak_y == 4.0
    # combined >= 3.2: minutes 100-109 (5.0 then 3.04); >= 4.0: minutes 100-104.
    assert node.seconds_over_prewarning == 0.0 + 5 * 60 and node.seconds_over_alarm == 5 * 60
    assert math.hypot(3.0, 0.5) < 3.2


def test_a_kind_without_a_section_of_its_own_gets_its_channels_daily_means() -> None:
    """A kind the report has no maths for (one added as a profile, or not installed where the report runs):
    each channel's daily mean with its validity, lowest and highest; the shipped kinds' sections stay theirs."""
    level = minute_readings("pit-1", "water_level", "level", lambda m: 1.0 + (m % 2), unit="m",
                            skip=lambda m: m >= 1080)  # the last 6 hours missing: 75 % of the day
    depth = minute_readings("pit-1", "water_level", "depth", lambda m: 7.0, unit="m", skip=lambda m: m >= 720)
    pm10 = minute_readings("dust-1", "dust", "pm10", lambda m: 100)
    summary = summarize("s", DAY, DayRecords([*level, *depth, *pm10]), LIMITS)
    assert [n.node for n in summary.dust] == ["dust-1"]
    (node,) = summary.kinds
    assert (node.node, node.kind) == ("pit-1", "water_level")
    by_channel = {c.channel: c for c in node.channels}
    assert by_channel["level"].unit == "m" and by_channel["level"].mean.value == pytest.approx(1.5)
    assert (by_channel["level"].low, by_channel["level"].high) == (1.0, 2.0)
    assert by_channel["level"].mean.count == 1080 and by_channel["level"].mean.valid
    assert by_channel["depth"].mean.count == 720 and not by_channel["depth"].mean.valid  # half the day: < 75 %


def test_alarm_episodes_pair_raise_and_clear_across_midnight() -> None:
    def event(alarm: str, state: EventState, t: float, severity: Severity = Severity.ALARM) -> AlarmEvent:
        return AlarmEvent(alarm, "n", "c", severity, state, 1.0, 0.5, t, "why")

    events = [
        event("a", EventState.RAISED, START - 3600),
        event("a", EventState.CLEARED, START + 3600),
        event("b", EventState.RAISED, START - 7200),
        event("b", EventState.CLEARED, START - 3600),  # over before the day: not in the report
        event("c", EventState.RAISED, START + 7200),  # still active at the end
        event("d", EventState.CLEARED, START + 60),  # raised before anything the report read
        event("e", EventState.RAISED, END + 10),  # the next day
    ]
    episodes = alarm_episodes(events, START, END)
    assert [(e.alarm, e.start, e.end) for e in episodes] == [
        ("d", None, START + 60),
        ("a", START - 3600, START + 3600),
        ("c", START + 7200, None),
    ]


def test_completeness_counts_samples_and_lists_silences_outages_and_gaps() -> None:
    readings = minute_readings("dust-1", "dust", "pm10", lambda m: 50, skip=lambda m: 120 <= m < 150 or m >= 1380)
    outage = Outage("dust-1", "dust", START + 119 * 60 + 1, START + 150 * 60 + 1, "B: timeout", 30)
    gap = Gap("dust-1", "dust", START + 119 * 60 + 1, START + 150 * 60 + 1, 121, 150, "overwritten")
    gateway = Outage("gateway", "gateway", START + 1380 * 60, END + 600, "gateway not running", 0, closed=True)
    summary = summarize("s", DAY, DayRecords(readings, (), [outage, gateway], [gap]), LIMITS)
    (c,) = summary.completeness
    assert c.interval_s == 60.0 and c.expected == 1440 and c.received == 1440 - 30 - 60 and c.valid == c.received
    assert [(p.start, p.end) for p in c.silences] == [
        (START + 119 * 60 + 1, START + 150 * 60 + 1),
        (START + 1379 * 60 + 1, END),
    ]
    assert [p.label for p in c.outages] == ["B: timeout"]
    assert c.gaps[0].label == "30 samples lost (overwritten)"
    assert [(p.start, p.end) for p in summary.gateway_outages] == [(START + 1380 * 60, END)]  # clipped to the day


def test_measured_interval_ignores_reboots_and_lost_samples() -> None:
    samples = [(1, 0.0), (2, 10.0), (5, 40.0), (1, 100.0), (2, 110.0)]  # a gap of two, then a reboot
    assert measured_interval(samples, 1.0) == 10.0
    assert measured_interval([], 7.0) == 7.0
    jittered = [(i, 60.0 * i + (0.9 if i % 2 else -0.7)) for i in range(1, 30)]
    assert measured_interval(jittered, 60.0) == 60.0  # within 1 %: the configured interval
    assert measured_interval(jittered, 1.0) == pytest.approx(60.0, abs=0.1)  # the node's own, not the default


def test_silences_include_the_edges_of_the_day() -> None:
    assert [(p.start, p.end) for p in silences([], 0.0, 1000.0, 10.0)] == [(0.0, 1000.0)]
    assert silences([float(t) for t in range(5, 1000, 10)], 0.0, 1000.0, 10.0) == ()


def test_the_channels_a_source_may_leave_out_change_nothing() -> None:
    """report_channels(): what the sources fetch of the known kinds. The summary of all channels is the same."""
    from gateway.report.summary import report_channels

    kinds = {"dust": ("pm25", "pm10", "pm1", "humidity", "temperature", "pressure"),
             "noise": ("laeq_1s", "lamax_1s", "lamin_1s"), "wind": ("wind_speed", "wind_dir", "wind_gust_3s"),
             "tilt": ("pitch", "roll", "slope_x", "slope_y", "temperature")}
    readings = [
        r
        for kind, channels in kinds.items()
        for i, channel in enumerate(channels)
        for r in minute_readings(f"{kind}-1", kind, channel, lambda m, i=i: 3.0 + (m * (i + 7)) % 13,
                                 skip=lambda m: 300 <= m < 400)
    ]
    whole = summarize("s", DAY, DayRecords(readings), LIMITS)
    kept = [r for r in readings if r.channel in report_channels()[r.kind]]
    assert len(kept) < len(readings)
    assert summarize("s", DAY, DayRecords(kept), LIMITS) == replace(whole, readings=len(kept))


def test_a_day_in_progress_counts_up_to_now_not_to_midnight() -> None:
    """Audit: a report of today (run at 17:00) listed "no sample 17:00-24:00" and 71 % completeness: the hours
    still to come counted as a silence. Up to `until`, the day is complete."""
    until = START + 17 * 3600
    readings = [r for r in minute_readings("dust-1", "dust", "pm10", lambda m: 50) if r.timestamp < until]
    summary = summarize("s", DAY, DayRecords(readings, (), [], []), LIMITS, until=until)
    (c,) = summary.completeness
    assert c.expected == 17 * 60 and c.received == 17 * 60 and c.silences == ()
    assert summary.until == until and summary.end == END  # the charts still span the whole day
    whole = summarize("s", DAY, DayRecords(readings, (), [], []), LIMITS)
    assert whole.until is None and whole.completeness[0].expected == 1440  # yesterday's report: as before
    late = summarize("s", DAY, DayRecords(readings, (), [], []), LIMITS, until=END + 3600)
    assert late.until is None and late.completeness[0].expected == 1440  # a day that is over is whole
