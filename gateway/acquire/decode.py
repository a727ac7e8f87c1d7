"""Register words -> readings, through the register map: the poll's input block and history records. Pure."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from firmware import regmap
from gateway.model import Quality, Reading
from gateway.profiles.kinds import kind_profiles

# name -> node_kind code; the register map's own table, so a kind added later (gateway/profiles/kinds.py) is known.
KIND_BY_NAME: dict[str, int] = regmap.KIND_CODES


class DecodeError(ValueError):
    pass


class KindMismatch(DecodeError):
    """The node's node_kind register names another kind than the configuration: a configuration fault."""

    def __init__(self, configured: str, reported: str) -> None:
        super().__init__(f"kind mismatch: configured as a {configured} node, but its node_kind register says "
                         f"{reported}: set kind = \"{reported}\" for it in [[bus.node]], or check its unit_id")
        self.configured = configured
        self.reported = reported


def kind_name(code: int) -> str:
    """A node_kind register value's name ("noise"), or the number for one this gateway does not know."""
    return str(regmap.KIND_NAMES.get(code, code))


@dataclass(frozen=True, slots=True)
class Sample:
    """One decoded input-register block of a node."""

    diagnostics: dict[str, int]
    values: dict[str, float]
    units: dict[str, str]
    quality: dict[str, Quality]  # per channel, from the status word (channel_qualities)

    @property
    def sequence(self) -> int:
        return self.diagnostics["sample_seq"]

    @property
    def status(self) -> int:
        return self.diagnostics["sensor_status"]


def _value_at(words: Sequence[int], row: tuple[Any, ...], shift: int) -> float:
    """The value of a register map row whose first word is at words[row address + shift]."""
    fmt, scale = row[2], row[3]
    raw = regmap.decode_raw(regmap.words_to_raw(words, row[1] + shift, fmt), fmt)
    return raw / scale if scale != 1 else float(raw)


def _value(words: Sequence[int], row: tuple[Any, ...]) -> float:
    return _value_at(words, row, 0)


# One register map row made ready for decoding: name, first word, two words?, sign bit (0: unsigned), scale.
_Field = tuple[str, int, bool, int, int]


def _field(row: tuple[Any, ...]) -> _Field:
    fmt = row[2]
    sign = 0x8000 if fmt == regmap.S16 else 0x80000000 if fmt == regmap.S32 else 0
    return row[0], row[1], regmap.FORMAT_WORDS[fmt] == 2, sign, row[3]


@dataclass(frozen=True, slots=True)
class _InputPlan:
    """How to decode one kind's input block, worked out from the register map once per kind, not per poll."""

    code: int
    count: int  # registers in a poll's read
    diagnostics: tuple[_Field, ...]
    measurements: tuple[_Field, ...]


@functools.cache
def _input_plan(kind: str) -> _InputPlan:
    code = KIND_BY_NAME[kind]
    return _InputPlan(code, regmap.input_count(code), tuple(_field(row) for row in regmap.DIAGNOSTICS),
                      tuple(_field(row) for row in regmap.MEASUREMENTS[code]))


def _raw(words: Sequence[int], offset: int, wide: bool, sign: int) -> int:
    """regmap.decode_raw(regmap.words_to_raw(...)) of a prepared field."""
    raw = (words[offset] << 16) | words[offset + 1] if wide else words[offset]
    return raw - (sign << 1) if raw & sign else raw


def decode_inputs(kind: str, words: Sequence[int]) -> Sample:
    """Decode a read of input registers 0 .. input_count(kind)-1."""
    plan = _input_plan(kind)
    if len(words) != plan.count:
        raise DecodeError(f"{kind} node: expected {plan.count} input registers, got {len(words)}")
    diagnostics = {
        name: _raw(words, offset, wide, sign) if scale == 1 else int(_raw(words, offset, wide, sign) / scale)
        for name, offset, wide, sign, scale in plan.diagnostics
    }
    if diagnostics["node_kind"] != plan.code:
        raise KindMismatch(kind, kind_name(diagnostics["node_kind"]))
    values = {
        name: float(_raw(words, offset, wide, sign)) if scale == 1 else _raw(words, offset, wide, sign) / scale
        for name, offset, wide, sign, scale in plan.measurements
    }
    qualities = channel_qualities(kind, diagnostics["sensor_status"], values)
    return Sample(diagnostics, values, dict(_units(kind)), qualities)


