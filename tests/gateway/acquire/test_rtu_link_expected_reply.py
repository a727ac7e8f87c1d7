"""A unit's reply read at its expected time: one wake-up per reply (issue 13, seventh round).

Once a unit's turnaround has been measured from a reply still coming in, the link leaves the port
unwatched after the request and comes back once, when the whole normal reply should be there
(RtuLink._expect_reply). What must hold whatever the node does: the reply is read whole and right,
never dated before its last byte; a reply that is late, cut, or still coming in is waited for as
before; a silent unit still times out; and a reply that came in one burst is not used for timing.
The node side is played by hand on a real pty, at a slow line so that the test's own pace (a loaded
host) stays far inside the times involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tty
from collections.abc import AsyncIterator

import pytest

from gateway.acquire.link import TURNAROUND_MARGIN, Exchange, NoReply, reply_shape
from gateway.protocols import modbus_rtu_master as rtu
from tests.gateway.acquire.test_rtu_link import CountingLink
from tests.gateway.acquire.test_rtu_link_callbacks import read_request
from tests.support.waiting import wait_until_async

BAUD = 2400  # 4.6 ms a character: a 13-byte reply is 60 ms on the wire
TURNAROUND = 0.02
REQUEST = rtu.read_registers(1, 4, 0, 4)
VALUES = rtu.Registers((1, 2, 3, 4))
REPLY = rtu.encode_reply(REQUEST, VALUES)
# The pty hands the request over at once: the node answers its turnaround after the request's end on the wire.
ANSWER_AFTER = rtu.wire_time(len(REQUEST.frame), BAUD) + TURNAROUND
SHAPE = reply_shape(REQUEST)


@contextlib.asynccontextmanager
async def timed_link(port: str, node: int, garble_gap: float = 1.0) -> AsyncIterator[CountingLink]:
    """An open link that has timed unit 1's turnaround from one reply it saw coming in (two bytes, then the rest)."""
    link = CountingLink(port, baud=BAUD, garble_gap=garble_gap)
    await link.open()
    try:
        await timed_by_its_header(link, node)
        yield link
    finally:
        link.close()


async def timed_by_its_header(link: CountingLink, node: int) -> None:
    task = asyncio.create_task(link.transact(REQUEST, timeout=5.0))
    await read_request(node, len(REQUEST.frame))
    await asyncio.sleep(ANSWER_AFTER)
    os.write(node, REPLY[:2])
    await wait_until_async(lambda: link._received == 2, timeout=10.0)
    os.write(node, REPLY[2:])
    assert (await asyncio.wait_for(task, 10)).outcome == VALUES
    assert SHAPE in link._turnaround


async def answered_at_once(link: CountingLink, node: int, reply: bytes = REPLY,
                           request: rtu.Request = REQUEST) -> Exchange:
    """A transaction whose reply the node side writes in one go as soon as it has the request."""
    task = asyncio.create_task(link.transact(request, timeout=5.0))
    await read_request(node, len(request.frame))
    os.write(node, reply)
    written = time.monotonic()
    exchange = await asyncio.wait_for(task, 10)
    assert exchange.completed >= written  # never dated before its last byte
    return exchange


async def test_a_unit_whose_turnaround_is_known_is_read_in_one_wake_up(line: tuple[int, str]) -> None:
    node, port = line
    async with timed_link(port, node) as link:
        measured = link._turnaround[SHAPE]
        # Measured from the read of the header, whose two bytes are taken to have come at the line's pace (here they
        # came at once: the start is counted their wire time early), late by the loop's wake-up at most.
        header = rtu.wire_time(2, BAUD)
        assert TURNAROUND - header + TURNAROUND_MARGIN - 0.001 <= measured < TURNAROUND + 1.0
        woken = link.wake_ups
        for _ in range(3):  # all there long before it is expected
            assert (await answered_at_once(link, node)).outcome == VALUES
        assert link.wake_ups == woken, "the port woke the link although the reply was expected"
        assert link._turnaround[SHAPE] < measured  # whole at its time: the next is expected a little earlier


async def test_a_reply_later_than_expected_is_waited_for_and_timed_again(line: tuple[int, str]) -> None:
    node, port = line
    async with timed_link(port, node) as link:
        task = asyncio.create_task(link.transact(REQUEST, timeout=5.0))
        await read_request(node, len(REQUEST.frame))
        await wait_until_async(lambda: SHAPE not in link._turnaround, timeout=10.0)  # came back: nothing there
        woken = link.wake_ups
        os.write(node, REPLY)
        written = time.monotonic()
        exchange = await asyncio.wait_for(task, 10)
        assert exchange.outcome == VALUES and exchange.completed >= written
        assert link.wake_ups == woken + 1  # the port, watched again, reported it
        assert SHAPE not in link._turnaround  # read whole at once: no timing from a burst
        await timed_by_its_header(link, node)  # and timed again by the next reply still coming in


async def test_a_reply_still_coming_in_at_its_expected_time_is_waited_for_and_re_measured(
    line: tuple[int, str],
) -> None:
    node, port = line
    async with timed_link(port, node) as link:
        task = asyncio.create_task(link.transact(REQUEST, timeout=5.0))
        await read_request(node, len(REQUEST.frame))
        os.write(node, REPLY[:5])
        await wait_until_async(lambda: link._received == 5, timeout=10.0)  # taken at the expected time
        assert link._away is not None  # away again, for the rest
        # Re-measured from the five bytes: they are taken to have come at the line's pace.
        started = link._last_rx - rtu.wire_time(5, BAUD)
        assert link._turnaround[SHAPE] == pytest.approx(started - link._request_end + TURNAROUND_MARGIN, abs=1e-9)
        os.write(node, REPLY[5:])
        written = time.monotonic()
        exchange = await asyncio.wait_for(task, 10)
        assert exchange.outcome == VALUES and exchange.completed >= written


