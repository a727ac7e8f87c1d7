"""The record that flows through the gateway's pipeline.

A Reading is created when a register block is decoded and stays the same
object until a sink confirms it: every stage takes readings and returns
readings (new ones, never mutated ones).
"""

from __future__ import annotations

from dataclasses import dataclass
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
        # The constructor, not dataclasses.replace (which inspects the fields on every call): processors
        # flag readings this way on the pipeline's path.
        return Reading(self.node, self.kind, self.channel, self.value, self.unit, quality, self.timestamp,
                       self.sequence)


@dataclass(frozen=True, slots=True)
class Gap:
    """Samples of a node that are lost for good: taken (or due) on the node, never to be delivered.

    Made by the acquisition (gateway/acquire/backfill.py) when a backfill
    cannot fetch them from the node's history ring:

    * reason "overwritten": the ring no longer held them (an outage longer
      than the ring);
    * "reboot": the node restarted before handing them over; last_sequence
      is None when how many it took is unknown (those after the last sample
      the gateway saw); the sequence numbers are the old boot's;
    * "unavailable": the node refused its history window.

    start: when the sample before the gap was taken (estimated from the
    sample interval when the gateway does not know it, e.g. after resuming
    from a store; equal to end when there is no estimate); end: when the
    sample after it was taken. Seconds since the epoch, like Reading.timestamp.
    """

    node: str
    kind: str
    start: float
    end: float
    first_sequence: int  # the first missing sample
    last_sequence: int | None  # the last missing sample (inclusive); None: unknown
    reason: str

    @property
    def missing(self) -> int | None:
        """How many samples are lost, if known."""
        return None if self.last_sequence is None else self.last_sequence - self.first_sequence + 1
