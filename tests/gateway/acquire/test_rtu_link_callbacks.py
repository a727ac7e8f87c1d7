"""RtuLink's transaction in the event loop's callbacks (issue 13, fifth round).

The wait for a quiet line and the write now run in a timer callback, and the port is watched through
its own epoll set (stepping away while the rest of a reply is on the wire is one epoll_ctl on it). What
that must not change, or must get right, on a real pty whose node side the test plays by hand: a
transaction stopped while it waits for the line writes nothing later, a port closed meanwhile ends it
as "port closed", the t3.5 gap before the next request holds, and the loop's own selector is left alone
for the whole transaction.
"""

from __future__ import annotations

import asyncio
import os
import select
import time
import tty
from typing import Any

import pytest

from gateway.acquire.link import NoReply, RtuLink
from gateway.protocols import modbus_rtu_master as rtu
from tests.gateway.acquire.test_rtu_link import CountingLink
from tests.support.waiting import wait_until_async

BAUD = 19200


def pending_bytes(fd: int) -> bytes:
    """What the link wrote that the node side has not read yet (nothing: b"")."""
    data = b""
    while select.select([fd], [], [], 0)[0]:
        data += os.read(fd, 1024)
    return data


async def read_request(fd: int, n: int, timeout: float = 10.0) -> tuple[bytes, float]:
    """The next n bytes the link wrote, and when the last of them was seen (generous deadline)."""
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < n:
        assert time.monotonic() < deadline, f"the link wrote {data!r}, expected {n} bytes"
        data += pending_bytes(fd)
        if len(data) < n:
            await asyncio.sleep(0.0005)
    return data, time.monotonic()


async def answered(link: RtuLink, node: int, request: rtu.Request) -> rtu.Reply | NoReply:
    task = asyncio.create_task(link.transact(request, timeout=10.0))
    frame, _ = await read_request(node, len(request.frame))
    assert frame == request.frame
    os.write(node, rtu.encode_reply(request, rtu.Registers(tuple(range(request.count)))))
    return (await asyncio.wait_for(task, 30)).outcome


async def test_a_transaction_cancelled_while_it_waits_for_a_quiet_line_writes_nothing_later(
    line: tuple[int, str],
) -> None:
    node, port = line
    # A long garble gap: stray bytes keep the request waiting for 2 s of silence.
    link = RtuLink(port, baud=BAUD, garble_gap=2.0)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 4)
        assert await answered(link, node, request) == rtu.Registers((0, 1, 2, 3))
        os.write(node, b"\x55\x55")  # a chattering device: the next request must wait
        await wait_until_async(lambda: bool(link._rx), timeout=10.0)  # the reader has them
        task = asyncio.create_task(link.transact(request, timeout=30.0))
        await wait_until_async(lambda: link.stats.stray_bytes == 2, timeout=10.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(2.5)  # past the garble gap the cancelled wait would have ended at
        assert pending_bytes(node) == b"", "a cancelled transaction wrote its request later"
        assert link.stats.transactions == 1
        # The link still works: the next transaction goes out and gets its reply.
        assert await answered(link, node, request) == rtu.Registers((0, 1, 2, 3))
    finally:
        link.close()


async def test_closing_the_port_while_a_request_waits_for_the_line_ends_it_as_port_closed(
    line: tuple[int, str],
) -> None:
    node, port = line
    link = RtuLink(port, baud=BAUD, garble_gap=2.0)
    await link.open()
    request = rtu.read_registers(1, 4, 0, 4)
    assert await answered(link, node, request) == rtu.Registers((0, 1, 2, 3))
    os.write(node, b"\x55")
    task = asyncio.create_task(link.transact(request, timeout=30.0))
    await wait_until_async(lambda: link.stats.stray_bytes == 1, timeout=10.0)
    link.close()
    exchange = await asyncio.wait_for(task, 10)
    assert exchange.outcome == NoReply("io", "port closed")
    assert exchange.sent == exchange.request_end == exchange.completed
    assert pending_bytes(node) == b""


async def test_the_next_request_waits_t35_after_the_last_reply_byte(line: tuple[int, str]) -> None:
    node, port = line
    link = RtuLink(port, baud=BAUD)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 4)
        for _ in range(5):
            task = asyncio.create_task(link.transact(request, timeout=10.0))
            await read_request(node, len(request.frame))
            os.write(node, rtu.encode_reply(request, rtu.Registers((1, 2, 3, 4))))
            replied = time.monotonic()  # the pty hands the reply over at once: its last byte is there now
            exchange = await asyncio.wait_for(task, 30)
            assert exchange.outcome == rtu.Registers((1, 2, 3, 4))
            task = asyncio.create_task(link.transact(request, timeout=10.0))
            _, seen = await read_request(node, len(request.frame))
            assert seen - replied >= link.t35  # never early; how late depends on the host
            os.write(node, rtu.encode_reply(request, rtu.Registers((1, 2, 3, 4))))
            assert (await asyncio.wait_for(task, 30)).outcome == rtu.Registers((1, 2, 3, 4))
    finally:
        link.close()


