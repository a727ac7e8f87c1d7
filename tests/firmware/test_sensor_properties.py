"""Property tests of the firmware's sensor parsers and maths (CPython only, hypothesis)."""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import aweight, tilt, wind
from firmware.history import History
from firmware.pms5003 import Pms5003Parser
from firmware.sds011 import Sds011Parser
from firmware.wind import GustTracker

PMS_LEN = 32
SDS_LEN = 10


# -- reference implementations, written from the datasheets, not from the modules --


def pms_valid(window: bytes) -> bool:
    if len(window) != PMS_LEN or window[:4] != b"\x42\x4d\x00\x1c":
        return False
    return sum(window[:30]) == int.from_bytes(window[30:32], "big")


def sds_valid(window: bytes) -> bool:
    if len(window) != SDS_LEN or window[0] != 0xAA or window[1] != 0xC0 or window[9] != 0xAB:
        return False
    return sum(window[2:8]) & 0xFF == window[8]


def greedy_frames(stream: bytes, length: int, valid: Callable[[bytes], bool]) -> list[int]:
    """End offsets (exclusive) of the frames a correct parser reports.

    Leftmost first: at each position either a whole valid frame starts here
    (take it, continue after it) or the byte is garbage.
    """
    ends = []
    p = 0
    while p + length <= len(stream):
        if valid(stream[p : p + length]):
            ends.append(p + length)
            p += length
        else:
            p += 1
    return ends


def pms_frame(words: list[int]) -> bytes:
    body = b"\x42\x4d\x00\x1c" + b"".join(w.to_bytes(2, "big") for w in words)
    return body + sum(body).to_bytes(2, "big")


def sds_frame(pm25: int, pm10: int, ident: int) -> bytes:
    data = pm25.to_bytes(2, "little") + pm10.to_bytes(2, "little") + ident.to_bytes(2, "big")
    return b"\xaa\xc0" + data + bytes([sum(data) & 0xFF, 0xAB])


def run_parser(parser: Pms5003Parser | Sds011Parser, stream: bytes) -> list[int]:
    ends = []
    for i, b in enumerate(stream):
        if parser.feed(b):
            ends.append(i + 1)
    return ends


def garbage_bytes(special: list[int], max_size: int) -> st.SearchStrategy[bytes]:
    """Random bytes, often the protocol's own header and tail bytes (the hard cases for resync)."""
    byte = st.one_of(st.sampled_from(special), st.integers(0, 255))
    return st.lists(byte, max_size=max_size).map(bytes)


pms_garbage = garbage_bytes([0x42, 0x4D, 0x00, 0x1C], 70)
sds_garbage = garbage_bytes([0xAA, 0xC0, 0xAB], 25)
words13 = st.lists(st.integers(0, 0xFFFF), min_size=13, max_size=13)
pms_frames = words13.map(pms_frame)
sds_frames = st.builds(sds_frame, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))


def interleave(garbage: list[bytes], frames: list[bytes]) -> tuple[bytes, list[tuple[int, int]]]:
    """garbage[0] frame[0] garbage[1] frame[1] ...; returns the stream and the frames' spans."""
    out = bytearray()
    spans = []
    for i, frame in enumerate(frames):
        out += garbage[i]
        spans.append((len(out), len(out) + len(frame)))
        out += frame
    out += garbage[len(frames)]
    return bytes(out), spans


# -- PMS5003 --


@given(st.binary(max_size=400))
def test_pms_never_raises_and_accounts_for_every_byte(stream: bytes) -> None:
    p = Pms5003Parser()
    ends = run_parser(p, stream)
    assert p.frames == len(ends)
    assert 0 <= p.pending < PMS_LEN
    assert PMS_LEN * p.frames + p.skipped + p.pending == len(stream)


