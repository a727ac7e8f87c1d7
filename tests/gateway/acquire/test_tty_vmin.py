"""VMIN in one ioctl (issue 13): the kernel's struct termios written back with only VMIN changed, on a real pty."""

from __future__ import annotations

import os
import termios
import tty
from collections.abc import Iterator

import pytest

from gateway.acquire.link import open_serial
from gateway.acquire.tty_vmin import VminSetter


@pytest.fixture
def port() -> Iterator[int]:
    """A pty's port side opened as the link opens its serial port (raw, non-blocking, 19200 8N1)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    fd = open_serial(os.ttyname(slave), 19200, "N", 1)
    try:
        yield fd
    finally:
        os.close(fd)
        os.close(master)
        os.close(slave)


def test_vmin_is_set_in_one_call_and_nothing_else_changes(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    before = termios.tcgetattr(port)
    setter = VminSetter(port, termios.tcgetattr(port))
    assert setter.one_call  # the layout matched on this machine: the fast path is the one measured

    def no_tcsetattr(*args: object) -> None:
        raise AssertionError("termios.tcsetattr called: the one-ioctl path was not taken")

    monkeypatch.setattr(termios, "tcsetattr", no_tcsetattr)
    for count in (43, 255, 1, 0):
        setter.set(port, count)
        now = termios.tcgetattr(port)
        assert now[6][termios.VMIN] == count
        assert now[:6] == before[:6]  # flags and speeds
        assert now[6][termios.VTIME] == before[6][termios.VTIME]


def test_an_unexpected_layout_falls_back_to_tcsetattr(port: int) -> None:
    attrs = termios.tcgetattr(port)
    wrong = list(attrs)
    wrong[3] = attrs[3] ^ termios.ECHO  # what TCGETS returns no longer matches: not the layout expected
    setter = VminSetter(port, wrong)
    assert not setter.one_call
    setter.attrs = attrs  # the fallback writes the attributes it holds
    setter.set(port, 9)
    assert termios.tcgetattr(port)[6][termios.VMIN] == 9
