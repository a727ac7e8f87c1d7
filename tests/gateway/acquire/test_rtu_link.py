"""RtuLink on a pseudo-terminal whose other side the test plays by hand, byte by byte.

These are the line situations a slow node or a busy host produces, scripted so that the outcome
does not depend on how fast the host is: the test decides when each byte is on the line, and
waits on what the link did (its counters, what it wrote) rather than on guessed delays.
"""

from __future__ import annotations

import asyncio
import os
import select
import tty
from collections.abc import Iterator

import pytest

from gateway.acquire.link import NoReply, RtuLink
from gateway.protocols import modbus_rtu_master as rtu

# Long enough that a loaded host cannot run past it by accident: the test checks what the link
# does inside this window, and the window only ever costs time after stray bytes.
SILENCE = 0.5


@pytest.fixture
def line() -> Iterator[tuple[int, str]]:
    """A pty: (the node side's fd, the port the link opens)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        yield master, path
    finally:
        os.close(master)
        os.close(slave)


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


async def read_frame(fd: int, n: int, timeout: float = 10.0) -> bytes:
    """The next n bytes the link wrote (generous deadline: the link may be starved)."""
    data = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(data) < n:
        assert loop.time() < deadline, f"the link wrote {data!r}, expected {n} bytes"
        if readable(fd):
            data += os.read(fd, n - len(data))
        else:
            await asyncio.sleep(0.002)
    return data


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.002)


def reply_to(request: rtu.Request, values: list[int]) -> bytes:
    return rtu.encode_reply(request, rtu.Registers(tuple(values)))


async def test_a_late_reply_still_on_the_line_is_waited_out_not_merged_into_the_next_reply(
    line: tuple[int, str],
) -> None:
    # A slow node answers after the link gave up on it. On a real line a request sent now would
    # collide with the rest of that reply; here its tail would run into the next reply and fail
    # its CRC. The link must wait for the line to fall silent, drop the late bytes (counted) and
    # only then send.
    node, port = line
    link = RtuLink(port, baud=9600, garble_gap=SILENCE)
    await link.open()
    try:
        first = rtu.read_registers(1, 4, 0, 4)
        second = rtu.read_registers(1, 4, 0, 4)
        gave_up = await link.transact(first, timeout=0.02)
        assert isinstance(gave_up.outcome, NoReply) and gave_up.outcome.reason == "timeout"
        assert await read_frame(node, len(first.frame)) == first.frame
        late = reply_to(first, [1, 2, 3, 4])
        os.write(node, late[:5])  # the late reply has begun
        task = asyncio.create_task(link.transact(second, timeout=1.0))
        await wait_for(lambda: link.stats.stray_bytes >= 5)
        await asyncio.sleep(0)
        assert not readable(node), "the link talked over a reply still coming in"
        os.write(node, late[5:])  # ...and ends
        assert await read_frame(node, len(second.frame)) == second.frame
        os.write(node, reply_to(second, [5, 6, 7, 8]))
        exchange = await asyncio.wait_for(task, 10)
        assert exchange.outcome == rtu.Registers((5, 6, 7, 8))
        assert link.stats.stray_bytes == len(late)  # every late byte counted, none taken as the reply
    finally:
        link.close()


async def test_a_line_that_never_falls_silent_does_not_block_the_link_forever(line: tuple[int, str]) -> None:
    # A chattering device: bytes keep coming. The link waits for silence at most the
    # transaction's timeout, then sends anyway and judges whatever comes.
    node, port = line
    link = RtuLink(port, baud=9600, garble_gap=SILENCE)
    await link.open()
    chatter = asyncio.Event()

    async def chatter_on() -> None:
        while not chatter.is_set():
            os.write(node, b"\xaa")
            await asyncio.sleep(0.01)

    os.write(node, b"\xaa")  # already chattering when the link wants the line
    noise = asyncio.create_task(chatter_on())
    try:
        request = rtu.read_registers(1, 4, 0, 2)
        exchange = await asyncio.wait_for(link.transact(request, timeout=0.2), 10)
        assert not isinstance(exchange.outcome, rtu.Registers)
        assert link.stats.stray_bytes > 0
    finally:
        chatter.set()
        await noise
        link.close()