async def test_a_silent_unit_still_times_out_and_is_timed_by_its_header_again(line: tuple[int, str]) -> None:
    node, port = line
    async with timed_link(port, node) as link:
        task = asyncio.create_task(link.transact(REQUEST, timeout=0.5))
        await read_request(node, len(REQUEST.frame))
        exchange = await asyncio.wait_for(task, 10)
        assert exchange.outcome == NoReply("timeout", "no reply")
        assert exchange.completed - exchange.request_end >= 0.5
        assert SHAPE not in link._turnaround


async def test_an_exception_reply_at_the_expected_time_is_read_whole(line: tuple[int, str]) -> None:
    node, port = line
    async with timed_link(port, node) as link:
        woken = link.wake_ups
        exchange = await answered_at_once(link, node, rtu.encode_reply(REQUEST, rtu.ExceptionReply(2)))
        assert exchange.outcome == rtu.ExceptionReply(2)
        assert link.wake_ups == woken


async def test_a_reply_read_whole_at_its_headers_wake_up_is_not_used_for_timing(line: tuple[int, str]) -> None:
    """An adapter that hands a reply over in one burst (its latency timer) says nothing of when it started."""
    node, port = line
    link = CountingLink(port, baud=BAUD, garble_gap=1.0)
    await link.open()
    try:
        assert (await answered_at_once(link, node)).outcome == VALUES
        assert link._turnaround == {}
    finally:
        link.close()


async def test_a_late_reply_of_another_unit_at_the_expected_time_is_skipped(line: tuple[int, str]) -> None:
    node, port = line
    async with timed_link(port, node) as link:
        other = rtu.read_registers(2, 4, 0, 4)
        late = rtu.encode_reply(other, rtu.Registers((9, 9, 9, 9)))
        assert (await answered_at_once(link, node, late + REPLY)).outcome == VALUES
        assert link.stats.stray_frames == 1


async def test_stray_bytes_after_a_reply_taken_at_its_time_are_counted_and_waited_out_before_the_next_request(
    line: tuple[int, str],
) -> None:
    """After a reply taken at its expected time the port is left out of the wake-ups (the next expected reply wants it
    out too): bytes that come between transactions are taken by the drain before the next request, counted as stray,
    and the request waits for the line's silence from then on, as for strays taken as they come."""
    node, port = line
    gap = 0.3
    async with timed_link(port, node, garble_gap=gap) as link:
        assert (await answered_at_once(link, node)).outcome == VALUES
        woken = link.wake_ups
        os.write(node, b"\x55\x56\x57")
        await asyncio.sleep(0.1)
        assert link.wake_ups == woken and link.stats.stray_bytes == 0  # not watched between transactions
        asked = time.monotonic()
        task = asyncio.create_task(link.transact(REQUEST, timeout=5.0))
        frame, arrived = await read_request(node, len(REQUEST.frame))
        assert frame == REQUEST.frame
        assert link.stats.stray_bytes == 3
        assert arrived - asked >= gap - 0.01  # silence from the drain that took them
        os.write(node, REPLY)
        assert (await asyncio.wait_for(task, 10)).outcome == VALUES


async def test_a_turnaround_is_learnt_per_request_shape_not_per_unit(line: tuple[int, str]) -> None:
    """A history window may take a node longer to prepare than its inputs: timing one says nothing of the other."""
    node, port = line
    async with timed_link(port, node) as link:
        window = rtu.read_registers(1, 3, 100, 8)
        woken = link.wake_ups
        reply = rtu.encode_reply(window, rtu.Registers(tuple(range(8))))
        assert (await answered_at_once(link, node, reply, window)).outcome == rtu.Registers(tuple(range(8)))
        assert link.wake_ups == woken + 1  # not expected: the header woke the link
        assert link._turnaround.keys() == {SHAPE}  # read whole at once: no timing for the window from a burst


async def test_a_port_that_goes_away_between_transactions_fails_the_next_at_once() -> None:
    """Between transactions the port may be out of the wake-ups (after a reply taken at its time), so the link hears
    of a vanished adapter only at the next request: that request must fail as a port failure then, not wait out its
    timeout, and the link must be closed for its owner to reopen."""
    node, follower = os.openpty()
    tty.setraw(follower)
    port = os.ttyname(follower)
    try:
        async with timed_link(port, node) as link:
            assert (await answered_at_once(link, node)).outcome == VALUES
            os.close(node)  # the adapter is unplugged: the port now fails every read and write
            node = -1
            exchange = await asyncio.wait_for(link.transact(REQUEST, timeout=5.0), 10)
            assert isinstance(exchange.outcome, NoReply) and exchange.outcome.reason == "io", exchange
            assert exchange.outcome.detail.startswith("port failed"), exchange
            assert exchange.completed - exchange.sent < 1.0
            assert not link.is_open
    finally:
        if node >= 0:
            os.close(node)
        os.close(follower)


async def test_a_reopened_port_times_its_units_again(line: tuple[int, str]) -> None:
    """A port is reopened after it failed: an adapter plugged back in, perhaps another one, with its own latency.
    Turnarounds learnt through the old one are not trusted: the first reply after the reopen is timed by its
    header, as at the start."""
    node, port = line
    async with timed_link(port, node) as link:
        link.close()
        await link.open()
        assert link._turnaround == {}
        woken = link.wake_ups
        assert (await answered_at_once(link, node)).outcome == VALUES
        assert link.wake_ups == woken + 1  # not expected: the header woke the link
