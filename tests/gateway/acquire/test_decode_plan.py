"""decode_inputs works from per-kind plans made once (issue 13: CPU per poll): it must give exactly what the
register map's own row-by-row decoding gives, for every kind and any register content."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME, DecodeError, KindMismatch, channel_qualities, decode_inputs
from gateway.model import Quality

KINDS = sorted(KIND_BY_NAME)


def by_the_map(words: Sequence[int], row: tuple[Any, ...]) -> float:
    """A row's value the register map's way: words -> raw -> signed -> scaled."""
    raw = regmap.decode_raw(regmap.words_to_raw(words, row[1], row[2]), row[2])
    return float(raw) / row[3]


@st.composite
def input_blocks(draw: st.DrawFn) -> tuple[str, list[int]]:
    kind = draw(st.sampled_from(KINDS))
    code = KIND_BY_NAME[kind]
    words = draw(st.lists(st.integers(0, 0xFFFF), min_size=regmap.input_count(code),
                          max_size=regmap.input_count(code)))
    words[regmap.find(regmap.DIAGNOSTICS, "node_kind")[1]] = code
    return kind, words


@given(input_blocks())
def test_every_field_decodes_as_the_register_map_says(block: tuple[str, list[int]]) -> None:
    kind, words = block
    code = KIND_BY_NAME[kind]
    sample = decode_inputs(kind, words)
    assert sample.diagnostics == {row[0]: int(by_the_map(words, row)) for row in regmap.DIAGNOSTICS}
    expected = {row[0]: by_the_map(words, row) for row in regmap.MEASUREMENTS[code]}
    assert sample.values == expected
    assert all(type(v) is float for v in sample.values.values())
    assert sample.units == {row[0]: row[4] for row in regmap.MEASUREMENTS[code]}
    # Given the values: the range bit keeps T only on the channels at or beyond their range (found by this
    # property once the narrowing came in: a noise sample over range with its Lmin at 30.0 dB).
    assert sample.quality == channel_qualities(kind, sample.status, sample.values)


def test_signed_fields_decode_negative() -> None:
    signed = [(kind, row) for kind in KINDS for row in regmap.MEASUREMENTS[KIND_BY_NAME[kind]]
              if row[2] in (regmap.S16, regmap.S32)]
    assert signed, "the register map has signed fields to check"
    for kind, row in signed:
        code = KIND_BY_NAME[kind]
        words = [0] * regmap.input_count(code)
        words[regmap.find(regmap.DIAGNOSTICS, "node_kind")[1]] = code
        words[row[1]] = 0xFFFF  # -1 in the lowest word of a 16-bit field, the top word of a 32-bit one
        if row[2] == regmap.S32:
            words[row[1] + 1] = 0xFFFE  # -2
        value = decode_inputs(kind, words).values[row[0]]
        assert value == (-1 if row[2] == regmap.S16 else -2) / row[3], (kind, row)


def test_each_sample_has_dicts_of_its_own() -> None:
    code = KIND_BY_NAME["dust"]
    words = [0] * regmap.input_count(code)
    words[regmap.find(regmap.DIAGNOSTICS, "node_kind")[1]] = code
    first = decode_inputs("dust", words)
    first.units["pm25"] = "changed"
    first.quality["pm25"] = Quality.OVER_RANGE
    second = decode_inputs("dust", words)
    assert second.units["pm25"] == "ug/m3"
    assert second.quality["pm25"] is not Quality.OVER_RANGE


def test_wrong_length_and_kind_are_still_errors() -> None:
    code = KIND_BY_NAME["dust"]
    words = [0] * regmap.input_count(code)
    try:
        decode_inputs("dust", words[:-1])
    except DecodeError as error:
        assert "expected" in str(error)
    else:
        raise AssertionError("a short block decoded")
    words[regmap.find(regmap.DIAGNOSTICS, "node_kind")[1]] = KIND_BY_NAME["noise"]
    try:
        decode_inputs("dust", words)
    except KindMismatch as error:
        assert error.reported == "noise"
    else:
        raise AssertionError("a noise node's block decoded as dust")
