"""The MQTT uplink to the municipal construction safety system, and its downlink commands.

Registered as sink ``mqtt``. One connection (aiomqtt) per sink, kept by
``run`` (the service starts it; it reconnects with backoff) and shared by
the sink's two lanes (sinks.Lane): alarm events on ``<name>.alarms``, every
other record on ``<name>``; each lane is a cursor in the queue, so an alarm
is published at once even behind a backlog of readings, and after a restart
too.

* QoS 1 throughout. ``send`` returns how many records, from the front, the
  broker acknowledged (PUBACK), so the queue's cursor moves only past
  acknowledged records; whatever was in flight when the connection dropped
  is sent again (same message id: docs/mqtt.md).
* TLS (``ca_file``; ``cert_file``/``key_file`` for a client certificate).
* ``username`` with ``password_file``: a credential file (also looked up in
  ``$CREDENTIALS_DIRECTORY``, for systemd's ``LoadCredential=``), read at
  each connection, never logged.
* A persistent session (``clean_session`` false, a fixed client id): the
  command subscription, and commands sent while the gateway was away,
  survive a disconnection.
* Retained status: ``online`` when connected, ``offline`` as the last will
  (connection lost) and when the gateway stops. Health reports (``<base>/health``,
  from the queue like any record) also refresh the retained status, which then
  carries the newest report published (``health``), so a receiver that
  subscribes late sees at once how the gateway was last doing.
* Commands on ``<base>/cmd`` (only when ``command_key_file`` is set): checked
  by gateway/ops/commands.py, applied to the service, answered on
  ``<base>/cmd/reply``, logged (without secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

from gateway.deliver.credentials import read_credential
from gateway.deliver.mqtt_topics import TopicTree, status_payload
from gateway.deliver.queue import Batch, Queued
from gateway.deliver.records import HealthReport
from gateway.deliver.sinks import SINKS, Lane, SinkConfigError, SinkError
from gateway.ops.command_store import SqliteSeenIds
from gateway.ops.commands import CommandTarget, CommandVerifier, Rejected, execute, rejection

log = logging.getLogger(__name__)

ALARM_KINDS = frozenset({"alarm"})


@SINKS.register("mqtt")
class MqttSink:
    def __init__(
        self,
        name: str,
        host: str,
        gateway: str,
        site: str = "",
        port: int = 8883,
        topic_prefix: str = "sitewatch",
        client_id: str = "",
        tls: bool = True,
        ca_file: str = "",
        cert_file: str = "",
        key_file: str = "",
        username: str = "",
        password_file: str = "",
        command_key_file: str = "",
        command_window_s: float = 300.0,
        keepalive: int = 30,
        inflight: int = 50,
        publish_timeout_s: float = 30.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        for key, path in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file)):
            # Checked at start: later, ssl would say "No such file or directory" at every retry, naming no file.
            if path and not Path(path).is_file():
                raise SinkConfigError(f"sink {name}: {key} {path}: no such file (TLS files are read by their path)")
        self.name = name
        self.host = host
        self.port = port
        self.gateway = gateway
        self.site = site
        self.topic_prefix = topic_prefix
        self.client_id = client_id
        self.tls = tls
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.username = username
        self.password_file = password_file
        self.command_key_file = command_key_file
        self.command_window_s = command_window_s
        self.keepalive = keepalive
        self.inflight = max(1, inflight)
        self.publish_timeout_s = publish_timeout_s
        self.max_backoff_s = max_backoff_s
        self.lanes = (Lane(f"{name}.alarms", kinds=ALARM_KINDS), Lane(name, skip=ALARM_KINDS))
        self.wall: Callable[[], float] = time.time
        self.tree: TopicTree | None = TopicTree(topic_prefix, site, gateway) if site else None
        self.commands: tuple[CommandVerifier, CommandTarget] | None = None
        self.published = 0
        self.connections = 0
        self.replies = 0
        self.last_error = ""
        self._client: aiomqtt.Client | None = None
        self._ready = asyncio.Event()
        # Set when the present connection is gone: publishes awaiting a PUBACK on it fail at once (aiomqtt
        # leaves them to their timeout, publish_timeout_s, though the dead connection will never carry one).
        self._gone = asyncio.Event()
        self.latest_health: HealthReport | None = None  # the newest health report published (in the status)
        self.status_errors = 0  # status refreshes that failed (the next report tries again)

    @property
    def connected(self) -> bool:
        """Whether the connection to the broker is up (a health report's ``sink_health.connected``)."""
        return self._client is not None

    # -- wiring ----------------------------------------------------------------------
    def attach(self, service: Any) -> None:
        """Called by the Gateway: the site's name (unless set), the clock, and the command target."""
        if not self.site:
            self.site = service.config.site.name
        self.tree = TopicTree(self.topic_prefix, self.site, self.gateway)
        self.wall = service.clock.wall
        if self.command_key_file:
            queue_path = Path(service.queue.path)
            self.serve_commands(service, queue_path.with_name(f"{queue_path.stem}-{self.name}-commands.sqlite3"))

    def serve_commands(self, target: CommandTarget, seen_path: Path) -> None:
        key = read_credential(self.command_key_file, f"sink {self.name}: command_key_file")
        seen = SqliteSeenIds(seen_path, 2 * self.command_window_s)
        assert self.tree is not None, "the site is needed first (attach, or the site parameter)"
        self.commands = (CommandVerifier(key, self.tree.site, self.tree.gateway, seen, self.command_window_s), target)

    def _topics(self) -> TopicTree:
        if self.tree is None:
            raise SinkError(f"sink {self.name}: no site name (set `site`, or run it inside the gateway)")
        return self.tree

    # -- the connection --------------------------------------------------------------
    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file or None)
        return context

    def _client_for(self, tree: TopicTree) -> aiomqtt.Client:
        password = None
        if self.password_file:
            password = read_credential(self.password_file, f"sink {self.name}: password_file").decode("utf-8")
        client = aiomqtt.Client(
            self.host,
            self.port,
            username=self.username or None,
            password=password,
            identifier=self.client_id or f"sitewatch-{tree.site}-{tree.gateway}",
            clean_session=False,
            keepalive=self.keepalive,
            tls_context=self._tls_context(),
            will=aiomqtt.Will(tree.status, status_payload(tree, "offline", self.wall(), "connection lost"),
                              qos=1, retain=True),
            max_inflight_messages=self.inflight,
            # Small QoS 1 messages: without it Nagle holds each one back for the previous PUBACK.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            timeout=self.publish_timeout_s,
        )
        client.pending_calls_threshold = 2 * self.inflight + 10  # aiomqtt warns past it; we bound it ourselves
        return client

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until `stop`: publish the online status, serve commands, reconnect with backoff."""
        tree = self._topics()
        backoff = 1.0
        while not stop.is_set():
            try:
                async with self._client_for(tree) as client:
                    await client.publish(tree.status, status_payload(tree, "online", self.wall(), "connected",
                                                                     self.latest_health), qos=1, retain=True)
                    if self.commands is not None:
                        await client.subscribe(tree.command, qos=1)
                    self.connections += 1
                    if self.last_error:
                        log.info("sink %s: connected to %s:%d again", self.name, self.host, self.port)
                    self.last_error = ""
                    backoff = 1.0
                    self._gone = asyncio.Event()
                    self._client = client
                    self._ready.set()
                    if await self._serve(client, stop):
                        self._ready.clear()
                        self._client = None
                        await client.publish(tree.status, status_payload(tree, "offline", self.wall(), "stopped",
                                                                         self.latest_health), qos=1, retain=True)
                        return
            except (aiomqtt.MqttError, OSError, ssl.SSLError) as error:
                self._lost(f"{type(error).__name__}: {error}")
            finally:
                self._ready.clear()
                self._client = None
                self._gone.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    def _lost(self, error: str) -> None:
        if error != self.last_error:  # once per distinct error, not once per retry
            log.warning("sink %s: no connection to %s:%d: %s", self.name, self.host, self.port, error)
        self.last_error = error

    async def _serve(self, client: aiomqtt.Client, stop: asyncio.Event) -> bool:
        """Handle commands until stop (True) or the connection drops (raises MqttError)."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            messages = aiter(client.messages)
            while True:
                incoming = asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait({incoming, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if incoming not in done:
                    incoming.cancel()
                    return True
                await self._command(client, incoming.result())
        finally:
            stopping.cancel()

    async def _command(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        tree = self._topics()
        if self.commands is None or str(message.topic) != tree.command:
            return  # not subscribed to anything else
        verifier, target = self.commands
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        now = self.wall()
        try:
            command = verifier.verify(payload, now)
        except Rejected as error:
            reply = rejection(error, now)
            log.warning("command %s refused: %s: %s", error.command_id or "(no id)", error.code, error.message)
        else:
            log.info("command %s: %s %s", command.id, command.name, dict(command.args))
            reply = await execute(command, target, now)
            verifier.seen.settle(command.id, reply.to_json())
            log.log(logging.INFO if reply.ok else logging.WARNING, "command %s %s: %s", command.id,
                    "applied" if reply.ok else f"failed ({reply.error})", reply.message)
        await client.publish(tree.reply, reply.to_json().encode("utf-8"), qos=1)
        self.replies += 1

    # -- delivering ------------------------------------------------------------------
    async def send(self, batch: Batch) -> int:
        tree = self._topics()
        client = self._client
        if client is None:
            raise SinkError(f"not connected to {self.host}:{self.port}" + (f" ({self.last_error})"
                                                                           if self.last_error else ""))
        # A sliding window: up to `inflight` publishes awaiting their PUBACK at any moment, a new one started as
        # soon as the oldest is acknowledged (chunks of `inflight` left the window half empty while the
        # slowest of each chunk was awaited). Acknowledged from the front only: the cursor never skips a record.
        # Each window entry is a future its PUBACK settles (_Acked), and the head's deadline is its start plus
        # publish_timeout_s: no task, event and timer per message as a publish through aiomqtt makes.
        items = batch.items
        window: deque[tuple[float, asyncio.Future[None], int | None]] = deque()  # deadline, PUBACK, message id
        started = delivered = 0
        lost = self._gone
        lost_wait: asyncio.Future[bool] | None = None
        loop = asyncio.get_running_loop()
        try:
            while delivered < len(items):
                while started < len(items) and len(window) < self.inflight:
                    window.append((loop.time() + self.publish_timeout_s, *self._start(client, tree, items[started])))
                    started += 1
                deadline, head, _ = window[0]
                if not head.done():
                    lost_wait = lost_wait or asyncio.ensure_future(lost.wait())
                    await asyncio.wait((head, lost_wait), timeout=max(0.0, deadline - loop.time()),
                                       return_when=asyncio.FIRST_COMPLETED)
                    if not head.done():  # the connection is gone, or the PUBACK did not come in time
                        if delivered:
                            return delivered
                        if lost.is_set():
                            raise SinkError(f"publish failed: connection to {self.host}:{self.port} lost")
                        raise SinkError(f"publish failed: no PUBACK within {self.publish_timeout_s:g} s")
                window.popleft()
                try:
                    head.result()
                except Exception as error:  # the connection dropped, or the PUBACK did not come in time
                    if delivered:
                        return delivered
                    raise SinkError(f"publish failed: {type(error).__name__}: {error}") from error
                delivered += 1
                self.published += 1
            return delivered
        finally:
            if lost_wait is not None:
                lost_wait.cancel()
            if window:  # publishes behind a failure: their records are sent again next time (same message ids)
                for _, publish, _ in window:
                    if isinstance(publish, asyncio.Task):
                        if lost.is_set():
                            publish.cancel()
                    elif not publish.done():
                        publish.cancel()  # no longer waited for; a PUBACK that still comes finds it done
                await asyncio.gather(*(publish for _, publish, _ in window), return_exceptions=True)
                for _, _, mid in window:  # no longer waited for: out of the client's table, as its own publishes
                    if mid is not None:
                        client._pending_publishes.pop(mid, None)

    def _start(self, client: aiomqtt.Client, tree: TopicTree, item: Queued) -> tuple[asyncio.Future[None], int | None]:
        """A record's publish, handed to the client now: a future its PUBACK settles, and its message id (None:
        not in the client's table of pending publishes)."""
        record = item.record
        topic = tree.topic(record)
        assert tree.owns(topic), topic  # the ACL would refuse it anyway; never try
        if isinstance(record, HealthReport):  # it also refreshes the retained status once acknowledged
            return asyncio.ensure_future(self._publish_health(client, tree, topic, record)), None
        return _publish_qos1(client, topic, tree.payload(record))

    async def _publish_health(self, client: aiomqtt.Client, tree: TopicTree, topic: str, record: HealthReport) -> None:
        """A health report's publish through aiomqtt, then the retained status refreshed with it."""
        await client.publish(topic, tree.payload(record), qos=1, timeout=self.publish_timeout_s)
        if self.latest_health is None or record.time > self.latest_health.time:
            self.latest_health = record
            try:
                await client.publish(tree.status, status_payload(tree, "online", self.wall(), "health", record),
                                     qos=1, retain=True, timeout=self.publish_timeout_s)
            except aiomqtt.MqttError as error:  # the report itself was delivered: the next one refreshes it
                self.status_errors += 1
                log.debug("sink %s: status refresh failed: %s", self.name, error)

    def close(self) -> None:
        if self.commands is not None:
            seen = self.commands[0].seen
            if isinstance(seen, SqliteSeenIds):
                seen.close()


class _Acked:
    """Stands in aiomqtt's table of publishes awaiting their PUBACK (its on_publish calls ``set``): settles a future."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future

    def set(self) -> None:
        if not self.future.done():  # given up on meanwhile (a failure ahead of it in the window)
            self.future.set_result(None)


def _publish_qos1(client: aiomqtt.Client, topic: str, payload: bytes) -> tuple[asyncio.Future[None], int | None]:
    """Publish at QoS 1 through the client's paho client; the future is settled by the PUBACK.

    What ``aiomqtt.Client.publish`` does, without its event, its ``wait_for`` task and timer and its count of the
    pending calls per message (issue 13: the MQTT client's work per message was most of the uplink's CPU). The
    client's own PUBACK callback (``_on_publish``) settles the future through its table of pending publishes, as
    it sets its own events; the caller keeps the deadline (the sliding window in ``send``).
    """
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    info = client._client.publish(topic, payload, 1, False)
    if info.rc != paho.MQTT_ERR_SUCCESS:
        future.set_exception(aiomqtt.MqttCodeError(info.rc, "Could not publish message"))
    elif info.is_published():
        future.set_result(None)
    else:
        client._pending_publishes[info.mid] = _Acked(future)  # type: ignore[assignment]
        return future, info.mid
    return future, None
