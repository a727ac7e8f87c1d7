"""The records of the queue-body fixture (imported by the test, and run with an old tree to write the fixture)."""
from __future__ import annotations

import math

from gateway.deliver.records import Outage, Record
from gateway.model import Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, EventState, Severity

T0 = 1_790_000_000.25


def fixture_records() -> list[Record]:
    return [
        Reading("dust-1", "dust", "pm10", 81.5, "ug/m3", Quality.NORMAL, T0, 7),
        Reading("dust-1", "dust", "pm25", None, "ug/m3", Quality.COMMUNICATION_FAILURE, T0 + 1, 8),
        Reading("dust-1", "dust", "pm25", math.nan, "ug/m3", Quality.OVER_RANGE, T0 + 2, 9),
        Reading("tilt-2", "tilt", "slope_x", -math.inf, "permille", Quality.OVER_RANGE, T0 + 3, 10),
        Reading("wind-3", "wind", "wind_speed", 12, "m/s", Quality.NORMAL, 1_790_000_004.0, 11),
        Reading("noise-\"4\"", "noise", "laeq_1s", 1e-7, "dB(A)", Quality.DEVICE_FAULT, T0 + 5, 0),
        Reading("站点-5", "dust", "pm10", 1e16, "µg/m³", Quality.MAINTENANCE, T0 + 6, 2**40),
        Aggregate("dust-1", "dust", "pm10_15min_mean", "pm10", "mean", "15min", 1_790_000_100.0, 1_790_001_000.0,
                  80.25, "ug/m3", 900, 900, True, Quality.NORMAL),
        Aggregate("dust-1", "dust", "pm10_15min_count", "pm10", "count", "15min", 1_790_000_100.0, 1_790_001_000.0,
                  600.0, "", 600, 900, False, Quality.NORMAL, 2),
        Aggregate("wind-3", "wind", "wind_10min_dir_mean", "wind_dir", "dir_mean", "10min", 1_790_000_400.0,
                  1_790_001_000.0, None, "deg", 0, 600, False, Quality.COMMUNICATION_FAILURE, 1),
        AlarmEvent("crane_wind", "wind-3", "wind_speed", Severity.ALARM, EventState.RAISED, 20.5, 20.0, T0 + 7,
                   "wind_speed 20.5 m/s >= 20 m/s (GB 5144)"),
        Outage("dust-1", "dust", T0, T0 + 30.5, "B: timeout", 30),
    ]
