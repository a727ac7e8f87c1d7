"""Issue 10 review: the edges of vendor profiles a hostile reviewer tries (types at their extremes, hand-computed
byte/word orders, sentinels, scale rounding, bit fields, function codes, merged reads, loading)."""

from __future__ import annotations

import struct
import tomllib
from pathlib import Path

import pytest

from gateway.model import Quality
from gateway.profiles.vendor import ProfileError, ReadRequest, VendorProfile, load_vendor_profiles, parse_profile

DEVICE = '[device]\nkind = "wind"\ndescription = "edge"\nsource = "hand-computed vectors"\n'


def profile(text: str) -> VendorProfile:
    return parse_profile(tomllib.loads(text), "edge", "edge.toml")


def speed(extra: str) -> VendorProfile:
    """A profile of one wind_speed register (FC 4, address 0) with the given extra keys."""
    return profile(DEVICE + '[[register]]\nquantity = "wind_speed"\nfunction = 4\naddress = 0\nunit = "m/s"\n' + extra)


def decode(p: VendorProfile, *words: int) -> tuple[float | None, Quality]:
    (request,) = p.reads()
    return p.decode_quality({request: list(words)})["wind_speed"]


@pytest.mark.parametrize(("data_type", "words", "expected"), [
    ("u16", [0x0000], 0), ("u16", [0xFFFF], 65535),
    ("s16", [0x8000], -32768), ("s16", [0x7FFF], 32767), ("s16", [0xFFFF], -1),
    ("u32", [0xFFFF, 0xFFFF], 4294967295), ("u32", [0x0001, 0x0000], 65536),
    ("s32", [0x8000, 0x0000], -2147483648), ("s32", [0x7FFF, 0xFFFF], 2147483647), ("s32", [0xFFFF, 0xFFFE], -2),
    ("u64", [0xFFFF] * 4, 18446744073709551615), ("u64", [0, 0, 0, 1], 1),
    ("f32", [0x42F6, 0xE979], struct.unpack(">f", bytes.fromhex("42F6E979"))[0]),
    ("f32", [0x7F7F, 0xFFFF], struct.unpack(">f", bytes.fromhex("7F7FFFFF"))[0]),  # the largest finite float32
    ("f32", [0x0000, 0x0001], struct.unpack(">f", bytes.fromhex("00000001"))[0]),  # the smallest subnormal
])
def test_every_type_at_its_extremes(data_type: str, words: list[int], expected: float) -> None:
    value, quality = decode(speed(f'type = "{data_type}"\n'), *words)
    # Readings carry floats: a u64 beyond 2**53 is its nearest double (documented in the report).
    assert value == float(expected) and quality is Quality.NORMAL


def test_float32_negative_zero_nan_and_infinities() -> None:
    p = speed('type = "f32"\n')
    value, quality = decode(p, 0x8000, 0x0000)
    assert value == 0.0 and quality is Quality.NORMAL
    for words in ([0x7FC0, 0x0000], [0xFFC0, 0x0001], [0x7F80, 0x0000], [0xFF80, 0x0000]):  # NaNs, +inf, -inf
        assert decode(p, *words) == (None, Quality.DEVICE_FAULT)


@pytest.mark.parametrize(("byte_order", "word_order", "words"), [
    ("big", "big", [0x0102, 0x0304, 0x0506, 0x0708]),
    ("big", "little", [0x0708, 0x0506, 0x0304, 0x0102]),
    ("little", "big", [0x0201, 0x0403, 0x0605, 0x0807]),
    ("little", "little", [0x0807, 0x0605, 0x0403, 0x0201]),
])
def test_each_order_against_hand_computed_words(byte_order: str, word_order: str, words: list[int]) -> None:
    orders = f'byte_order = "{byte_order}"\nword_order = "{word_order}"\n'
    assert decode(speed('type = "u64"\n' + orders), *words)[0] == float(0x0102030405060708)
    # The first two words are the most significant half in big word order, the least significant in little.
    assert decode(speed('type = "u32"\n' + orders), *words[:2])[0] == (
        0x01020304 if word_order == "big" else 0x05060708)
    # s32 -2 = FF FF FF FE, laid out as the manual's ABCD / CDAB / BADC / DCBA.
    s32 = {("big", "big"): [0xFFFF, 0xFFFE], ("big", "little"): [0xFFFE, 0xFFFF],
           ("little", "big"): [0xFFFF, 0xFEFF], ("little", "little"): [0xFEFF, 0xFFFF]}[(byte_order, word_order)]
    assert decode(speed('type = "s32"\n' + orders), *s32)[0] == -2


