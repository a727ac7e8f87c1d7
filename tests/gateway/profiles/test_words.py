"""Register words <-> numbers: vectors from the byte layouts vendor manuals name, and round trips for every
type and order."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.profiles.words import ORDERS, TYPES, value_to_words, words_to_value

# 123.456 as float32 is 0x42F6E979: bytes A=42 B=F6 C=E9 D=79.
FLOAT_VECTORS = [
    ("big", "big", [0x42F6, 0xE979]),  # ABCD
    ("little", "big", [0xF642, 0x79E9]),  # BADC
    ("big", "little", [0xE979, 0x42F6]),  # CDAB, "swapped words"
    ("little", "little", [0x79E9, 0xF642]),  # DCBA
]


@pytest.mark.parametrize(("byte_order", "word_order", "words"), FLOAT_VECTORS)
def test_float32_layouts(byte_order: str, word_order: str, words: list[int]) -> None:
    assert words_to_value(words, "f32", byte_order, word_order) == pytest.approx(123.456, abs=1e-4)
    assert value_to_words(struct.unpack(">f", bytes.fromhex("42F6E979"))[0], "f32", byte_order, word_order) == words


def test_integer_vectors() -> None:
    assert words_to_value([0xFFFF], "s16") == -1
    assert words_to_value([0xFFFF], "u16") == 0xFFFF
    assert words_to_value([0x0102], "u16", "little") == 0x0201
    assert words_to_value([0x0001, 0x0002], "u32") == 0x00010002
    assert words_to_value([0x0001, 0x0002], "u32", "big", "little") == 0x00020001
    assert words_to_value([0xFFFF, 0xFFFE], "s32") == -2
    assert words_to_value([0x0001, 0x0002, 0x0003, 0x0004], "u64") == 0x0001000200030004
    assert words_to_value([0x0001, 0x0002, 0x0003, 0x0004], "u64", "big", "little") == 0x0004000300020001
    assert value_to_words(-2, "s16") == [0xFFFE]


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="u32 takes 2 words, got 1"):
        words_to_value([1], "u32")
    with pytest.raises(ValueError, match="unknown data type 'u8'"):
        words_to_value([1], "u8")
    with pytest.raises(ValueError, match="unknown word order 'middle'"):
        words_to_value([1, 2], "u32", "big", "middle")
    with pytest.raises(ValueError, match="does not fit u16"):
        value_to_words(70000, "u16")
    with pytest.raises(ValueError, match=r"outside 0 \.\. 65535"):
        words_to_value([70000], "u16")


_RANGES = {"u16": (0, 2**16 - 1), "s16": (-(2**15), 2**15 - 1), "u32": (0, 2**32 - 1),
           "s32": (-(2**31), 2**31 - 1), "u64": (0, 2**64 - 1)}


@given(st.data(), st.sampled_from(sorted(TYPES)), st.sampled_from(ORDERS), st.sampled_from(ORDERS))
def test_every_type_and_order_round_trips(data: st.DataObject, data_type: str, byte_order: str,
                                          word_order: str) -> None:
    if data_type == "f32":
        value: float = data.draw(st.floats(width=32, allow_nan=False))
    else:
        low, high = _RANGES[data_type]
        value = data.draw(st.integers(low, high))
    words = value_to_words(value, data_type, byte_order, word_order)
    assert len(words) == TYPES[data_type][0]
    assert all(0 <= w <= 0xFFFF for w in words)
    back = words_to_value(words, data_type, byte_order, word_order)
    assert back == value and (not isinstance(value, float) or math.copysign(1, back) == math.copysign(1, value))


@given(st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2), st.sampled_from(ORDERS), st.sampled_from(ORDERS))
def test_words_round_trip_through_values(words: list[int], byte_order: str, word_order: str) -> None:
    value = words_to_value(words, "u32", byte_order, word_order)
    assert value_to_words(value, "u32", byte_order, word_order) == words
