"""Kernel wake-ups of the event loop's thread while the rest of a reply is on the wire (issue 13).

VMIN alone keeps the link's callback from running at each byte, but Linux's n_tty wakes every task
waiting on the port at each byte it receives: the loop's epoll_wait went back to sleep in the kernel
once per byte (a context switch each: about 40 per poll). The link now leaves epoll for most of the
rest's wire time. Counted here as the loop thread's voluntary context switches (getrusage of the
thread), with the node's side written byte by byte from another thread, as a paced line does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import threading
import time

from gateway.acquire.link import RtuLink
from gateway.protocols import modbus_rtu_master as rtu
from tests.support.waiting import wait_until_async

# Slow enough that the node's side, written from a thread with a few ms between bytes, always runs
# ahead of the wire even on a loaded host: the test is about the link, not about that thread's pace.
BAUD = 300
BYTE_SPACING = 0.005  # s between the bytes the node side writes (the wire takes 36.7 ms per byte)


def context_switches() -> int:
    """Voluntary context switches of the calling thread so far (it blocked in the kernel and was woken)."""
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw


async def read_request(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        with contextlib.suppress(BlockingIOError):  # nothing yet
            data += os.read(fd, n - len(data))
        if len(data) < n:
            await asyncio.sleep(0.002)
    return data


async def test_the_rest_of_a_paced_reply_does_not_wake_the_loop_thread_per_byte(line: tuple[int, str]) -> None:
    node, port = line
    os.set_blocking(node, False)
    link = RtuLink(port, baud=BAUD, garble_gap=0.5)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 20)
        task = asyncio.create_task(link.transact(request, timeout=30.0))
        assert await asyncio.wait_for(read_request(node, len(request.frame)), 10) == request.frame
        reply = rtu.encode_reply(request, rtu.Registers(tuple(range(20))))
        os.write(node, reply[:3])  # the header: the link now knows the reply's length
        await wait_until_async(lambda: link._received == 3, timeout=10.0)
        written = threading.Event()
        last_byte = [0.0]

        def paced() -> None:
            for byte in reply[3:]:
                time.sleep(BYTE_SPACING)
                os.write(node, bytes([byte]))
            last_byte[0] = time.monotonic()
            written.set()

        before = context_switches()
        writer = threading.Thread(target=paced)
        writer.start()
        exchange = await asyncio.wait_for(task, 30)
        switches = context_switches() - before
        writer.join(10)
        assert written.is_set()
        assert exchange.outcome == rtu.Registers(tuple(range(20)))
        assert exchange.completed >= last_byte[0] - 0.001  # never before its last byte
        # 42 bytes, each written on its own: the link used to be woken by the kernel for every one.
        assert switches <= 8, f"{switches} wake-ups of the loop thread for the last {len(reply) - 3} bytes"
    finally:
        link.close()


async def test_a_reply_that_stops_while_the_link_is_away_is_judged_by_silence(line: tuple[int, str]) -> None:
    node, port = line
    os.set_blocking(node, False)
    link = RtuLink(port, baud=BAUD, garble_gap=0.2)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 20)
        task = asyncio.create_task(link.transact(request, timeout=60.0))
        assert await asyncio.wait_for(read_request(node, len(request.frame)), 10) == request.frame
        reply = rtu.encode_reply(request, rtu.Registers(tuple(range(20))))
        os.write(node, reply[:3])
        await wait_until_async(lambda: link._away is not None, timeout=10.0)
        os.write(node, reply[3:10])  # then the node dies mid-reply
        exchange = await asyncio.wait_for(task, 30)
        # Line silence (the rest's wire time plus the garble gap, ~1.7 s here), not the 60 s timeout.
        assert exchange.outcome == rtu.FrameError("crc", "CRC mismatch in a 10-byte frame")
        assert exchange.completed - exchange.request_end < 10.0
        # The port is watched again: the next transaction sees its reply byte by byte as before.
        second = rtu.read_registers(1, 4, 0, 2)
        task = asyncio.create_task(link.transact(second, timeout=30.0))
        assert await asyncio.wait_for(read_request(node, len(second.frame)), 10) == second.frame
        os.write(node, rtu.encode_reply(second, rtu.Registers((7, 8))))
        assert (await asyncio.wait_for(task, 30)).outcome == rtu.Registers((7, 8))
    finally:
        link.close()
