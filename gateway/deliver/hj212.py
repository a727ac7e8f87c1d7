"""The HJ 212-2017 sink: a TCP client to an environmental / municipal platform.

Records from the durable queue become packets (hj212_session.Uplink), split
to at most 1024-byte data segments, written to one TCP connection. With
``reply = true`` each packet (each part of a split one) asks for a reply
(Flag A) and is written again after ``reply_timeout`` seconds without a
9011 / 9014 naming its QN, up to ``retries`` more times; then the batch
fails (counted in ``counts["reply_failures"]``), the dispatcher backs off
and the records are delivered again later (at least once). A 9011 with a
QnRtn other than 1 (rejected, bad password ...) fails the batch the same way.

The connection is opened when there is something to send; when the platform
drops it, the next send opens a new one, and the dispatcher's exponential
backoff (``[queue] max_backoff_s``) spaces the attempts while it cannot.
Packets the platform sends on the connection (set RtdInterval, set time,
history requests) are answered by the session; history comes from the
gateway's SQLite store (``store``), read-only, the latest revision of each
window.

The real-time snapshot being built (the latest value of each factor in the
interval in progress) survives a restart: after each delivered batch it is
written to ``state_file`` (inside the gateway: ``<queue>-<sink name>-realtime.json``
beside the queue), before the queue's cursor moves past the batch, and read
back at the first send. So the interval in progress at a restart (even
``kill -9``) still goes out as its 2011 packet once the next interval's first
reading comes; readings delivered again after a crash fold into it unchanged
or count as late, never as a second packet. The file is replaced atomically
but not fsynced (one write per delivery would wear an SD card): a power cut
may lose it, and the interval then starts again, as before this existed. A
file that does not read (corrupt, another MN's) is logged, counted
(``counts["state_unreadable"]``) and replaced.

A window's statistics go out in one packet: a queue batch can end in the middle of them (they are
appended together, but a batch is a number of records), so the sink leaves a batch's trailing run of
one window's statistics for the next batch (``whole_windows``; the dispatcher confirms what was
sent and reads the rest again at once). Split over two packets, the second would carry a factor
without its Avg, and a platform that keeps the latest packet of a DataTime would lose the mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gateway.deliver.credentials import read_credential
from gateway.deliver.hj212_session import History, Settings, SettingsError, Uplink
from gateway.deliver.queue import Batch, Queued
from gateway.deliver.sinks import SINKS, SinkConfigError, SinkError
from gateway.model import Quality
from gateway.process.aggregate import Aggregate
from gateway.protocols import hj212
from gateway.protocols.hj212 import Packet

log = logging.getLogger(__name__)

_REPLY_CNS = (hj212.CN_REQUEST_REPLY, hj212.CN_DATA_REPLY)


def store_history(path: Path | str) -> History:
    """History from the gateway's SQLite store: per window start, the latest row (revision) of each channel."""

    def query(window: str, begin: float, end: float) -> list[Aggregate]:
        db = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
        try:
            rows = db.execute(
                'SELECT node, kind, channel, source, statistic, window, start, "end", value, unit, count, expected,'
                " valid, quality FROM aggregates WHERE id IN (SELECT MAX(id) FROM aggregates"
                " WHERE window = ? AND start >= ? AND start <= ? GROUP BY node, channel, start) ORDER BY start, id",
                (window, begin, end),
            ).fetchall()
        finally:
            db.close()
        return [
            Aggregate(n, k, c, src, stat, w, s, e, v, u, cnt, exp, bool(valid), Quality(q))
            for n, k, c, src, stat, w, s, e, v, u, cnt, exp, valid, q in rows
        ]

    return query


def _window_of(item: Queued) -> tuple[str, str, float] | None:
    record = item.record
    return (record.node, record.window, record.start) if isinstance(record, Aggregate) else None


def whole_windows(items: Sequence[Queued]) -> int:
    """How many of a batch's records to send now: all but a trailing run of one window's statistics,
    which the batch may have cut (the rest come first in the next batch); all when that run is the batch."""
    last = _window_of(items[-1]) if items else None
    if last is None:
        return len(items)
    keep = len(items)
    while keep > 0 and _window_of(items[keep - 1]) == last:
        keep -= 1
    return keep or len(items)


_DEFAULT_PW = "123456"  # the factory PW of HJ 212 equipment


