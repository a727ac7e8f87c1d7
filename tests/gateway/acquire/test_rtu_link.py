"""RtuLink on a pseudo-terminal whose other side the test plays by hand, byte by byte.

These are the line situations a slow node or a busy host produces, scripted so that the outcome
does not depend on how fast the host is: the test decides when each byte is on the line, and
waits on what the link did (its counters, what it wrote) rather than on guessed delays.
"""

from __future__ import annotations

import asyncio
import os
import select
import time

from gateway.acquire.link import NoReply, RtuLink
from gateway.protocols import modbus_rtu_master as rtu

# Long enough that a loaded host cannot run past it by accident: the test checks what the link
# does inside this window, and the window only ever costs time after stray bytes.
SILENCE = 0.5


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



class CountingLink(RtuLink):
    """An RtuLink that counts how often the event loop woke it for incoming bytes."""

    wake_ups = 0

    def _readable(self) -> None:
        self.wake_ups += 1
        super()._readable()


async def test_the_rest_of_a_reply_of_known_length_costs_one_wake_up_not_one_per_byte(
    line: tuple[int, str],
) -> None:
    # A paced line hands a reply over byte by byte. Once the header says how long the reply is,
    # the link must sleep until all of it is there (issue 13: a wake-up per byte was most of the
    # gateway's CPU per poll), and still complete no earlier than its last byte.
    node, port = line
    link = CountingLink(port, baud=9600, garble_gap=SILENCE)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 20)
        task = asyncio.create_task(link.transact(request, timeout=5.0))
        assert await read_frame(node, len(request.frame)) == request.frame
        reply = reply_to(request, list(range(20)))
        os.write(node, reply[:3])
        await wait_for(lambda: link.wake_ups >= 1)
        for byte in reply[3:]:
            await asyncio.sleep(0.002)  # pacing only: the loop is free to wake the link for every byte
            os.write(node, bytes([byte]))
        last_byte_written = time.monotonic()
        exchange = await asyncio.wait_for(task, 10)
        assert exchange.outcome == rtu.Registers(tuple(range(20)))
        assert exchange.completed >= last_byte_written - 0.001  # never before its last byte
        assert link.wake_ups <= 4, f"{link.wake_ups} wake-ups for one {len(reply)}-byte reply"
        # The next transaction still sees single bytes at once (the port is back to byte by byte).
        second = rtu.read_registers(1, 4, 0, 2)
        task = asyncio.create_task(link.transact(second, timeout=5.0))
        assert await read_frame(node, len(second.frame)) == second.frame
        os.write(node, reply_to(second, [7, 8]))
        assert (await asyncio.wait_for(task, 10)).outcome == rtu.Registers((7, 8))
    finally:
        link.close()


async def test_a_reply_that_stops_after_its_header_is_garbled_not_a_timeout(line: tuple[int, str]) -> None:
    node, port = line
    link = RtuLink(port, baud=9600, garble_gap=0.05)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 20)
        task = asyncio.create_task(link.transact(request, timeout=5.0))
        assert await read_frame(node, len(request.frame)) == request.frame
        os.write(node, reply_to(request, list(range(20)))[:10])  # then the node dies mid-reply
        exchange = await asyncio.wait_for(task, 10)
        # Judged by line silence as before (the 10 bytes fail their CRC), not left to the timeout.
        assert exchange.outcome == rtu.FrameError("crc", "CRC mismatch in a 10-byte frame")
    finally:
        link.close()


async def test_bytes_held_back_while_waiting_for_the_rest_are_not_taken_for_silence(
    line: tuple[int, str],
) -> None:
    # The node pauses mid-reply (a USB adapter's latency timer does this): when the link wakes up
    # to judge silence, the bytes that came meanwhile prove the line was not silent; the reply
    # then completes normally. They come after the link is back from stepping away for the rest's
    # wire time (it read nothing then): held back by VMIN, their arrival times are unknown.
    node, port = line
    link = RtuLink(port, baud=9600, garble_gap=1.0)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 20)
        task = asyncio.create_task(link.transact(request, timeout=10.0))
        assert await read_frame(node, len(request.frame)) == request.frame
        reply = reply_to(request, list(range(20)))
        os.write(node, reply[:3])
        await wait_for(lambda: link._vmin == len(reply) - 3)  # waiting for the rest at once
        await wait_for(lambda: link._away is None)  # back from its wire time: the port is watched again
        os.write(node, reply[3:20])
        await wait_for(lambda: link._vmin == 0)  # it woke up to judge silence and found bytes
        assert not task.done()
        os.write(node, reply[20:])
        exchange = await asyncio.wait_for(task, 10)
        assert exchange.outcome == rtu.Registers(tuple(range(20)))
    finally:
        link.close()


async def test_a_timeout_counts_the_bytes_that_arrived_while_the_link_waited_for_the_rest(
    line: tuple[int, str],
) -> None:
    node, port = line
    link = RtuLink(port, baud=9600, garble_gap=SILENCE * 4)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 20)
        task = asyncio.create_task(link.transact(request, timeout=1.0))
        assert await read_frame(node, len(request.frame)) == request.frame
        reply = reply_to(request, list(range(20)))
        os.write(node, reply[:3])
        await wait_for(lambda: link._vmin == len(reply) - 3)
        os.write(node, reply[3:20])
        exchange = await asyncio.wait_for(task, 10)
        assert exchange.outcome == NoReply("timeout", "reply incomplete after 20 bytes")
    finally:
        link.close()


async def test_a_reply_of_one_byte_is_judged_short_not_a_timeout(line: tuple[int, str]) -> None:
    # A lone byte followed by silence is a short frame (the node answered something), judged by
    # the garble gap, not the timeout; a link that waits for several bytes before it wakes up
    # (VMIN) must keep it so.
    node, port = line
    link = RtuLink(port, baud=9600, garble_gap=0.05)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 20)
        task = asyncio.create_task(link.transact(request, timeout=0.3))
        assert await read_frame(node, len(request.frame)) == request.frame
        os.write(node, b"\x01")
        exchange = await asyncio.wait_for(task, 10)
        assert exchange.outcome == rtu.FrameError("short", "1 bytes is shorter than any reply")
    finally:
        link.close()


async def test_a_reply_that_arrives_all_but_its_last_byte_at_once_completes_on_that_byte(
    line: tuple[int, str],
) -> None:
    # A USB adapter hands over bursts: one read may bring everything but the last byte. The link
    # must then see that single byte at once, not at the garble gap (5 s here) or the timeout.
    node, port = line
    link = RtuLink(port, baud=9600, garble_gap=5.0)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 20)
        task = asyncio.create_task(link.transact(request, timeout=20.0))
        assert await read_frame(node, len(request.frame)) == request.frame
        reply = reply_to(request, list(range(20)))
        os.write(node, reply[:-1])
        await wait_for(lambda: link._received == len(reply) - 1)
        os.write(node, reply[-1:])
        exchange = await asyncio.wait_for(task, 4.0)  # generous, and still short of the garble gap
        assert exchange.outcome == rtu.Registers(tuple(range(20)))
    finally:
        link.close()