def test_the_device_default_orders_apply_and_a_register_may_override_them() -> None:
    p = profile(DEVICE.replace("[device]\n", '[device]\nword_order = "little"\n') + (
        '[[register]]\nquantity = "wind_speed"\nfunction = 4\naddress = 0\ntype = "u32"\nunit = "m/s"\n'
        '[[register]]\nquantity = "wind_dir"\nfunction = 4\naddress = 2\ntype = "u32"\nunit = "deg"\n'
        'word_order = "big"\n'))
    assert p.reads() == [ReadRequest(4, 0, 4)]
    values = p.decode({ReadRequest(4, 0, 4): [0x0002, 0x0001, 0x0000, 0x0003]})
    assert values == {"wind_speed": 0x00010002, "wind_dir": 3}


# -- sentinels -----------------------------------------------------------------------------------
def test_a_sentinel_equal_to_a_valid_looking_value_wins() -> None:
    p = speed('invalid = 0\nrange = [0, 60]\n')
    assert decode(p, 0) == (None, Quality.DEVICE_FAULT)
    assert decode(p, 1) == (1, Quality.NORMAL)
    many = speed('type = "s16"\ninvalid = [-9999, 32767]\n')
    assert decode(many, 0xD8F1) == (None, Quality.DEVICE_FAULT)
    assert decode(many, 0x7FFF) == (None, Quality.DEVICE_FAULT)
    assert decode(many, 0x7FFE)[0] == 32766
    # u64's all-ones (beyond TOML's signed 64 bits for most parsers, not for tomllib): matched exactly.
    wide = speed('type = "u64"\ninvalid = 0xFFFFFFFFFFFFFFFF\n')
    assert decode(wide, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF) == (None, Quality.DEVICE_FAULT)
    assert decode(wide, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE)[0] == float(0xFFFFFFFFFFFFFFFE)


def test_a_sentinel_the_type_cannot_hold_is_refused_naming_the_key() -> None:
    # The manual says "0xD8F1 = -9999": written as 0xD8F1 on an s16 register it could never match.
    with pytest.raises(ProfileError, match=r"edge\.toml: register\[0\]\.invalid: 55537 .*s16"):
        speed('type = "s16"\ninvalid = 0xD8F1\n')
    with pytest.raises(ProfileError, match=r"register\[0\]\.invalid: -1 .*u16"):
        speed('invalid = -1\n')
    with pytest.raises(ProfileError, match=r"register\[0\]\.invalid: 16 .*4-bit field"):
        speed('bits = [4, 4]\ninvalid = 16\n')
    with pytest.raises(ProfileError, match=r"register\[0\]\.invalid: 1.5 .*u16"):
        speed('invalid = 1.5\n')
    with pytest.raises(ProfileError, match=r"register\[0\]\.invalid: nan .*u16"):
        speed('invalid = nan\n')
    with pytest.raises(ProfileError, match=r"register\[0\]\.invalid: 1e\+39 is beyond any float32"):
        speed('type = "f32"\ninvalid = 1e39\n')


def test_a_float32_sentinel_matches_the_float32_it_names() -> None:
    # 9999.99 has no exact float32: the device sends the nearest one, 9999.990234375.
    p = speed('type = "f32"\ninvalid = 9999.99\n')
    words = struct.unpack(">HH", struct.pack(">f", 9999.99))
    assert decode(p, *words) == (None, Quality.DEVICE_FAULT)
    assert p.encode({"wind_speed": None}) == {(4, 0): words[0], (4, 1): words[1]}


