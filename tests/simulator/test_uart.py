"""The UART model: what a receiver samples from characters sent at other line settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.uart import (
    STANDARD_BAUDS,
    Character,
    LineSettings,
    fifo_bytes,
    line_bits,
    receive,
    termios_bytes,
)

REQUEST = bytes.fromhex("010400000001 31ca")  # read input register 0 of unit 1
lines = st.builds(LineSettings, st.sampled_from(STANDARD_BAUDS), st.sampled_from("NEO"), st.sampled_from((1, 2)))


def test_line_bits_of_one_character() -> None:
    # 0x01 at 8E1: start, data LSB first, parity (one 1-bit: even parity bit is 1), stop.
    assert line_bits(b"\x01", LineSettings(9600, "E")) == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert line_bits(b"\x01", LineSettings(9600, "O")) == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert line_bits(b"\x80", LineSettings(9600, "N", 2)) == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]


@given(data=st.binary(max_size=40), line=lines)
def test_matching_settings_deliver_every_byte_intact(data: bytes, line: LineSettings) -> None:
    # Also through the bit-level path: another stop bit count is the same line to a UART.
    other = LineSettings(line.baud, line.parity, 3 - line.stopbits)
    assert receive(data, line, line) == [Character(b) for b in data]
    assert fifo_bytes(receive(data, line, other)) == data
    assert not any(c.parity_error or c.framing_error for c in receive(data, line, other))


@given(data=st.binary(min_size=1, max_size=40), sender=lines, receiver=lines)
def test_a_receiver_never_gets_more_characters_than_its_bit_times_allow(
    data: bytes, sender: LineSettings, receiver: LineSettings
) -> None:
    chars = receive(data, sender, receiver)
    sent_time = len(line_bits(data, sender)) / sender.baud
    # Each character it samples starts at a falling edge and takes at least 9.5 of its bits.
    assert len(chars) <= len(line_bits(data, sender))
    assert len(chars) * 9 / receiver.baud <= sent_time + 10 / receiver.baud


def test_a_wrong_baud_rate_gives_wrong_bytes_and_framing_errors() -> None:
    chars = receive(REQUEST, LineSettings(9600), LineSettings(19200))
    assert fifo_bytes(chars) != REQUEST
    assert any(c.framing_error for c in chars)
    # Twice as fast: each slow character looks like more than one fast one.
    assert len(chars) > len(REQUEST)
    assert len(receive(REQUEST, LineSettings(19200), LineSettings(9600))) < len(REQUEST)


def test_a_wrong_parity_gives_parity_errors_the_gateway_reads_as_zero_bytes() -> None:
    chars = receive(REQUEST, LineSettings(9600, "E"), LineSettings(9600, "O"))
    assert [c.byte for c in chars] == list(REQUEST)  # the data bits are right ...
    assert all(c.parity_error for c in chars)  # ... and every parity bit wrong
    assert termios_bytes(chars, check_parity=True) == bytes(len(REQUEST))
    assert termios_bytes(chars, check_parity=False) == REQUEST


def test_8e1_heard_at_8n1_keeps_the_data_with_framing_errors_on_zero_parity_bits() -> None:
    chars = receive(REQUEST, LineSettings(9600, "E"), LineSettings(9600, "N"))
    assert [c.byte for c in chars] == list(REQUEST)
    expected = [bin(b).count("1") % 2 == 0 for b in REQUEST]  # even parity bit 0 -> read as a stop bit: error
    assert [c.framing_error for c in chars] == expected


def test_a_break_is_dropped_with_ignbrk() -> None:
    brk = Character(0, framing_error=True)
    assert termios_bytes([brk], check_parity=True) == b""
    assert termios_bytes([brk], check_parity=False, ignore_break=False) == b"\x00"


@pytest.mark.parametrize(
    ("text", "line"),
    [("9600", LineSettings(9600)), ("19200 8E1", LineSettings(19200, "E")), ("4800-8n2", LineSettings(4800, "N", 2))],
)
def test_line_settings_parse(text: str, line: LineSettings) -> None:
    assert LineSettings.parse(text) == line
    assert LineSettings.parse(str(line)) == line


@pytest.mark.parametrize(("text", "problem"), [("fast", "baud rate 'fast'"), ("9600 7E1", "7E1"), ("", "expected")])
def test_bad_line_settings_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        LineSettings.parse(text)
