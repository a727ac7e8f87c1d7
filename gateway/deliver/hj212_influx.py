"""What `sitewatch hj212 listen` receives, written to InfluxDB (docs/influxdb-schema.md, measurement `hj212`).

A bureau takes in vendor dust monitors that already speak HJ 212 next to
sitewatch gateways: each data packet (CN 2011 / 2051 / 2061 / 2031) becomes
one point per factor, identified by MN, CN, factor and DataTime, so a
packet the monitor sends again (it does, when an acknowledgement was lost)
is the same point, not a second one.

``packet_lines`` is sans-IO (a ``Received`` -> lines, with what was left out
counted). ``InfluxPacketWriter`` buffers the lines and posts them from a
worker thread (the receiver's event loop never waits on the network),
through the InfluxDB sink's writers (gateway/deliver/influx.py): a failed
post is retried with backoff, its lines kept; beyond ``max_pending`` lines
the oldest are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.deliver.hj212_listen import DATA_CNS, Received
from gateway.deliver.influx import Refused, Writer, post_lines
from gateway.deliver.line_protocol import QUALITY_CODES, FieldValue, LineProtocolError, line, timestamp
from gateway.deliver.sinks import SinkError, SinkFatalError
from gateway.model import Quality
from gateway.protocols.hj212 import FrameError, parse_time

log = logging.getLogger(__name__)

MEASUREMENT = "hj212"
PRECISION = "s"  # DataTime has whole seconds
# Value suffixes -> field keys (lower case, like the rest of the schema); "value" is Rtd, else Avg.
VALUE_FIELDS = {"Rtd": "rtd", "Avg": "avg", "Min": "min", "Max": "max", "Cou": "cou"}
_QUALITY_BY_FLAG = {quality.value: quality for quality in Quality}


@dataclass
class PacketCounts:
    packets: int = 0  # data packets turned into points
    points: int = 0  # lines made (one per factor)
    not_data: int = 0  # packets of a CN that carries no measurements (requests, replies): nothing to write
    no_time: int = 0  # data packets without a readable DataTime: not written (a point needs its time)
    empty_factors: int = 0  # factors with neither a number nor a flag: no point
    not_numbers: int = 0  # values that were not numbers (or not finite): left out of their point
    unencodable: int = 0  # factors whose MN, CN or code line protocol cannot carry


def packet_lines(received: Received, utc_offset_s: int, counts: PacketCounts) -> list[str]:
    """The points of one received packet: one per factor, stamped with its DataTime (local time at `utc_offset_s`)."""
    if received.cn not in DATA_CNS:
        counts.not_data += 1
        return []
    if received.data_time is None:
        counts.no_time += 1
        log.warning("hj212 influx: %s: packet QN %s (MN %s, CN %s) has no DataTime: not written",
                    received.peer, received.packet.qn, received.mn, received.cn)
        return []
    try:
        stamp = timestamp(parse_time(received.data_time, utc_offset_s, "DataTime"), PRECISION)
    except (FrameError, LineProtocolError, ValueError) as error:
        counts.no_time += 1
        log.warning("hj212 influx: %s: packet QN %s: DataTime %r: %s: not written", received.peer,
                    received.packet.qn, received.data_time, error)
        return []
    out = []
    for code, factor in received.factors.items():
        fields: dict[str, FieldValue] = {}
        for suffix, value in factor.values.items():
            if value is None or not math.isfinite(value):
                counts.not_numbers += 1
                continue
            fields[VALUE_FIELDS[suffix]] = float(value)
        main = factor.value
        if main is not None and math.isfinite(main):
            fields["value"] = float(main)
        if factor.flag is not None:
            fields["quality"] = factor.flag
            quality = _QUALITY_BY_FLAG.get(factor.flag)
            if quality is not None:  # a vendor's own flag has no code: the string is kept
                fields["quality_code"] = QUALITY_CODES[quality]
        if not fields:
            counts.empty_factors += 1
            continue
        tags = {"mn": received.mn, "cn": received.cn, "factor": code, "st": received.packet.st}
        try:
            out.append(line(MEASUREMENT, tags, fields, stamp))
        except LineProtocolError as error:
            counts.unencodable += 1
            log.warning("hj212 influx: %s: MN %s factor %r cannot be written: %s", received.peer, received.mn,
                        code, error)
    counts.packets += 1
    counts.points += len(out)
    return out


@dataclass
class WriterStats:
    written: int = 0  # points the server took
    requests: int = 0
    failures: int = 0  # posts that failed (retried)
    dropped: int = 0  # points dropped: the buffer was full while InfluxDB could not be reached
    beyond_retention: int = 0  # points the server dropped as older than its retention policy
    refused: int = 0  # points the server refused for good (400: a field type conflict ...), dropped
    last_error: str = ""


class InfluxPacketWriter:
    """A packet writer for the receiver: call it with each ``Received``; ``run`` posts what is buffered."""

    def __init__(
        self,
        writer: Writer,
        utc_offset_s: int = 8 * 3600,
        name: str = "hj212-influx",
        batch_size: int = 5000,
        max_pending: int = 1_000_000,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        on_error: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.writer = writer
        self.utc_offset_s = utc_offset_s
        self.name = name
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_error = on_error
        self.clock = clock
        self.counts = PacketCounts()
        self.stats = WriterStats()
        self.pending: deque[str] = deque()
        self._wake = asyncio.Event()

    def __call__(self, received: Received) -> None:
        lines = packet_lines(received, self.utc_offset_s, self.counts)
        self.pending.extend(lines)
        overflow = len(self.pending) - self.max_pending
        if overflow > 0:
            for _ in range(overflow):
                self.pending.popleft()
            self.stats.dropped += overflow
            log.error("%s: %d points dropped: %d wait for InfluxDB already", self.name, overflow, self.max_pending)
        if lines:
            self._wake.set()

    async def flush(self) -> None:
        """Post everything pending, in requests of at most batch_size lines; raises SinkError on a failure.

        A request the server refuses for its content (400: a field type conflict with points already in the
        database, 413: too large) is split in halves until the one point it refuses is found: that point is
        dropped and counted (``stats.refused``), so one bad point never blocks the others. Any other refusal
        (404 no database, 401/403) is raised: the operator can fix it while the receiver runs.
        """
        size = self.batch_size
        while self.pending:
            lines = [self.pending[i] for i in range(min(size, len(self.pending)))]
            try:
                dropped = await asyncio.to_thread(post_lines, self.writer, self.name, lines, self.clock())
            except SinkFatalError as error:
                if not isinstance(error.__cause__, Refused) or error.__cause__.status not in (400, 413):
                    raise
                if len(lines) > 1:
                    size = max(1, len(lines) // 2)
                    continue
                self.pending.popleft()
                self.stats.refused += 1
                self._failed(f"{error}: the point is dropped: {lines[0]}")
                continue
            for _ in lines:
                self.pending.popleft()
            self.stats.written += len(lines) - dropped
            self.stats.beyond_retention += dropped
            self.stats.requests += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Post pending points as they come until `stop`, retrying failures with backoff (at most max_backoff_s)."""
        backoff = 0.0
        while not stop.is_set():
            if backoff:  # after a failure: wait it out, whatever arrives meanwhile
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
            else:
                await _wait_either(stop, self._wake)
            self._wake.clear()
            try:
                await self.flush()
            except SinkError as error:
                self._failed(str(error))
                backoff = min(self.max_backoff_s, max(self.min_backoff_s, backoff * 2))
            else:
                if backoff and self.on_error is not None:
                    self.on_error(f"{self.name}: writing again")
                backoff = 0.0

    async def close(self, timeout: float) -> None:
        """At a stop: one last attempt at what is pending, within `timeout` (the rest is reported); then close."""
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except (SinkError, TimeoutError) as error:
            self._failed(str(error) or f"{self.name}: no answer within {timeout:g} s")
        finally:
            with contextlib.suppress(Exception):
                self.writer.close()

    def _failed(self, error: str) -> None:
        self.stats.failures += 1
        if error != self.stats.last_error:  # once per distinct error, not once per retry
            log.error("%s", error)
            if self.on_error is not None:
                self.on_error(f"{error} ({len(self.pending)} points wait)")
        self.stats.last_error = error

    def summary(self) -> str:
        c, s = self.counts, self.stats
        parts = [f"{s.written} points written to InfluxDB"]
        for label, value in (("not written (still pending at the stop)", len(self.pending)),
                             ("dropped (buffer full)", s.dropped), ("beyond retention", s.beyond_retention),
                             ("refused by the server", s.refused),
                             ("packets without DataTime", c.no_time), ("non-numeric values", c.not_numbers),
                             ("unencodable factors", c.unencodable)):
            if value:
                parts.append(f"{value} {label}")
        return ", ".join(parts)


async def _wait_either(stop: asyncio.Event, wake: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