# -- scale, offset, bit fields, function codes -----------------------------------------------------
def test_decimal_scale_and_offset_give_the_decimal_value() -> None:
    assert decode(speed("scale = 0.1\n"), 3)[0] == 0.3  # 3 * 0.1 is 0.30000000000000004 in binary
    assert decode(speed("scale = 0.01\noffset = -40.0\n"), 6523)[0] == 25.23
    assert decode(speed('type = "s16"\nscale = 0.1\n'), 0xFFFD)[0] == -0.3
    assert decode(speed('type = "u32"\nscale = 0.001\n'), 0x0001, 0x0000)[0] == 65.536
    # A float register keeps its float (a scale of 1 must not round it to an integer).
    assert decode(speed('type = "f32"\n'), 0x3F9D, 0x70A4)[0] == struct.unpack(">f", bytes.fromhex("3F9D70A4"))[0]


def test_bit_fields_of_signed_and_wide_registers() -> None:
    assert decode(speed('type = "s16"\nbits = [15, 1]\n'), 0x8000)[0] == 1
    assert decode(speed("bits = [4, 4]\n"), 0xABCD)[0] == 0xC
    assert decode(speed("bits = [4, 4]\nscale = 0.5\ninvalid = 15\n"), 0xABFD) == (None, Quality.DEVICE_FAULT)
    assert decode(speed('type = "u32"\nbits = [12, 8]\n'), 0x000A, 0xB000)[0] == 0xAB
    with pytest.raises(ProfileError, match=r"register\[0\]\.bits: expected \[lowest bit, width\] within 16 bits"):
        speed("bits = [12, 5]\n")
    with pytest.raises(ProfileError, match=r"register\[0\]\.bits: bit fields need an integer type"):
        speed('type = "f32"\nbits = [0, 4]\n')


def test_function_3_and_4_at_the_same_address_are_two_requests_each_decoding_its_own() -> None:
    p = profile(DEVICE + '[[register]]\nquantity = "wind_speed"\nfunction = 3\naddress = 0\nunit = "m/s"\n'
                '[[register]]\nquantity = "wind_dir"\nfunction = 4\naddress = 0\nunit = "deg"\n')
    assert p.reads() == [ReadRequest(3, 0, 1), ReadRequest(4, 0, 1)]
    assert p.decode({ReadRequest(3, 0, 1): [7], ReadRequest(4, 0, 1): [270]}) == {"wind_speed": 7, "wind_dir": 270}


# -- merged reads ----------------------------------------------------------------------------------
def _layout(max_gap: int, rejected: str, *rows: tuple[str, int, str]) -> VendorProfile:
    text = DEVICE.replace("[device]\n", f"[device]\nmax_gap = {max_gap}\n")
    for quantity, address, data_type in rows:
        unit = {"wind_speed": "m/s", "wind_dir": "deg", "wind_gust_3s": "m/s"}[quantity]
        text += (f'[[register]]\nquantity = "{quantity}"\nfunction = 4\naddress = {address}\n'
                 f'type = "{data_type}"\nunit = "{unit}"\n')
    return profile(text + rejected)


def test_a_rejected_register_anywhere_in_the_gap_splits_the_read() -> None:
    rows = (("wind_speed", 0, "u32"), ("wind_dir", 5, "u16"), ("wind_gust_3s", 8, "f32"))
    assert _layout(3, "", *rows).reads() == [ReadRequest(4, 0, 10)]
    for first, last in ((2, 2), (4, 4), (2, 4), (6, 6), (7, 7)):
        reads = _layout(3, f"[[rejected]]\nfunction = 4\nfirst = {first}\nlast = {last}\n", *rows).reads()
        for r in reads:
            assert not any(first <= a <= last for a in range(r.address, r.end)), (first, last, reads)
        assert len(reads) == 2
    # A rejected range of the other function code does not split it.
    assert _layout(3, "[[rejected]]\nfunction = 3\nfirst = 2\nlast = 4\n", *rows).reads() == [ReadRequest(4, 0, 10)]
    # A register inside a rejected range is a contradiction, refused naming it.
    with pytest.raises(ProfileError, match=r"register\[1\]\.address: FC 4 5 lies in rejected 4 .. 6"):
        _layout(3, "[[rejected]]\nfunction = 4\nfirst = 4\nlast = 6\n", *rows)