@given(st.lists(st.one_of(pms_garbage, pms_frames, pms_frames.map(lambda f: f[: len(f) // 2]))))
def test_pms_matches_the_leftmost_first_reference(pieces: list[bytes]) -> None:
    stream = b"".join(pieces)
    assert run_parser(Pms5003Parser(), stream) == greedy_frames(stream, PMS_LEN, pms_valid)


@given(st.data())
def test_pms_finds_every_frame_embedded_in_garbage(data: st.DataObject) -> None:
    frames = data.draw(st.lists(pms_frames, min_size=1, max_size=6))
    garbage = data.draw(st.lists(pms_garbage, min_size=len(frames) + 1, max_size=len(frames) + 1))
    stream, spans = interleave(garbage, frames)
    p = Pms5003Parser()
    ends = run_parser(p, stream)
    # Each embedded frame is reported, unless a frame the parser found in
    # the garbage before it overlaps it (possible only when garbage happens
    # to hold a header and a matching checksum).
    for start, end in spans:
        overlapped = any(e - PMS_LEN < end and start < e for e in ends if e != end)
        assert end in ends or overlapped
    if not any(0x42 in g for g in garbage):
        assert ends == [end for _, end in spans]
        assert p.checksum_errors == 0
        assert p.skipped == sum(len(g) for g in garbage)


@given(pms_frames, st.lists(st.integers(1, 40), max_size=10))
def test_pms_chunking_does_not_matter(frame: bytes, cuts: list[int]) -> None:
    stream = b"\x00\x42" + frame + b"\x42\x4d" + frame
    whole = Pms5003Parser()
    whole.feed_buffer(stream, len(stream))
    chunked = Pms5003Parser()
    pos = 0
    for cut in [*cuts, len(stream)]:
        chunk = stream[pos : pos + cut]
        chunked.feed_buffer(chunk, len(chunk))
        pos += len(chunk)
    state = (chunked.frames, chunked.skipped, chunked.pending)
    assert state == (whole.frames, whole.skipped, whole.pending) == (2, 4, 0)
    expected = [int.from_bytes(frame[4 + 2 * i : 6 + 2 * i], "big") for i in range(13)]
    assert list(chunked.words) == list(whole.words) == expected


@given(pms_frames, st.integers(0, PMS_LEN - 1), st.integers(1, 255))
def test_pms_any_corrupted_byte_is_rejected(frame: bytes, index: int, flip: int) -> None:
    bad = bytearray(frame)
    bad[index] ^= flip
    p = Pms5003Parser()
    assert run_parser(p, bytes(bad)) == []
    # A flip in the header (start bytes, length) is a bad start; elsewhere
    # the sum changes (it cannot wrap: 30 * 255 < 65536), a checksum error.
    assert p.checksum_errors == (0 if index < 4 else 1)


# -- SDS011 --


@given(st.binary(max_size=300))
def test_sds_never_raises_and_accounts_for_every_byte(stream: bytes) -> None:
    p = Sds011Parser()
    ends = run_parser(p, stream)
    assert p.frames == len(ends)
    assert 0 <= p.pending < SDS_LEN
    assert SDS_LEN * p.frames + p.skipped + p.pending == len(stream)


@given(st.lists(st.one_of(sds_garbage, sds_frames, sds_frames.map(lambda f: f[:5]), st.just(b"\xaa\xc0"))))
def test_sds_matches_the_leftmost_first_reference(pieces: list[bytes]) -> None:
    stream = b"".join(pieces)
    assert run_parser(Sds011Parser(), stream) == greedy_frames(stream, SDS_LEN, sds_valid)


@given(st.data())
def test_sds_finds_every_frame_embedded_in_garbage(data: st.DataObject) -> None:
    frames = data.draw(st.lists(sds_frames, min_size=1, max_size=8))
    garbage = data.draw(st.lists(sds_garbage, min_size=len(frames) + 1, max_size=len(frames) + 1))
    stream, spans = interleave(garbage, frames)
    p = Sds011Parser()
    ends = run_parser(p, stream)
    for start, end in spans:
        overlapped = any(e - SDS_LEN < end and start < e for e in ends if e != end)
        assert end in ends or overlapped
    if not any(0xAA in g for g in garbage):
        assert ends == [end for _, end in spans]
        assert p.skipped == sum(len(g) for g in garbage)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_sds_values_round_trip(pm25: int, pm10: int, ident: int) -> None:
    p = Sds011Parser()
    assert run_parser(p, sds_frame(pm25, pm10, ident)) == [SDS_LEN]
    assert (p.pm25_x10, p.pm10_x10, p.device_id) == (pm25, pm10, ident)
    assert math.isclose(p.pm25, pm25 / 10)


# -- history ring --


@settings(max_examples=60)
@given(st.integers(1, 20), st.integers(1, 4), st.lists(st.integers(1, 5), max_size=70))
def test_history_behaves_like_the_last_n_samples(capacity: int, width: int, gaps: list[int]) -> None:
    h = History(capacity, width)
    model: deque[tuple[int, int, list[int]]] = deque(maxlen=capacity)
    seq = 0
    for gap in gaps:
        seq += gap
        words = [(seq * 31 + k) & 0xFFFF for k in range(width)]
        assert h.push(seq, seq * 1000 + 7, array("H", words))
        model.append((seq, seq * 1000 + 7, words))
        assert len(h) == len(model)
        assert h.oldest() == model[0][0]
        assert h.newest() == model[-1][0]
    stored = {s: (t, w) for s, t, w in model}
    for probe in range(seq + 3):
        got = h.get(probe)
        if probe in stored:
            assert got is not None
            assert list(got) == stored[probe][1]
            assert h.stamp(probe) == stored[probe][0]
        else:
            assert got is None
            assert h.stamp(probe) is None
    # A refused push changes nothing.
    if model:
        assert not h.push(seq, 0, array("H", [0] * width))
        assert h.newest() == seq
        assert len(h) == len(model)


# -- wind --


@given(st.lists(st.floats(0.0, 60.0, width=32), min_size=1, max_size=40), st.integers(1, 6))
def test_gust_is_the_max_of_full_window_means(speeds: list[float], window: int) -> None:
    g = GustTracker(sample_ms=1000, span_ms=1000 * window)
    assert g.window == window
    for v in speeds:
        g.push(v)
    means = [sum(speeds[i - window : i]) / window for i in range(window, len(speeds) + 1)]
    got = g.take()
    if means:
        assert got is not None
        assert math.isclose(got, max(means), rel_tol=1e-5, abs_tol=1e-4)
    else:
        assert got is None


@given(st.floats(-720.0, 720.0), st.integers(-2, 2))
def test_sector_is_periodic_and_nearest(deg: float, turns: int) -> None:
    s = wind.sector(deg)
    assert 0 <= s < 16
    assert wind.sector(deg + 360.0 * turns) == s or abs((deg % 22.5) - 11.25) < 1e-6
    centre = wind.sector_degrees(s)
    distance = abs((deg - centre + 180.0) % 360.0 - 180.0)
    assert distance <= 11.25 + 1e-6


@given(st.integers(0, 4095), st.floats(0.0, 359.9))
def test_vane_direction_is_a_sector_centre(raw: int, offset: float) -> None:
    d = wind.vane_direction(raw, 4095, offset)
    assert 0.0 <= d < 360.0
    assert d / 22.5 == int(d / 22.5)


@given(st.integers(0, 1000), st.integers(1, 60000), st.floats(0.001, 2.0), st.floats(0.0, 5.0))
def test_speed_is_linear_in_frequency(pulses: int, ms: int, factor: float, offset: float) -> None:
    f = wind.frequency(pulses, ms)
    v = wind.speed(f, factor, offset)
    if pulses == 0:
        assert v == 0.0
    else:
        assert math.isclose(v, factor * pulses * 1000.0 / ms + offset)


# -- sound levels --


@given(st.lists(st.floats(20.0, 140.0), min_size=1, max_size=50))
def test_leq_lies_between_the_arithmetic_mean_and_the_maximum(levels: list[float]) -> None:
    value = aweight.leq(levels)
    assert sum(levels) / len(levels) - 1e-9 <= value <= max(levels) + 1e-9
    agg = aweight.LeqAggregator(len(levels))
    done = [agg.add_level(x) for x in levels]
    assert done[-1] and not any(done[:-1])
    assert math.isclose(agg.laeq, value, abs_tol=1e-9)
    assert (agg.lamax, agg.lamin) == (max(levels), min(levels))


@given(st.floats(20.0, 120.0), st.floats(-20.0, 20.0))
def test_leq_shifts_with_a_constant(level: float, shift: float) -> None:
    levels = [level, level + 3.0, level - 7.0]
    assert math.isclose(aweight.leq([x + shift for x in levels]), aweight.leq(levels) + shift, abs_tol=1e-9)


# -- tilt --


@given(st.floats(-80.0, 80.0), st.floats(0.5, 2.0))
def test_pitch_of_a_rotated_gravity_vector(deg: float, scale: float) -> None:
    g = 100000.0 * scale
    rad = math.radians(deg)
    ax, az = round(g * math.sin(rad)), round(g * math.cos(rad))
    assert abs(tilt.pitch_mdeg(ax, 0, az) - deg * 1000.0) <= 2
    assert abs(tilt.roll_mdeg(0, ax, az) - deg * 1000.0) <= 2
    pitch = tilt.pitch_mdeg(ax, 0, az)
    slope = tilt.slope_permille(pitch)
    assert math.isclose(slope, 1000.0 * math.tan(math.radians(pitch / 1000.0)), abs_tol=1e-9)
    assert (slope > 0) == (pitch > 0)
