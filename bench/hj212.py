"""HJ 212 throughput: the codec on its own, and the sink delivering to the `listen` receiver on loopback.

1. Codec: a full real-time packet of a dust + wind + noise site (10 factors,
   about 330 bytes) encoded (CRC included), then fed to the stream parser:
   packets per second each way, on one core.
2. Sink: 2,000 minute packets (one aggregate each, distinct window starts)
   from the sink to the receiver on 127.0.0.1, with reply = false and with
   reply = true (each packet waits for its 9014). Packets per second.

A site sends one 2011 packet per RtdInterval and one 2051 per minute per MN:
the figures only need to be far above that. Runs in a few seconds.

    python bench/hj212.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.deliver.hj212 import Hj212Sink, aclose
from gateway.deliver.hj212_listen import Received, Receiver
from gateway.deliver.hj212_session import Settings, Uplink, factor_table
from gateway.deliver.queue import Batch, Queued
from gateway.model import Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.protocols import hj212

T0 = 1_704_427_200.0
PACKETS = 2_000
SITE_KINDS = ("dust", "wind", "noise")


def codec() -> None:
    up = Uplink(Settings(mn="88888880000001"))
    readings = [  # every real-time factor of a dust, wind and noise node (the kinds' profiles' [hj212] tables)
        Reading("n", kind, channel, 123.456, "", Quality.NORMAL, T0, 1)
        for (kind, channel) in factor_table().realtime if kind in SITE_KINDS
    ]
    up.records(readings, T0)
    (packet,) = up.flush_realtime(T0)
    wire = packet.encode()
    rounds = 5_000
    started = time.perf_counter()
    for _ in range(rounds):
        packet.encode()
    encode_rate = rounds / (time.perf_counter() - started)
    parser = hj212.StreamParser()
    stream = wire * rounds
    started = time.perf_counter()
    found = len(parser.feed(stream))
    decode_rate = found / (time.perf_counter() - started)
    print(f"codec: {len(wire)}-byte 2011 packet: encode {encode_rate:,.0f}/s, stream-parse {decode_rate:,.0f}/s")


async def sink(reply: bool) -> None:
    got: list[Received] = []
    receiver = Receiver(got.append)
    _, port = await receiver.start()
    out = Hj212Sink("hj212", "127.0.0.1", port, "88888880000001", reply=reply, reply_timeout=30.0)
    records = [
        Aggregate("n", "dust", "pm10_1min_mean", "pm10", "mean", "1min", T0 + 60 * i, T0 + 60 * (i + 1), 80.0,
                  "ug/m3", 60, 60, True, Quality.NORMAL)
        for i in range(PACKETS)
    ]
    batch = Batch("q", tuple(Queued(i + 1, "aggregate", r) for i, r in enumerate(records)))
    started = time.perf_counter()
    # The sink holds back a batch's last window (whole_windows: its other statistics may follow in the next
    # batch): what it sends is what it says it delivered.
    sent = await out.send(batch)
    while len(got) < sent:
        if time.perf_counter() - started > 120:
            raise SystemExit(f"the receiver got {len(got)} of {sent} packets in 120 s")
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    await aclose(out)
    await receiver.close()
    print(f"sink -> listen on loopback, reply={str(reply).lower()}: {sent / elapsed:,.0f} packets/s ({sent} packets)")


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    codec()
    asyncio.run(sink(False))
    asyncio.run(sink(True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