def test_the_gap_is_counted_in_registers_not_in_values() -> None:
    # u32 at 0-1, u16 at 4: two unused registers (2, 3) between them.
    assert _layout(1, "", ("wind_speed", 0, "u32"), ("wind_dir", 4, "u16")).reads() == [
        ReadRequest(4, 0, 2), ReadRequest(4, 4, 1)]
    assert _layout(2, "", ("wind_speed", 0, "u32"), ("wind_dir", 4, "u16")).reads() == [ReadRequest(4, 0, 5)]


# -- loading ---------------------------------------------------------------------------------------
def test_a_malformed_profile_in_an_extra_dir_is_refused_naming_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(DEVICE + '[[register]]\nquantity = "wind_speed"\naddress = 0\nunit = "m/s"\n')
    (tmp_path / "bad.toml").write_text(DEVICE + '[[register]]\nquantity = "wind_speed"\naddress = 0\nunit = "km/h"\n')
    with pytest.raises(ProfileError, match=r"bad\.toml: register\[0\]\.unit: wind_speed is in 'm/s', not 'km/h'"):
        load_vendor_profiles([tmp_path], system_dir=None)
    (tmp_path / "bad.toml").write_text(DEVICE + '[[register]]\nquantity = "wind_speed"\nadress = 0\nunit = "m/s"\n')
    with pytest.raises(ProfileError, match=r"bad\.toml: register\[0\]\.adress: unknown key"):
        load_vendor_profiles([tmp_path], system_dir=None)


def test_the_same_name_later_replaces_earlier_in_the_documented_order(tmp_path: Path) -> None:
    system, first, second = (tmp_path / d for d in ("etc", "one", "two"))
    for folder, words in ((system, 1), (first, 2), (second, 4)):
        folder.mkdir()
        (folder / "dup.toml").write_text(DEVICE + f'[[register]]\nquantity = "wind_speed"\ntype = "{"u16" if words == 1 else "u32" if words == 2 else "u64"}"\naddress = 0\nunit = "m/s"\n')  # noqa: E501
    loaded = load_vendor_profiles([first, second], system_dir=system)
    assert loaded["dup"].reads() == [ReadRequest(3, 0, 4)]
    assert loaded["dup"].path.endswith("two/dup.toml")
    assert load_vendor_profiles([first], system_dir=system)["dup"].reads() == [ReadRequest(3, 0, 2)]


# -- the simulator's transmitter at the ends of its register's type ---------------------------------------
class Constant:
    def __init__(self, speed: float) -> None:
        self.speed = speed

    def values(self, t: float) -> dict[str, float]:
        return {"wind_speed": self.speed, "wind_dir": 0.0, "wind_gust_3s": 0.0}


@pytest.mark.parametrize(("extra", "truth", "held"), [
    ("scale = 0.01\n", 700.0, 655.35),  # beyond u16: the transmitter saturates at its largest word
    ("scale = 0.01\n", -3.0, 0.0),  # below u16's 0
    ('type = "s16"\nscale = 0.01\ninvalid = 32767\n', 400.0, 327.66),  # the largest word is the sentinel
    ("bits = [0, 4]\n", 20.0, 15.0),  # a 4-bit field
])
def test_a_simulated_transmitter_saturates_at_its_types_ends(extra: str, truth: float, held: float) -> None:
    from simulator.vendor_device import VendorDevice

    device = VendorDevice(speed(extra), 3, Constant(truth), lambda ms: ms / 1000)
    device.sample(0)  # a value its register cannot hold must not stop the simulated device
    assert device.last["wind_speed"] == held
    (request,) = device.profile.reads()
    words = [device.slave.words[(request.function, a)] for a in range(request.address, request.end)]
    assert device.profile.decode({request: words})["wind_speed"] == held