async def test_a_transaction_leaves_the_event_loops_selector_alone(
    line: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stepping away from the port and back goes through the port's own epoll set (one epoll_ctl each), not
    through the loop's remove_reader/add_reader (their bookkeeping cost more than the system call)."""
    node, port = line
    link = RtuLink(port, baud=BAUD)
    await link.open()
    loop = asyncio.get_running_loop()
    calls: list[str] = []

    def counted(name: str) -> Any:
        original = getattr(loop, name)

        def call(*args: Any) -> Any:
            calls.append(name)
            return original(*args)

        return call

    monkeypatch.setattr(loop, "add_reader", counted("add_reader"))
    monkeypatch.setattr(loop, "remove_reader", counted("remove_reader"))
    try:
        request = rtu.read_registers(1, 4, 0, 40)  # an 85-byte reply: the link steps away for its rest
        task = asyncio.create_task(link.transact(request, timeout=10.0))
        await read_request(node, len(request.frame))
        reply = rtu.encode_reply(request, rtu.Registers(tuple(range(40))))
        os.write(node, reply[:3])
        await wait_until_async(lambda: link._away is not None, timeout=10.0)  # it stepped away
        os.write(node, reply[3:])
        exchange = await asyncio.wait_for(task, 30)
        assert exchange.outcome == rtu.Registers(tuple(range(40)))
        assert link._away is None
        assert calls == []
    finally:
        link.close()


async def test_the_first_two_bytes_of_a_reply_cost_one_wake_up(line: tuple[int, str]) -> None:
    """The port is made readable only once the two bytes that tell a reply's length are there (VMIN 2 from the
    request on): its first byte alone no longer wakes the loop. Paced by hand, a byte at a time."""
    node, port = line
    link = CountingLink(port, baud=BAUD, garble_gap=5.0)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 4)
        reply = rtu.encode_reply(request, rtu.Registers((1, 2, 3, 4)))
        task = asyncio.create_task(link.transact(request, timeout=30.0))
        await read_request(node, len(request.frame))
        os.write(node, reply[:1])
        await asyncio.sleep(0.2)  # the loop is free to wake the link for that byte: it must not
        assert link.wake_ups == 0 and link._received == 0
        os.write(node, reply[1:2])
        await wait_until_async(lambda: link._received == 2, timeout=10.0)
        assert link.wake_ups == 1
        os.write(node, reply[2:])
        assert (await asyncio.wait_for(task, 30)).outcome == rtu.Registers((1, 2, 3, 4))
        # Between transactions the port stays at two bytes (no ioctl per transaction): stray bytes are taken as
        # they come, two at a time; a lone one waits for the drain before the next request (below).
        os.write(node, b"\x55\x56")
        await wait_until_async(lambda: len(link._rx) == 2, timeout=10.0)
    finally:
        link.close()


async def test_a_lone_stray_byte_between_transactions_is_counted_and_waited_out_before_the_next_request(
    line: tuple[int, str],
) -> None:
    """Between transactions VMIN stays at the two bytes of a reply's header, so a single stray byte does not wake
    the loop: the drain before the next request takes it, counts it, and the request waits for the line's silence
    from then on (the garble gap), as for stray bytes taken as they come."""
    node, port = line
    gap = 0.3
    link = RtuLink(port, baud=BAUD, garble_gap=gap)
    await link.open()
    try:
        first = rtu.read_registers(1, 4, 0, 2)
        task = asyncio.create_task(link.transact(first, timeout=5.0))
        await read_request(node, len(first.frame))
        os.write(node, rtu.encode_reply(first, rtu.Registers((1, 2))))
        assert (await asyncio.wait_for(task, 10)).outcome == rtu.Registers((1, 2))
        os.write(node, b"\x55")
        await asyncio.sleep(0.1)
        assert not link._rx and link.stats.stray_bytes == 0  # held back by VMIN: not reported alone
        second = rtu.read_registers(1, 4, 0, 2)
        asked = time.monotonic()
        task = asyncio.create_task(link.transact(second, timeout=5.0))
        frame, arrived = await read_request(node, len(second.frame))
        assert frame == second.frame
        assert link.stats.stray_bytes == 1
        assert arrived - asked >= gap - 0.01  # silence from the drain that took it, not from the byte's arrival
        os.write(node, rtu.encode_reply(second, rtu.Registers((3, 4))))
        assert (await asyncio.wait_for(task, 10)).outcome == rtu.Registers((3, 4))
    finally:
        link.close()


async def test_a_reply_cut_after_its_first_byte_is_still_judged_short_by_silence(line: tuple[int, str]) -> None:
    """The price of the one wake-up above: a lone byte is taken in at the node's timeout, then judged by the
    line's silence as a short frame (not as a timeout, and not cut early)."""
    node, port = line
    link = RtuLink(port, baud=BAUD, garble_gap=0.05)
    await link.open()
    try:
        request = rtu.read_registers(1, 4, 0, 20)
        task = asyncio.create_task(link.transact(request, timeout=0.3))
        await read_request(node, len(request.frame))
        os.write(node, b"\x01")
        exchange = await asyncio.wait_for(task, 10)
        assert exchange.outcome == rtu.FrameError("short", "1 bytes is shorter than any reply")
        assert exchange.completed - exchange.request_end >= 0.3  # its byte was taken in at the timeout
        # The next transaction is not disturbed by it.
        assert await answered(link, node, request) == rtu.Registers(tuple(range(20)))
    finally:
        link.close()


async def test_a_request_the_port_refuses_is_still_dated_by_its_wire_time() -> None:
    """The poller dates a failed poll's readings from the request's end on the wire: a write that fails (the
    adapter gone: the pty's other side closed) must still give the request's end, not a placeholder."""
    master, slave = os.openpty()
    tty.setraw(slave)
    link = RtuLink(os.ttyname(slave), baud=BAUD)
    try:
        await link.open()
        os.close(master)  # hangs the port up: its next write fails (EIO)
        master = -1
        request = rtu.read_registers(1, 4, 0, 4)
        exchange = await link.transact(request, timeout=1.0)  # the line is quiet: the write happens in this call
        assert isinstance(exchange.outcome, NoReply) and exchange.outcome.reason == "io"
        assert exchange.request_end == pytest.approx(exchange.sent + rtu.wire_time(len(request.frame), BAUD))
        assert exchange.completed >= exchange.request_end
    finally:
        link.close()
        if master >= 0:
            os.close(master)
        os.close(slave)
