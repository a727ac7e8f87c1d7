"""Issue 9 review (audit9): HJ 212 edges a hostile platform or monitor can produce, over real loopback TCP.

* Parts of a split packet that disagree on PNUM (a buggy or hostile monitor) must be an error counted by
  reason, not an exception that ends the receiver's connection.
* A platform request without a PW is not authorised: it changes nothing and is refused (QnRtn 3).
* A platform that drops the connection in the middle of its reply frame: the sink fails that batch,
  reconnects, and the next delivery's reply is matched (the half frame of the old connection does not
  swallow it).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.deliver.hj212 import aclose
from gateway.deliver.hj212_listen import Received, Receiver
from gateway.deliver.sinks import SinkError
from gateway.model import Quality
from gateway.process.aggregate import Aggregate
from gateway.protocols import hj212
from gateway.protocols.hj212 import FrameError, Packet
from tests.gateway.deliver.test_hj212_sink import MN, T0, batch, make_sink, until  # the sink tests' builders


def minute_mean(start: float, value: float) -> Aggregate:
    return Aggregate("dust-1", "dust", "pm10_1min_mean", "pm10", "mean", "1min", start, start + 60, value, "ug/m3",
                     60, 60, True, Quality.NORMAL)


def part(pnum: int, pno: int, qn: str, value: str) -> Packet:
    return Packet(cn="2051", mn=MN, qn=qn, flag=hj212.flag_bits(True, True), pnum=pnum, pno=pno,
                  cp=((("DataTime", "20240105120000"),), (("a34002-Avg", value),)))


# -- split parts that disagree --------------------------------------------------------------------------------


def test_parts_that_disagree_on_pnum_are_a_frame_error_not_a_crash() -> None:
    joiner = hj212.Reassembler()
    assert joiner.add(part(3, 3, "20240105120000001", "1.0")) is None
    # The second part says the packet has 2 parts: with PNO 1 and 3 in hand, part 2 is missing.
    with pytest.raises(FrameError) as raised:
        joiner.add(part(2, 1, "20240105120000001", "2.0"))
    assert raised.value.reason == "bad_pno"
    assert joiner.errors["bad_pno"] == 1


async def test_a_monitor_sending_inconsistent_parts_keeps_its_connection_and_the_next_packet_counts() -> None:
    received: list[Received] = []
    receiver = Receiver(received.append)
    _, port = await receiver.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(part(3, 3, "20240105120000001", "1.0").encode())
        writer.write(part(2, 1, "20240105120000001", "2.0").encode())
        whole = Packet(cn="2051", mn=MN, qn="20240105120100001", flag=hj212.flag_bits(True, False),
                       cp=((("DataTime", "20240105120100"),), (("a34002-Avg", "3.0"),)))
        writer.write(whole.encode())
        await writer.drain()
        # Every packet that verified is acknowledged (9014), the inconsistent one too: its bytes were right.
        parser = hj212.StreamParser()
        replies: list[Packet | FrameError] = []
        deadline = time.monotonic() + 20
        while len(replies) < 3 and time.monotonic() < deadline:
            data = await asyncio.wait_for(reader.read(4096), 20)
            assert data, "the receiver closed the monitor's connection"
            replies += parser.feed(data)
        assert [r.cn for r in replies if isinstance(r, Packet)] == ["9014", "9014", "9014"]
        await until(lambda: len(received) == 1, "the whole packet after the bad parts")
        assert received[0].factors["a34002"].values == {"Avg": 3.0}
        assert receiver.errors["bad_pno"] == 1
        writer.close()
    finally:
        await receiver.close()


# -- a platform request without a password -------------------------------------------------------------------


async def test_a_platform_request_without_pw_is_refused_and_changes_nothing() -> None:
    received: list[Received] = []
    receiver = Receiver(received.append)
    _, port = await receiver.start()
    sink = make_sink(port)
    try:
        await sink.send(batch([minute_mean(T0, 1.0)]))  # opens the connection
        await until(lambda: len(received) == 1, "the first packet")
        no_pw = Packet(cn="1062", mn=MN, st="22", pw=None, qn="20240105120500123", flag=5,
                       cp=((("RtdInterval", "60"),),))
        await receiver.send(no_pw)
        await until(lambda: len(received) == 2, "the refusal")
        assert received[1].cn == "9011" and received[1].packet.cp_fields() == {"QnRtn": "3"}
        assert sink.uplink.rtd_interval == 30
    finally:
        await aclose(sink)
        await receiver.close()


# -- the platform drops the connection in the middle of a reply ----------------------------------------------


async def test_a_reply_cut_mid_frame_fails_that_batch_and_the_next_connection_is_matched() -> None:
    connections = 0
    packets: list[Packet] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        mine = connections
        parser = hj212.StreamParser()
        while data := await reader.read(4096):
            for item in parser.feed(data):
                assert isinstance(item, Packet)
                packets.append(item)
                answer = hj212.data_reply(item).encode()
                if mine == 1:  # half of the reply, then gone
                    writer.write(answer[: len(answer) // 2])
                    await writer.drain()
                    writer.close()
                    return
                writer.write(answer)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    sink = make_sink(server.sockets[0].getsockname()[1], reply=True, reply_timeout=20.0, retries=0)
    try:
        with pytest.raises(SinkError):
            await sink.send(batch([minute_mean(T0, 1.0)]))
        await until(lambda: not sink.connected, "the sink to see the drop")
        # Delivered again (the dispatcher retries the same batch): a new connection, and its reply counts.
        assert await sink.send(batch([minute_mean(T0, 1.0)])) == 1
        assert sink.counts["replies"] == 1 and sink.counts["reply_timeouts"] == 0
        assert connections == 2 and len(packets) == 2
    finally:
        await aclose(sink)
        server.close()


# -- a history request for weeks of minute data ---------------------------------------------------------------


async def test_a_history_request_for_weeks_of_minute_data_does_not_stall_the_event_loop() -> None:
    """The bus owners time their Modbus replies on the gateway's event loop: answering a platform's history
    request (tens of thousands of packets) must not hold the loop for the seconds it takes to build them."""
    days = 20
    rows = [
        Aggregate("dust-1", "dust", f"{source}_1min_{statistic}", source, statistic, "1min", T0 + 60 * i,
                  T0 + 60 * i + 60, 40.0 + i % 7, "ug/m3", 60, 60, True, Quality.NORMAL)
        for i in range(days * 1440) for source in ("pm10", "pm25", "tsp") for statistic in ("mean", "min", "max")
    ]
    answered = asyncio.Event()
    received = bytearray()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n")  # the sink's first packet: the connection is up
        request = Packet(cn="2051", mn=MN, pw="123456", qn="20240105120500123", flag=5,
                         cp=((("BeginTime", "20240105120000"), ("EndTime", "20240201000000")),))
        writer.write(request.encode())
        await writer.drain()
        while data := await reader.read(1 << 16):
            received.extend(data)
            if b"CN=9012" in received[-4096:]:
                answered.set()
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    sink = make_sink(server.sockets[0].getsockname()[1])
    sink.history = lambda window, begin, end: [r for r in rows if r.window == window and begin <= r.start <= end]
    lag = 0.0

    async def ticker() -> None:
        nonlocal lag
        while not answered.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lag = max(lag, time.monotonic() - before - 0.01)

    try:
        ticking = asyncio.create_task(ticker())
        started = time.monotonic()
        await sink.send(batch([minute_mean(T0, 1.0)]))  # opens the connection; the request follows
        await asyncio.wait_for(answered.wait(), 120)
        took = time.monotonic() - started
        await ticking
        packets = received.count(b"CN=2051")
        assert packets == days * 1440  # every window of the span, one packet each
        assert lag < took / 4, f"the event loop stood still for {lag:.2f} s of the {took:.2f} s the answer took"
    finally:
        await aclose(sink)
        server.close()


# -- the platform refuses an upload ---------------------------------------------------------------------------


@pytest.mark.parametrize(("qn_rtn", "taken"), [("1", True), ("3", False), ("4", False)])
async def test_a_9011_reply_takes_or_refuses_the_upload_by_its_qnrtn(qn_rtn: str, taken: bool) -> None:
    """9011 QnRtn=1 (request ready) is an acknowledgement as 9014 is; 3 (bad PW) or 4 (bad MN) refuses the batch:
    nothing is confirmed, the refusal is counted and said with its code, and the dispatcher will send it again."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = hj212.StreamParser()
        while data := await reader.read(4096):
            for item in parser.feed(data):
                assert isinstance(item, Packet)
                writer.write(hj212.request_reply(item, int(qn_rtn)).encode())
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    sink = make_sink(server.sockets[0].getsockname()[1], reply=True, reply_timeout=20.0, retries=0)
    try:
        if taken:
            assert await sink.send(batch([minute_mean(T0, 1.0)])) == 1
            assert sink.counts["replies"] == 1
        else:
            with pytest.raises(SinkError, match=f"QnRtn={qn_rtn}"):
                await sink.send(batch([minute_mean(T0, 1.0)]))
            assert sink.counts["rejected"] == 1 and sink.counts["replies"] == 0
    finally:
        await aclose(sink)
        server.close()
