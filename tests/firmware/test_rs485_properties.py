"""Property tests of the RS-485 frame assembler (CPython: hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from firmware.modbus_rtu import crc16
from firmware.rs485 import BAUD_RATES, FrameAssembler, char_us, find_tail_request, t35_us

frames_strategy = st.lists(st.binary(min_size=1, max_size=256), min_size=1, max_size=6)


@given(
    baud=st.sampled_from(BAUD_RATES),
    frames=frames_strategy,
    data=st.data(),
)
def test_frames_separated_by_t35_come_out_exactly(baud: int, frames: list[bytes], data: st.DataObject) -> None:
    gap = t35_us(baud)
    asm = FrameAssembler(gap)
    out: list[bytes] = []
    t = 1000
    for frame in frames:
        # Inside a frame: any silence shorter than t3.5 (bytes may also arrive together).
        for i, b in enumerate(frame):
            if i:
                t += data.draw(st.integers(min_value=0, max_value=gap - 1))
            asm.feed_byte(b, t)
            # Never complete while the frame is still coming.
            assert asm.poll(t + gap - 1) == 0
        t += data.draw(st.integers(min_value=gap, max_value=10 * gap))
        n = asm.poll(t)
        assert n > 0
        out.append(bytes(asm.frame[:n]))
        asm.release()
    assert out == frames
    assert asm.frames == len(frames)


@given(baud=st.sampled_from(BAUD_RATES), frame=st.binary(min_size=1, max_size=256), split=st.integers(1, 255))
def test_chunking_does_not_change_the_frame(baud: int, frame: bytes, split: int) -> None:
    asm = FrameAssembler(t35_us(baud))
    split = min(split, len(frame))
    asm.feed(frame[:split], split, 0)
    asm.feed(frame[split:], len(frame) - split, char_us(baud))
    n = asm.poll(char_us(baud) + t35_us(baud))
    assert bytes(asm.frame[:n]) == frame


def _with_crc(body: bytes) -> bytes:
    crc = crc16(body, len(body))
    return body + bytes([crc & 0xFF, crc >> 8])


requests = st.one_of(
    st.tuples(st.sampled_from([1, 2, 3, 4, 5, 6]), st.binary(min_size=4, max_size=4)).map(
        lambda t: bytes([t[0]]) + t[1]
    ),
    st.binary(min_size=2, max_size=40)
    .filter(lambda d: len(d) % 2 == 0)
    .map(lambda d: bytes([16, 0, 0, 0, len(d) // 2, len(d)]) + d),
)


@given(
    unit=st.integers(1, 247),
    other=st.integers(1, 247),
    reply_body=st.binary(min_size=2, max_size=60),
    request=requests,
)
def test_request_at_the_tail_of_a_burst_is_found(unit: int, other: int, reply_body: bytes, request: bytes) -> None:
    if other == unit:
        other = unit % 247 + 1
    prefix = _with_crc(bytes([other]) + reply_body)
    ours = _with_crc(bytes([unit]) + request)
    burst = prefix + ours
    assert find_tail_request(burst, len(burst), unit) == len(prefix)