@functools.cache
def _units(kind: str) -> dict[str, str]:
    """Channel -> unit of a kind (copied into each Sample: a caller may keep and change its own)."""
    return {row[0]: row[4] for row in regmap.MEASUREMENTS[KIND_BY_NAME[kind]]}


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One record of the history window: a past sample and its age when the window was read."""

    age_ms: int
    sample: Sample

    @property
    def sequence(self) -> int:
        return self.sample.sequence


def decode_history(kind: str, words: Sequence[int]) -> list[HistoryRecord | None]:
    """Decode a read of whole records of the history window (regmap.HISTORY_BASE); None for an empty record.

    Record layout (regmap): sequence u32 | age ms u32 | sensor_status u16 |
    the kind's measurement words as at MEASUREMENT_BASE. A record whose
    sequence is 0 is empty (the ring does not hold that sample).
    """
    code = KIND_BY_NAME[kind]
    size = regmap.history_record_words(code)
    if not words or len(words) % size:
        raise DecodeError(f"{kind} node: {len(words)} registers are not whole history records of {size}")
    rows = regmap.MEASUREMENTS[code]
    units = {row[0]: row[4] for row in rows}
    header = regmap.HISTORY_HEADER_WORDS
    records: list[HistoryRecord | None] = []
    for base in range(0, len(words), size):
        sequence = (words[base] << 16) | words[base + 1]
        if sequence == 0:
            records.append(None)
            continue
        age = (words[base + 2] << 16) | words[base + 3]
        # The measurement words sit as in the input registers: shift the rows' addresses onto the record.
        shift = base + header - regmap.MEASUREMENT_BASE
        values = {row[0]: _value_at(words, row, shift) for row in rows}
        status = words[base + 4]
        diagnostics = {"sample_seq": sequence, "sensor_status": status}
        records.append(HistoryRecord(age, Sample(diagnostics, values, units, channel_qualities(kind, status, values))))
    return records


# Bits that make a sensor's values untrustworthy: flag D, no value.
_FAULT = regmap.STATUS_ABSENT | regmap.STATUS_CHECKSUM | regmap.STATUS_STUCK | regmap.STATUS_WARMUP
_GROUP = (1 << regmap.STATUS_AUX_SHIFT) - 1  # the bits of one sensor's group


def _group_quality(bits: int, ok: bool) -> Quality:
    """HJ 212 flag of one sensor's status bits: D for a fault (or no OK), T over range, else N."""
    if not ok or bits & _FAULT:
        return Quality.DEVICE_FAULT
    if bits & regmap.STATUS_RANGE:
        return Quality.OVER_RANGE
    return Quality.NORMAL


def channel_qualities(kind: str, status: int, values: Mapping[str, float] | None = None) -> dict[str, Quality]:
    """The flag of each channel of a sample, from its sensor_status word (regmap "Per-channel status").

    The one place status bits become flags, for the live poll and the history
    records alike. STATUS_HUMID is not a flag: the humidity processor flags
    humid PM readings from the RH channel (docs/data-quality.md). The range
    bit is per sensor: given the sample's values, T stays only on the channels
    that are over range (_over_range_only).
    """
    # Worked out once per kind and status word (a node's status rarely changes); each caller gets its own dict.
    qualities = dict(_channel_qualities(kind, status))
    if values and Quality.OVER_RANGE in qualities.values():
        code = KIND_BY_NAME[kind]
        names = list(qualities)
        if not status & regmap.STATUS_SPLIT:
            groups = [names]
        else:
            aux_names = regmap.STATUS_AUX_CHANNELS.get(code, ())
            groups = [[name for name in names if name not in aux_names], [name for name in names if name in aux_names]]
        for group in groups:
            if group and qualities[group[0]] is Quality.OVER_RANGE:
                _over_range_only(kind, group, values, qualities)
    return qualities


@functools.lru_cache(maxsize=4096)
def _channel_qualities(kind: str, status: int) -> dict[str, Quality]:
    code = KIND_BY_NAME[kind]
    names = [row[0] for row in regmap.MEASUREMENTS[code]]
    ok = bool(status & regmap.STATUS_OK)
    main = status & _GROUP
    if not status & regmap.STATUS_SPLIT:
        quality = _group_quality(main, ok)
        return {name: quality for name in names}
    aux_names = regmap.STATUS_AUX_CHANNELS.get(code, ())
    aux = (status >> regmap.STATUS_AUX_SHIFT) & _GROUP
    main_quality = _group_quality(main, ok)
    # OK belongs to the main sensor: cleared by its own faults it says nothing about the second sensor;
    # cleared with no fault bit to explain it (a broken register map), nothing on the node is trusted.
    aux_quality = _group_quality(aux, ok or bool(main & _FAULT))
    return {name: aux_quality if name in aux_names else main_quality for name in names}


def _beyond_range(value: float, low: float, high: float) -> bool:
    """At or above the upper limit, or below the lower one.

    A sensor or register that saturates reads exactly its upper limit, so that
    counts; the lower limits are zeros and north (0 ug/m3, calm, 0 degrees),
    ordinary readings, so only a value below one does. NaN is beyond any range.
    """
    return not low <= value < high


def _over_range_only(kind: str, group: Sequence[str], values: Mapping[str, float],
                     qualities: dict[str, Quality]) -> None:
    """Narrow one sensor's T (all of `group`) to its channels that are over range, in place.

    The node's range bit says "a value of this sensor is outside its range",
    not which: the kind profile's ranges (the one source of truth) say which
    channel is at or beyond its range. Those keep T, and so do the channels
    the ranges cannot judge (no range, no value); the ones within their range
    become N. When no channel is beyond its range (the node saw a value it
    could not publish, its own limit is tighter than the profile's, or the
    humidity correction brought a PM value back within range), every channel
    of the sensor keeps T: nothing the node called over range passes as N.
    """
    profile = kind_profiles().get(kind)
    if profile is None:
        return
    ranges = profile.ranges
    judged = [name for name in group if name in ranges and name in values]
    if not any(_beyond_range(values[name], *ranges[name]) for name in judged):
        return
    for name in judged:
        if not _beyond_range(values[name], *ranges[name]):
            qualities[name] = Quality.NORMAL


def to_readings(node: str, kind: str, sample: Sample, timestamp: float) -> list[Reading]:
    # A faulty channel's registers hold nothing trustworthy: no value, flag D.
    # Positional arguments and the sample's tables looked up once: once per poll, on every reading (issue 13).
    quality, units, sequence, fault = sample.quality, sample.units, sample.sequence, Quality.DEVICE_FAULT
    return [
        Reading(node, kind, name, None if quality[name] is fault else value, units[name], quality[name], timestamp,
                sequence)
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
