"""Register words -> readings, through the register map. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from firmware import regmap
from gateway.model import Quality, Reading

KIND_BY_NAME = {name: kind for kind, name in regmap.KIND_NAMES.items()}


class DecodeError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Sample:
    """One decoded input-register block of a node."""

    diagnostics: dict[str, int]
    values: dict[str, float]
    units: dict[str, str]

    @property
    def sequence(self) -> int:
        return self.diagnostics["sample_seq"]

    @property
    def status(self) -> int:
        return self.diagnostics["sensor_status"]


def _value(words: Sequence[int], row: tuple[Any, ...]) -> float:
    address, fmt, scale = row[1], row[2], row[3]
    raw = regmap.decode_raw(regmap.words_to_raw(words, address, fmt), fmt)
    return raw / scale if scale != 1 else float(raw)


def decode_inputs(kind: str, words: Sequence[int]) -> Sample:
    """Decode a read of input registers 0 .. input_count(kind)-1."""
    code = KIND_BY_NAME[kind]
    expected = regmap.input_count(code)
    if len(words) != expected:
        raise DecodeError(f"{kind} node: expected {expected} input registers, got {len(words)}")
    diagnostics = {row[0]: int(_value(words, row)) for row in regmap.DIAGNOSTICS}
    if diagnostics["node_kind"] != code:
        reported = regmap.KIND_NAMES.get(diagnostics["node_kind"], str(diagnostics["node_kind"]))
        raise DecodeError(f"configured as a {kind} node, but the node reports kind {reported}")
    values = {row[0]: _value(words, row) for row in regmap.MEASUREMENTS[code]}
    units = {row[0]: row[4] for row in regmap.MEASUREMENTS[code]}
    return Sample(diagnostics, values, units)


def quality_of(status: int) -> Quality:
    """HJ 212 data flag for a sample's sensor status bits."""
    if status & (regmap.STATUS_ABSENT | regmap.STATUS_CHECKSUM) or not status & regmap.STATUS_OK:
        return Quality.DEVICE_FAULT
    if status & regmap.STATUS_RANGE:
        return Quality.OVER_RANGE
    return Quality.NORMAL


def to_readings(node: str, kind: str, sample: Sample, timestamp: float) -> list[Reading]:
    quality = quality_of(sample.status)
    # A faulty sample's registers hold nothing trustworthy: no value, flag D.
    keep_values = quality is not Quality.DEVICE_FAULT
    return [
        Reading(
            node=node,
            kind=kind,
            channel=name,
            value=value if keep_values else None,
            unit=sample.units[name],
            quality=quality,
            timestamp=timestamp,
            sequence=sample.sequence,
        )
        for name, value in sample.values.items()
    ]


def missing_readings(
    node: str, kind: str, timestamp: float, quality: Quality = Quality.COMMUNICATION_FAILURE
) -> list[Reading]:
    """Readings for a poll that gave no sample: no value, flag B (no answer) or D (the node reported a fault).

    Never the last good value again: a gap must look like a gap downstream.
    """
    code = KIND_BY_NAME[kind]
    return [Reading(node, kind, row[0], None, row[4], quality, timestamp, 0) for row in regmap.MEASUREMENTS[code]]
