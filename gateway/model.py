"""The record that flows through the gateway's pipeline.

A Reading is created when a register block is decoded and stays the same
object until a sink confirms it: every stage takes readings and returns
readings (new ones, never mutated ones).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Quality(StrEnum):
    """Data flags of HJ 212-2017 (domain.md section 6)."""

    NORMAL = "N"
    STOPPED = "F"
    MAINTENANCE = "M"
    MANUAL = "S"
    DEVICE_FAULT = "D"
    CALIBRATION = "C"
    OVER_RANGE = "T"
    COMMUNICATION_FAILURE = "B"


@dataclass(frozen=True, slots=True)
class Reading:
    node: str  # configured node name, e.g. "dust-1"
    kind: str  # node kind from the register map: dust, noise, tilt, wind
    channel: str  # register name from the register map, e.g. "pm10"
    value: float | None  # None when it could not be read: never a repeat of the last good value
    unit: str
    quality: Quality
    timestamp: float  # seconds since the epoch, when the node took the sample
    sequence: int  # the node's sample sequence number (0 when unknown)

    def with_quality(self, quality: Quality) -> Reading:
        return replace(self, quality=quality)
