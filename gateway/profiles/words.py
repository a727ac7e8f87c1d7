"""Register words <-> numbers, for every data type and byte/word order vendors use. Pure.

A value of n words is laid out as 2n bytes. "big" byte order means each
word's high byte comes first (Modbus' own rule); "little" swaps the two
bytes of every word. "big" word order means the most significant word comes
first (at the lower address); "little" puts the least significant word first
(the "swapped words" float32 of many transmitters, "CDAB"). The four
combinations are the ABCD / BADC / CDAB / DCBA layouts of vendor manuals.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

# type -> (words, struct code for a big-endian value of that size)
TYPES: dict[str, tuple[int, str]] = {
    "u16": (1, ">H"),
    "s16": (1, ">h"),
    "u32": (2, ">I"),
    "s32": (2, ">i"),
    "f32": (2, ">f"),
    "u64": (4, ">Q"),
}
ORDERS = ("big", "little")
INTEGER_TYPES = frozenset(t for t in TYPES if t != "f32")


def word_count(data_type: str) -> int:
    return TYPES[data_type][0]


def integer_bounds(data_type: str, width: int | None = None) -> tuple[int, int]:
    """The least and greatest raw number of an integer type (or of a bit field of that width)."""
    if width is not None:
        return 0, (1 << width) - 1
    size = 16 * word_count(data_type)
    if data_type.startswith("s"):
        return -(1 << (size - 1)), (1 << (size - 1)) - 1
    return 0, (1 << size) - 1


def _check(data_type: str, byte_order: str, word_order: str) -> None:
    if data_type not in TYPES:
        raise ValueError(f"unknown data type {data_type!r} (one of {', '.join(TYPES)})")
    for what, order in (("byte", byte_order), ("word", word_order)):
        if order not in ORDERS:
            raise ValueError(f"unknown {what} order {order!r} (big or little)")


def words_to_value(words: Sequence[int], data_type: str, byte_order: str = "big", word_order: str = "big") -> float:
    """The number held by words (exactly word_count(data_type) of them): an int, or a float for f32."""
    _check(data_type, byte_order, word_order)
    count, code = TYPES[data_type]
    if len(words) != count:
        raise ValueError(f"{data_type} takes {count} words, got {len(words)}")
    ordered = list(words) if word_order == "big" else list(reversed(words))
    data = bytearray()
    for word in ordered:
        if not 0 <= word <= 0xFFFF:
            raise ValueError(f"register word {word} is outside 0 .. 65535")
        pair = word.to_bytes(2, "big")
        data += pair if byte_order == "big" else pair[::-1]
    value: float = struct.unpack(code, bytes(data))[0]
    return value


def value_to_words(value: float, data_type: str, byte_order: str = "big", word_order: str = "big") -> list[int]:
    """The words that hold value; the inverse of words_to_value. Integers must fit the type."""
    _check(data_type, byte_order, word_order)
    _, code = TYPES[data_type]
    try:
        data = struct.pack(code, value if data_type == "f32" else int(value))
    except struct.error as error:
        raise ValueError(f"{value!r} does not fit {data_type}: {error}") from error
    words = []
    for i in range(0, len(data), 2):
        pair = data[i:i + 2] if byte_order == "big" else data[i:i + 2][::-1]
        words.append(int.from_bytes(pair, "big"))
    return words if word_order == "big" else list(reversed(words))
