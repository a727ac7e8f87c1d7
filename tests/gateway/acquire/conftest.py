"""Fixtures of the acquisition tests."""

from __future__ import annotations

import os
import tty
from collections.abc import Iterator

import pytest


@pytest.fixture
def line() -> Iterator[tuple[int, str]]:
    """A pty: (the node side's fd, the port the link opens)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)