@SINKS.register("hj212")
class Hj212Sink:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        mn: str,
        pw: str = "123456",  # _DEFAULT_PW (a literal: docs/configuration.md's test reads the default from here)
        st: str = "22",
        rtd_interval: int = 30,
        reply: bool = False,
        reply_timeout: float = 10.0,
        retries: int = 3,
        pm_unit_factor: float = 1.0,
        version: int = hj212.VERSION_2017,
        utc_offset_h: float = 8.0,
        store: str = "",
        nodes: str = "",
        connect_timeout: float = 10.0,
        state_file: str = "",
        pw_file: str = "",
    ) -> None:
        if reply_timeout <= 0 or connect_timeout <= 0 or retries < 0:
            raise SinkConfigError("hj212 sink: reply_timeout and connect_timeout must be positive, retries >= 0")
        if pw_file:
            # The PW out of gateway.toml, through LoadCredential= like the other uplinks' secrets.
            if pw != _DEFAULT_PW:
                raise SinkConfigError(f"sink {name}: pw_file and pw are both set: keep one (pw_file)")
            pw = read_credential(pw_file, f"sink {name}: pw_file").decode("utf-8").strip()
        settings = Settings(
            mn=mn, pw=pw, st=st, rtd_interval=rtd_interval, reply=reply, pm_unit_factor=pm_unit_factor,
            version=version, utc_offset_s=round(utc_offset_h * 3600),
            nodes=frozenset(n.strip() for n in nodes.split(",") if n.strip()),
        )
        try:
            self.uplink = Uplink(settings)
        except SettingsError as error:
            raise SinkConfigError(str(error)) from None
        self.name = name
        self.host, self.port = host, port
        self.reply_timeout, self.retries, self.connect_timeout = reply_timeout, retries, connect_timeout
        self.wall: Callable[[], float] = time.time  # injectable for tests
        self.counts = self.uplink.counts
        self.history: History | None = store_history(store) if store else None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._receiving: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[Packet]] = {}
        self.parser = hj212.StreamParser()
        self.state_path: Path | None = Path(state_file) if state_file else None
        self._state_loaded = False
        self._state_saved: dict[str, Any] | None = None
        self._state_error = ""

    def attach(self, service: Any) -> None:
        """Inside the gateway: the snapshot's file beside the queue, unless `state_file` names one."""
        if self.state_path is None:
            queue_path = Path(service.queue.path)
            self.state_path = queue_path.with_name(f"{queue_path.stem}-{self.name}-realtime.json")

    # -- the real-time snapshot across restarts ---------------------------------------------
    def _load_state(self) -> None:
        self._state_loaded = True
        path = self.state_path
        if path is None or not path.exists():
            return
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if not self.uplink.load_snapshot(state):
                raise ValueError(f"it is the snapshot of MN {state.get('mn')!r}, not of {self.uplink.settings.mn!r}")
        except (OSError, ValueError) as error:  # json's errors are ValueErrors
            self.counts["state_unreadable"] += 1
            log.error("hj212 sink %s: the real-time snapshot in %s does not read (%s): starting a new one",
                      self.name, path, error)
            return
        self._state_saved = self.uplink.snapshot_state()
        log.info("hj212 sink %s: real-time snapshot of %s taken back from %s", self.name,
                 self._state_saved["slot"], path)

    def _save_state(self, state: dict[str, Any]) -> None:
        path = self.state_path
        assert path is not None
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)  # atomic: the file is the old snapshot or the new one, never half of one

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def _connect(self) -> asyncio.StreamWriter:
        if self._writer is not None and self.connected:
            return self._writer
        self._disconnect()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.connect_timeout)
        except (OSError, TimeoutError) as error:
            self.counts["connect_failures"] += 1
            raise SinkError(f"cannot connect to {self.host}:{self.port}: {error or 'timeout'}") from error
        self.counts["connects"] += 1
        log.info("hj212 sink %s: connected to %s:%d", self.name, self.host, self.port)
        self._reader, self._writer = reader, writer
        self._receiving = asyncio.create_task(self._receive(reader, writer))
        return writer

    def _disconnect(self) -> None:
        if self._receiving is not None:
            self._receiving.cancel()
            self._receiving = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("connection closed"))

    async def _receive(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                for item in self.parser.feed(data):
                    if isinstance(item, hj212.FrameError):
                        log.warning("hj212 sink %s: from the platform: %s", self.name, item)
                        continue
                    try:
                        await self._incoming(item, writer)
                    except (ConnectionError, OSError):
                        raise
                    except Exception as error:  # a request we fail to answer must not make the sink deaf to replies
                        self.counts["downlink_errors"] += 1
                        log.error("hj212 sink %s: CN %s QN %s from the platform: %s", self.name, item.cn, item.qn,
                                  error, exc_info=True)
        except (ConnectionError, OSError) as error:
            log.warning("hj212 sink %s: connection lost: %s", self.name, error)
        if self._writer is writer:
            log.warning("hj212 sink %s: the platform closed the connection", self.name)
            self.counts["disconnects"] += 1
            self._receiving = None  # this task is ending: no need to cancel it
            self._disconnect()

    async def _incoming(self, packet: Packet, writer: asyncio.StreamWriter) -> None:
        if packet.cn in _REPLY_CNS:
            waiter = self._waiting.get(packet.qn or "")
            if waiter is not None and not waiter.done():
                waiter.set_result(packet)
            else:
                self.counts["unexpected_replies"] += 1
            return
        if packet.cn.startswith("9"):
            self.counts["unexpected_replies"] += 1
            return
        # A history request (the store query, and building the answer) runs in a worker thread: weeks of
        # minute data are tens of thousands of packets, seconds of CPU that must not stall the bus owners'
        # event loop. Its answer carries the request's QN (no new QN is drawn there) and touches only
        # counts of its own; other requests are answered on the loop, as the session's uploads are.
        now = self.wall()
        if self.uplink.history_span(packet) is not None:
            wire = await asyncio.to_thread(self._answer, packet, now)
        else:
            wire = self._answer(packet, now)
        for chunk in wire:
            writer.write(chunk)
            await writer.drain()  # a long answer goes out as the platform takes it, not all in memory at once

    def _answer(self, packet: Packet, now: float) -> list[bytes]:
        """The bytes that answer a request from the platform, in chunks of ~64 KiB."""
        rows: list[Aggregate] = []
        span = self.uplink.history_span(packet)
        if span is not None and self.history is not None:
            rows = list(self.history(*span))
        chunks: list[bytes] = []
        pending: list[bytes] = []
        size = 0
        for answer in self.uplink.handle(packet, now, lambda window, begin, end: rows):
            for part in hj212.split(answer):
                data = part.encode()
                pending.append(data)
                size += len(data)
                if size >= 1 << 16:
                    chunks.append(b"".join(pending))
                    pending, size = [], 0
        if pending:
            chunks.append(b"".join(pending))
        return chunks

    async def send(self, batch: Batch) -> int:
        if not self._state_loaded:
            self._load_state()
        count = whole_windows(batch.items)
        state = self.uplink.save()
        try:
            writer = await self._connect()
            for packet in self.uplink.records((item.record for item in batch.items[:count]), self.wall()):
                for part in hj212.split(packet):
                    await self._deliver(part, writer)
        except BaseException:
            self.uplink.restore(state)  # the real-time snapshot is rebuilt when the batch comes again
            raise
        snapshot = self.uplink.snapshot_state()
        if self.state_path is not None and snapshot != self._state_saved:
            # Before the cursor moves past the batch (the dispatcher confirms after send returns): the file is
            # never behind the queue. A failed write costs only durability: delivered is delivered.
            try:
                await asyncio.to_thread(self._save_state, snapshot)
                self._state_saved = snapshot
            except OSError as error:
                self.counts["state_write_errors"] += 1
                if self.counts["state_write_errors"] == 1 or str(error) != self._state_error:  # not once a second
                    log.error("hj212 sink %s: cannot keep the real-time snapshot in %s: %s (%d failed writes)",
                              self.name, self.state_path, error, self.counts["state_write_errors"])
                self._state_error = str(error)
        return count

    async def _deliver(self, part: Packet, writer: asyncio.StreamWriter) -> None:
        qn = part.qn or ""
        for attempt in range(1 + self.retries):
            if not self.connected:
                raise SinkError("the platform closed the connection")
            waiter: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
            self._waiting[qn] = waiter
            try:
                writer.write(part.encode())
                await writer.drain()
                self.counts["packets_sent"] += 1
                if not part.wants_reply:
                    return
                try:
                    answer = await asyncio.wait_for(waiter, self.reply_timeout)
                except TimeoutError:
                    self.counts["reply_timeouts"] += 1
                    log.warning("hj212 sink %s: no reply to QN %s (try %d)", self.name, qn, attempt + 1)
                    continue
                except ConnectionError as error:
                    raise SinkError(f"connection lost waiting for the reply to QN {qn}") from error
            except OSError as error:
                self._disconnect()
                raise SinkError(f"writing to {self.host}:{self.port}: {error}") from error
            finally:
                self._waiting.pop(qn, None)
            rtn = answer.cp_fields().get("QnRtn", "1")
            if answer.cn == hj212.CN_REQUEST_REPLY and rtn != "1":
                self.counts["rejected"] += 1
                raise SinkError(f"the platform refused QN {qn}: QnRtn={rtn}")
            self.counts["replies"] += 1
            return
        self.counts["reply_failures"] += 1
        raise SinkError(f"no reply to QN {qn} after {1 + self.retries} tries of {self.reply_timeout} s")

    def close(self) -> None:
        self._disconnect()


async def aclose(sink: Hj212Sink) -> None:
    """Close and let the connection's tasks end (for tests and the CLI)."""
    task = sink._receiving
    sink.close()
    if task is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await task
