"""Vendor profiles: parsing (errors name file and key), merged reads, decoding, plausibility, loading."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model import Quality
from gateway.profiles.vendor import (
    ProfileError,
    ReadRequest,
    VendorProfile,
    load_profile,
    load_vendor_profiles,
    parse_profile,
)

DEVICE = '[device]\nkind = "wind"\ndescription = "test"\nsource = "test vectors"\n'


def profile(text: str, name: str = "t") -> VendorProfile:
    return parse_profile(tomllib.loads(text), name, f"{name}.toml")


def registers(*rows: str) -> str:
    return "".join(f"[[register]]\n{row}\n" for row in rows)


SPEED = 'quantity = "wind_speed"\nfunction = 4\naddress = 0\nscale = 0.1\nunit = "m/s"\nrange = [0, 60]'
DIR = 'quantity = "wind_dir"\nfunction = 4\naddress = 5\nscale = 0.1\nunit = "deg"\nrange = [0, 360]'
GUST = 'quantity = "wind_gust_3s"\nfunction = 4\naddress = 7\ntype = "f32"\nword_order = "little"\nunit = "m/s"'


def replies(p: VendorProfile, words: dict[tuple[int, int], int]) -> dict[ReadRequest, list[int]]:
    return {r: [words.get((r.function, a), 0) for a in range(r.address, r.end)] for r in p.reads()}


# -- merging -------------------------------------------------------------------------------
def test_registers_merge_within_max_gap() -> None:
    assert profile(DEVICE + registers(SPEED, DIR)).reads() == [ReadRequest(4, 0, 1), ReadRequest(4, 5, 1)]
    merged = profile(DEVICE + "max_gap = 4\n" + registers(SPEED, DIR, GUST))
    assert merged.reads() == [ReadRequest(4, 0, 9)]


def test_no_read_across_a_rejected_register() -> None:
    text = DEVICE + "max_gap = 10\n" + registers(SPEED, DIR) + "[[rejected]]\nfunction = 4\nfirst = 2\nlast = 3\n"
    assert profile(text).reads() == [ReadRequest(4, 0, 1), ReadRequest(4, 5, 1)]
    # The same addresses of the other function do not matter.
    text = DEVICE + "max_gap = 10\n" + registers(SPEED, DIR) + "[[rejected]]\nfunction = 3\nfirst = 2\nlast = 3\n"
    assert profile(text).reads() == [ReadRequest(4, 0, 6)]


def test_functions_and_max_count_split_requests() -> None:
    holding = SPEED.replace("function = 4", "function = 3")
    assert profile(DEVICE + "max_gap = 50\n" + registers(holding, DIR)).reads() == [
        ReadRequest(3, 0, 1), ReadRequest(4, 5, 1)]
    assert profile(DEVICE + "max_gap = 50\nmax_count = 5\n" + registers(SPEED, DIR)).reads() == [
        ReadRequest(4, 0, 1), ReadRequest(4, 5, 1)]


@given(st.lists(st.integers(0, 300), min_size=1, max_size=12, unique=True), st.integers(0, 20),
       st.integers(2, 125))
def test_merged_reads_cover_every_register_and_respect_limits(addresses: list[int], gap: int, count: int) -> None:
    rows = [f'quantity = "{q}"\nfunction = 4\naddress = {a}\nunit = "{u}"'
            for (q, u), a in zip(_QUANTITIES, addresses, strict=False)]
    p = profile(DEVICE.replace('"wind"', '"dust"') + f"max_gap = {gap}\nmax_count = {count}\n" + registers(*rows))
    reads = p.reads()
    for r in p.registers:
        assert sum(q.address <= r.address < q.end for q in reads) == 1
    assert all(q.count <= count for q in reads)
    wanted = {r.address for r in p.registers}
    for q in reads:  # no request reads more than max_gap unwanted registers in a row
        run = 0
        for a in range(q.address, q.end):
            run = 0 if a in wanted else run + 1
            assert run <= gap


_QUANTITIES = [("pm25", "ug/m3"), ("pm10", "ug/m3"), ("pm1", "ug/m3"), ("temperature", "degC"),
               ("humidity", "%"), ("pressure", "kPa"), ("laeq_1s", "dB(A)"), ("lamax_1s", "dB(A)"),
               ("lamin_1s", "dB(A)"), ("wind_speed", "m/s"), ("wind_dir", "deg"), ("slope_x", "permille")]


# -- decoding ------------------------------------------------------------------------------
def test_decode_scales_and_reads_swapped_float() -> None:
    p = profile(DEVICE + "max_gap = 4\n" + registers(SPEED, DIR, GUST))
    # 12.5 as float32 is 0x41480000; words swapped: 0x0000 at 7, 0x4148 at 8.
    words = {(4, 0): 123, (4, 5): 2705, (4, 7): 0x0000, (4, 8): 0x4148}
    assert p.decode(replies(p, words)) == pytest.approx({"wind_speed": 12.3, "wind_dir": 270.5, "wind_gust_3s": 12.5})


def test_sentinel_and_status_bits_void_values() -> None:
    speed = SPEED + "\ninvalid = [65535, 65534]"
    status = '[[status]]\nfunction = 4\naddress = 1\nfault_mask = 0x0004\nquantities = ["wind_dir"]\n'
    p = profile(DEVICE + "max_gap = 4\n" + registers(speed, DIR) + status)
    assert p.reads() == [ReadRequest(4, 0, 6)]
    assert p.decode(replies(p, {(4, 0): 65534, (4, 5): 100})) == {"wind_speed": None, "wind_dir": pytest.approx(10)}
    decoded = p.decode_quality(replies(p, {(4, 0): 700, (4, 1): 0x0005, (4, 5): 100}))
    assert decoded == {"wind_speed": (pytest.approx(70.0), Quality.OVER_RANGE),
                       "wind_dir": (None, Quality.DEVICE_FAULT)}


def test_bit_fields() -> None:
    low = 'quantity = "pm25"\nfunction = 3\naddress = 2\nbits = [0, 8]\nunit = "ug/m3"'
    high = 'quantity = "pm10"\nfunction = 3\naddress = 2\nbits = [8, 8]\nunit = "ug/m3"\ninvalid = 255'
    p = profile(DEVICE.replace('"wind"', '"dust"') + registers(low, high))
    assert p.reads() == [ReadRequest(3, 2, 1)]
    assert p.decode({ReadRequest(3, 2, 1): [0x2A17]}) == {"pm25": 0x17, "pm10": 0x2A}
    assert p.decode({ReadRequest(3, 2, 1): [0xFF17]}) == {"pm25": 0x17, "pm10": None}
    assert p.encode({"pm25": 0x17, "pm10": None}) == {(3, 2): 0xFF17}


def test_nan_float_is_invalid_and_transform_to_permille() -> None:
    row = 'quantity = "slope_x"\naddress = 0\ntype = "f32"\nunit = "permille"\ntransform = "degrees_to_permille"'
    p = profile(DEVICE.replace('"wind"', '"tilt"') + registers(row))
    assert p.decode({ReadRequest(3, 0, 2): [0x7FC0, 0]}) == {"slope_x": None}
    words = p.encode({"slope_x": 4.0})
    value = p.decode({ReadRequest(3, 0, 2): [words[(3, 0)], words[(3, 1)]]})["slope_x"]
    assert value == pytest.approx(4.0, rel=1e-6)
    assert p.decode({ReadRequest(3, 0, 2): [0x3F80, 0]})["slope_x"] == pytest.approx(1000 * math.tan(math.radians(1)))


def test_missing_or_short_reply_is_an_error() -> None:
    p = profile(DEVICE + registers(SPEED))
    with pytest.raises(ValueError, match="no reply covers FC 4 address 0"):
        p.decode({})
    with pytest.raises(ValueError, match="0 registers"):
        p.decode({ReadRequest(4, 0, 1): []})


@given(st.floats(0, 60), st.floats(0, 359.9), st.floats(0, 60, width=32))
def test_encode_decode_round_trip(speed: float, direction: float, gust: float) -> None:
    p = profile(DEVICE + "max_gap = 4\n" + registers(SPEED, DIR, GUST))
    decoded = p.decode(replies(p, p.encode({"wind_speed": speed, "wind_dir": direction, "wind_gust_3s": gust})))
    assert decoded["wind_speed"] == pytest.approx(speed, abs=0.05 + 1e-9)
    assert decoded["wind_dir"] == pytest.approx(direction, abs=0.05 + 1e-9)
    assert decoded["wind_gust_3s"] == gust


@given(st.sampled_from(["u16", "s16", "u32", "s32", "f32", "u64"]), st.sampled_from(["big", "little"]),
       st.sampled_from(["big", "little"]), st.sampled_from([1.0, 0.1, 0.01, 0.5]), st.floats(-50, 50),
       st.floats(0, 1))
def test_every_type_and_order_round_trips_through_a_profile(data_type: str, byte_order: str, word_order: str,
                                                            scale: float, offset: float, fraction: float) -> None:
    row = (f'quantity = "temperature"\nfunction = 3\naddress = 40\ntype = "{data_type}"\nunit = "degC"\n'
           f'byte_order = "{byte_order}"\nword_order = "{word_order}"\nscale = {scale}\noffset = {offset}')
    p = profile(DEVICE.replace('"wind"', '"dust"') + registers(row))
    signed = data_type.startswith("s") or data_type == "f32"
    value = offset + (fraction * 200 - (100 if signed else 0)) * scale  # within every type's range
    decoded = p.decode(replies(p, p.encode({"temperature": value})))["temperature"]
    assert decoded is not None
    # An f32 register holds (value - offset) / scale, rounded to single precision: its error is relative to
    # that raw value, not to the value (offset -42, value -0.095: 1.8e-6 off, series s6d).
    tolerance = abs(value - offset) * 1e-6 + 1e-6 if data_type == "f32" else scale / 2 + 1e-9
    assert abs(decoded - value) <= tolerance


# -- plausibility --------------------------------------------------------------------------
def test_plausible() -> None:
    p = profile(DEVICE + registers(SPEED + "\ninvalid = 65535", DIR))
    assert p.plausible({"wind_speed": 3.0, "wind_dir": 90.0})
    assert p.plausible({"wind_speed": None, "wind_dir": 90.0})
    assert not p.plausible({"wind_speed": None, "wind_dir": None})  # all sentinels prove nothing
    assert not p.plausible({"wind_speed": 3.0, "wind_dir": 400.0})
    assert not p.plausible({"wind_speed": 3.0})


# -- errors name the file and the key ------------------------------------------------------
@pytest.mark.parametrize(("text", "message"), [
    (DEVICE.replace('kind = "wind"', 'kind = "rain"') + registers(SPEED),
     r"t\.toml: device\.kind: 'rain' is not one of"),
    (DEVICE + registers(SPEED.replace('unit = "m/s"', 'unit = "km/h"')),
     r"t\.toml: register\[0\]\.unit: wind_speed is in 'm/s', not 'km/h'"),
    (DEVICE + registers(SPEED.replace("wind_speed", "gust")), r"t\.toml: register\[0\]\.quantity: 'gust' is not"),
    (DEVICE + registers(SPEED + '\ntype = "u8"'), r"register\[0\]\.type: 'u8' is not one of"),
    (DEVICE + registers(SPEED + "\nbits = [12, 8]"), r"register\[0\]\.bits: expected \[lowest bit, width\]"),
    (DEVICE + registers(GUST + "\nbits = [0, 4]"), r"register\[0\]\.bits: bit fields need an integer type"),
    (DEVICE + registers(SPEED.replace("function = 4", "function = 2")), r"register\[0\]\.function: 2 is not"),
    (DEVICE + registers(SPEED.replace("scale = 0.1", "scale = 0")), r"register\[0\]\.scale: must not be 0"),
    (DEVICE + registers(SPEED, SPEED), r"register\[1\]\.quantity: 'wind_speed' is supplied twice"),
    (DEVICE + registers(SPEED + "\ncolour = 1"), r"register\[0\]\.colour: unknown key"),
    (DEVICE + registers(SPEED.replace("range = [0, 60]", "range = [60, 0]")), r"register\[0\]\.range"),
    (DEVICE + 'baud = 9000\n' + registers(SPEED), r"device\.baud: 9000 is not a standard rate"),
    (DEVICE + 'parity = "X"\n' + registers(SPEED), r"device\.parity"),
    (DEVICE + 'gust = "device"\n' + registers(SPEED), r"device\.gust: \"device\" needs"),
    (DEVICE, r"t\.toml: register: no \[\[register\]\]"),
    (DEVICE.replace('kind = "wind"\n', "") + registers(SPEED), r"t\.toml: device\.kind: required"),
    (DEVICE.replace('"test vectors"', '" "') + registers(SPEED), r"t\.toml: device\.source: empty: name the manual"),
    (DEVICE.replace('source = "test vectors"\n', "") + registers(SPEED), r"t\.toml: device\.source: required"),
    (DEVICE + registers(SPEED) + "[[rejected]]\nfunction = 4\nfirst = 0\nlast = 0\n",
     r"register\[0\]\.address: FC 4 0 lies in rejected 0 \.\. 0"),
    (DEVICE + registers(SPEED) + '[[status]]\naddress = 3\nfault_mask = 1\nquantities = ["pm10"]\n',
     r"status\[0\]\.quantities: 'pm10' is not a quantity"),
    (DEVICE + "max_count = 1\n" + registers(GUST), r"device\.max_count: 1 is less than"),
])
def test_bad_profiles_are_named(text: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        profile(text)


def test_bad_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[device\n")
    with pytest.raises(ProfileError, match=r"broken\.toml: not valid TOML"):
        load_profile(bad)
    with pytest.raises(ProfileError, match=r"broken\.toml: not valid TOML"):
        load_vendor_profiles([tmp_path], system_dir=None)


# -- loading ---------------------------------------------------------------------------------
def test_shipped_profiles_load_cite_sources_and_cover_the_kinds() -> None:
    shipped = load_vendor_profiles(system_dir=None)
    assert len(shipped) >= 6
    assert {p.kind for p in shipped.values()} == {"dust", "noise", "tilt", "wind"}
    for p in shipped.values():
        assert p.source and p.description and p.reads()
        assert not p.plausible({q: None for q in p.quantities})


def test_extra_and_system_dirs_add_and_override(tmp_path: Path) -> None:
    system, extra = tmp_path / "etc", tmp_path / "extra"
    system.mkdir()
    extra.mkdir()
    (system / "site-anemo.toml").write_text(DEVICE + registers(SPEED))
    (extra / "deltaohm-pmsense.toml").write_text(DEVICE.replace('"test"', '"site copy"') + registers(SPEED))
    profiles = load_vendor_profiles([extra], system_dir=system)
    assert profiles["site-anemo"].reads() == [ReadRequest(4, 0, 1)]
    assert profiles["deltaohm-pmsense"].description == "site copy"
    assert "lambrecht-14524-wind-speed" in profiles
    assert load_vendor_profiles(system_dir=tmp_path / "missing")  # a missing folder is no error




@given(st.data())
def test_any_reply_decodes_to_values_or_honest_gaps(data: st.DataObject) -> None:
    """Whatever a device (or another device at that address, during a scan) answers: a finite value with
    flag N or T, or no value with flag D; never an exception, a NaN or an infinity."""
    for p in load_vendor_profiles(system_dir=None).values():
        replies = {r: data.draw(st.lists(st.integers(0, 0xFFFF), min_size=r.count, max_size=r.count))
                   for r in p.reads()}
        for quantity, (value, quality) in p.decode_quality(replies).items():
            if value is None:
                assert quality is Quality.DEVICE_FAULT, (p.name, quantity)
            else:
                assert math.isfinite(value) and quality in (Quality.NORMAL, Quality.OVER_RANGE), (p.name, quantity)
        p.plausible(p.decode(replies))  # a verdict, never an error
