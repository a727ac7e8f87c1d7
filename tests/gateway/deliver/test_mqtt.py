"""The MQTT sink against a real mosquitto (TLS, password file, ACL) started by the test (tests/support/mosquitto.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.deliver.dispatch import Delivery
from gateway.deliver.mqtt import MqttSink
from gateway.deliver.queue import DurableQueue
from gateway.deliver.records import Record
from gateway.deliver.sinks import lanes_of
from gateway.model import Quality, Reading
from gateway.ops.commands import make_command
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, EventState, Severity
from tests.support.mosquitto import (
    GATEWAY,
    GATEWAY_USER,
    OPERATOR_USER,
    OTHER_USER,
    OWN,
    PASSWORDS,
    SITE,
    Listener,
    Mosquitto,
)

KEY = b"platform-and-gateway-shared-key-0042"
T0 = 1_796_300_000.0


def reading(i: int, node: str = "dust-1") -> Reading:
    return Reading(node, "dust", "pm10", 40.0 + i % 7, "ug/m3", Quality.NORMAL, T0 + i, i + 1)


def alarm(t: float = T0 + 5) -> AlarmEvent:
    return AlarmEvent("crane_gust", "wind-1", "gust_3s", Severity.ALARM, EventState.RAISED, 9.4, 9.0, t,
                      "gust_3s 9.4 m/s >= 9 m/s")


def aggregate() -> Aggregate:
    return Aggregate("dust-1", "dust", "pm10_1min_mean", "pm10", "mean", "1min", T0, T0 + 60, 42.0, "ug/m3", 60, 60,
                     True, Quality.NORMAL)


@dataclass
class Target:
    """Records what commands changed (the Gateway's CommandTarget methods are tested in test_service_commands)."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def command_spray(self, node: str, mode: str, who: str) -> Mapping[str, Any]:
        if node != "dust-1":
            raise LookupError(f"no bus owns node {node!r}")
        self.calls.append(("spray", node, mode))
        return {"node": node, "mode": mode}

    def command_threshold(self, setting: str, value: float, node: str | None) -> Mapping[str, Any]:
        self.calls.append(("threshold", setting, value, node))
        return {"setting": setting, "new": value}

    def command_poll_interval(self, seconds: float, node: str | None, bus: str | None) -> Mapping[str, Any]:
        self.calls.append(("poll", seconds, node, bus))
        return {"seconds": seconds}

    def command_time_sync(self, sent: float) -> Mapping[str, Any]:
        return {"gateway_time": time.time(), "offset_s": time.time() - sent}


class Harness:
    def __init__(self, broker: Mosquitto, folder: Path, target: Target, **params: Any) -> None:
        self.broker = broker
        (folder / "mqtt-password").write_text(PASSWORDS[GATEWAY_USER] + "\n")
        (folder / "command-key").write_bytes(KEY + b"\n")
        self.queue = DurableQueue(folder / "queue.sqlite3", ["mqtt.alarms", "mqtt"])
        self.sink = MqttSink(
            "mqtt", broker.host, GATEWAY, site=SITE, port=broker.port, ca_file=str(broker.ca),
            cert_file=str(broker.folder / "client.crt"), key_file=str(broker.folder / "client.key"),
            username=GATEWAY_USER, password_file=str(folder / "mqtt-password"),
            command_key_file=str(folder / "command-key"), max_backoff_s=0.5, **params,
        )
        self.sink.serve_commands(target, folder / "commands.sqlite3")
        self.lock = self.queue.lock  # the queue's connection: one thread at a time, as in the Gateway
        self.deliveries = [Delivery(self.queue, self.sink, batch=500, interval=0.02, min_backoff=0.1, max_backoff=0.5,
                                    lane=lane) for lane in lanes_of(self.sink)]
        self.stop = asyncio.Event()  # the deliveries
        # The connection outlives the deliveries, as in the Gateway (gateway/ops/service.py): a delivery
        # stopped mid-batch still gets the PUBACKs of what it published.
        self.sink_stop = asyncio.Event()
        self.sink_task: asyncio.Task[None] | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def append(self, records: list[Record]) -> None:
        async with self.lock:
            await asyncio.to_thread(self.queue.append, records)
        for delivery in self.deliveries:
            delivery.wake.set()

    async def start(self) -> None:
        self.sink_task = asyncio.create_task(self.sink.run(self.sink_stop))
        await until(lambda: self.sink.connections >= 1, "the sink connects")
        self.tasks += [asyncio.create_task(d.run(self.stop)) for d in self.deliveries]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 60)
        self.sink_stop.set()
        if self.sink_task is not None:
            await asyncio.wait_for(asyncio.gather(self.sink_task, return_exceptions=True), 60)
        self.sink.close()
        self.queue.close()


@asynccontextmanager
async def running(broker: Mosquitto, folder: Path, target: Target | None = None) -> AsyncIterator[Harness]:
    h = Harness(broker, folder, target or Target())
    await h.start()
    try:
        yield h
    finally:
        await h.close()


async def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


async def message(listener: Listener, predicate: Callable[[Any], bool], timeout: float = 60.0) -> Any:
    return await asyncio.to_thread(listener.wait_for, predicate, timeout)


def body(m: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(m.payload)
    return result


async def test_records_arrive_over_tls_with_topics_ids_and_the_retained_online_status(
    broker: Mosquitto, operator: Listener, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(broker, tmp_path) as h:
        status = await message(operator, lambda m: m.topic == f"{OWN}/status")
        assert body(status)["state"] == "online"
        await h.append([reading(0), aggregate(), alarm()])
        got = {}
        while len(got) < 3:
            m = await message(operator, lambda m: "/status" not in m.topic)
            got[m.topic] = body(m)
        assert set(got) == {f"{OWN}/reading/dust-1/pm10", f"{OWN}/aggregate/dust-1/pm10_1min_mean",
                            f"{OWN}/alarm/wind-1/crane_gust"}
        r = got[f"{OWN}/reading/dust-1/pm10"]
        assert r["id"] == f"{SITE}/{GATEWAY}/reading/dust-1/pm10/1/{T0!r}"
        assert r["record"]["value"] == 40.0 and r["kind"] == "reading"
        assert got[f"{OWN}/aggregate/dust-1/pm10_1min_mean"]["revision"] == 0
        assert got[f"{OWN}/alarm/wind-1/crane_gust"]["record"]["state"] == "raised"
        await until(lambda: h.deliveries[0].stats.delivered == 1 and h.deliveries[1].stats.delivered == 2,
                    "both cursors move")
    late = broker.client(OPERATOR_USER)  # a receiver that connects later gets the retained status
    late.subscribe(f"{OWN}/status")
    retained = late.wait_for(lambda m: True, 20)
    late.close()
    assert retained.retain and body(retained)["state"] == "offline" and body(retained)["reason"] == "stopped"
    assert PASSWORDS[GATEWAY_USER] not in caplog.text
    assert KEY.decode() not in caplog.text


def test_the_acl_refuses_a_gateway_outside_its_own_topics(broker: Mosquitto, operator: Listener) -> None:
    gateway = broker.client(GATEWAY_USER)
    other = broker.client(OTHER_USER)
    try:
        gateway.publish("sitewatch/site-b/gw-9/reading/x/pm10", "forged")  # another site's tree
        gateway.publish(f"{OWN}/cmd", "forged")  # its own command topic: only the platform writes there
        other.publish(f"{OWN}/reading/dust-1/pm10", "forged")  # another gateway into ours
        gateway.publish(f"{OWN}/reading/dust-1/pm10", "mine")  # allowed: published last, so it arrives last
        m = operator.wait_for(lambda m: True, 20)
        assert (m.topic, m.payload) == (f"{OWN}/reading/dust-1/pm10", b"mine")
        assert operator.drain() == []
    finally:
        gateway.close()
        other.close()


def test_the_sink_only_ever_builds_topics_in_its_own_subtree() -> None:
    sink = MqttSink("mqtt", "127.0.0.1", GATEWAY, site=SITE)
    assert sink.tree is not None
    for record in (reading(0, node="a/b/+/#"), alarm(), aggregate()):
        topic = sink.tree.topic(record)
        assert sink.tree.owns(topic) and "+" not in topic and "#" not in topic
        assert topic.count("/") == OWN.count("/") + 3


async def test_the_last_will_says_offline_when_the_connection_is_lost_and_online_returns(
    broker: Mosquitto, operator: Listener, tmp_path: Path
) -> None:
    async with running(broker, tmp_path) as h:
        await message(operator, lambda m: m.topic == f"{OWN}/status" and body(m)["state"] == "online")
        client = h.sink._client
        assert client is not None
        sock = client._client.socket()  # a crash: the TCP connection dies without an MQTT DISCONNECT
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)
        will = await message(operator, lambda m: m.topic == f"{OWN}/status" and body(m)["state"] == "offline")
        assert body(will)["reason"] == "connection lost"
        await message(operator, lambda m: m.topic == f"{OWN}/status" and body(m)["state"] == "online")
        await until(lambda: h.sink.connections >= 2, "the sink reconnects")


async def test_records_wait_while_the_broker_is_down_and_all_arrive_after_its_restart(
    broker: Mosquitto, operator: Listener, tmp_path: Path
) -> None:
    async with running(broker, tmp_path) as h:
        await h.append([reading(i) for i in range(100)])
        await until(lambda: h.deliveries[1].stats.delivered == 100, "the first records are acknowledged")
        broker.stop()
        await until(lambda: h.sink._client is None, "the sink sees the broker gone")
        await h.append([reading(i) for i in range(100, 300)])
        await until(lambda: h.deliveries[1].stats.failures > 0, "a delivery fails")
        assert h.deliveries[1].stats.delivered == 100  # nothing was confirmed without a PUBACK
        broker.start()
        operator_after = broker.client(OPERATOR_USER)
        operator_after.subscribe(f"{OWN}/reading/#")
        try:
            ids: set[str] = set()
            while len(ids) < 200:
                m = await message(operator_after, lambda m: True)
                ids.add(body(m)["id"])
            assert ids == {f"{SITE}/{GATEWAY}/reading/dust-1/pm10/{i + 1}/{T0 + i!r}" for i in range(100, 300)}
            await until(lambda: h.deliveries[1].stats.delivered == 300, "the cursor reaches the end")
        finally:
            operator_after.close()


async def test_an_alarm_is_published_before_a_backlog_of_50000_readings_drains(
    broker: Mosquitto, operator: Listener, tmp_path: Path
) -> None:
    h = Harness(broker, tmp_path, Target())
    h.queue.append([reading(i) for i in range(50_000)])
    await h.start()
    try:
        await until(lambda: h.sink.published > 0, "the backlog starts draining")
        await h.append([alarm(T0 + 60_000)])
        m = await message(operator, lambda m: "/alarm/" in m.topic)
        pending = 50_000 - h.deliveries[1].stats.delivered
        assert body(m)["record"]["alarm"] == "crane_gust"
        assert pending > 40_000, f"the alarm arrived only after the backlog drained ({pending} left)"
    finally:
        await h.close()


def command(name: str, args: Mapping[str, Any], command_id: str, ts: float | None = None, key: bytes = KEY) -> str:
    return json.dumps(make_command(key, SITE, GATEWAY, name, args, time.time() if ts is None else ts, command_id))


async def reply_to(operator: Listener, command_id: str | None) -> dict[str, Any]:
    m = await message(operator, lambda m: m.topic == f"{OWN}/cmd/reply" and body(m)["id"] == command_id)
    return body(m)


async def test_commands_are_applied_acknowledged_and_bad_ones_change_nothing(
    broker: Mosquitto, operator: Listener, tmp_path: Path
) -> None:
    target = Target()
    async with running(broker, tmp_path, target):
        operator.publish(f"{OWN}/cmd", command("spray", {"node": "dust-1", "mode": "on"}, "c-1"))
        ok = await reply_to(operator, "c-1")
        assert ok["ok"] and ok["command"] == "spray" and ok["result"] == {"node": "dust-1", "mode": "on"}
        assert target.calls == [("spray", "dust-1", "on")]

        bad = [
            (command("spray", {"node": "dust-1", "mode": "off"}, "c-2", key=b"not-the-key-0123456789"),
             "c-2", "unauthorised"),
            ("{broken", None, "malformed"),
            (command("reboot", {}, "c-3"), "c-3", "unknown_command"),
            (command("spray", {"node": "dust-1", "mode": "on"}, "c-1"), "c-1", "replayed"),
            (command("spray", {"node": "dust-1", "mode": "off"}, "c-4", ts=time.time() - 3600), "c-4", "stale"),
            (command("poll_interval", {"seconds": 0.001, "node": "dust-1"}, "c-5"), "c-5", "invalid"),
            (command("spray", {"node": "dust-9", "mode": "off"}, "c-6"), "c-6", "invalid"),
        ]
        for payload, command_id, code in bad:
            operator.publish(f"{OWN}/cmd", payload)
            reply = await reply_to(operator, command_id)
            assert (reply["ok"], reply["error"]) == (False, code), reply
            if code == "replayed":  # the platform that lost the first reply learns the outcome
                assert reply["result"]["original"]["ok"] is True
        assert target.calls == [("spray", "dust-1", "on")]

    # The same command id after a restart of the gateway: still refused (the seen ids are on disk).
    async with running(broker, tmp_path, target):
        operator.publish(f"{OWN}/cmd", command("spray", {"node": "dust-1", "mode": "on"}, "c-1"))
        assert (await reply_to(operator, "c-1"))["error"] == "replayed"
    assert target.calls == [("spray", "dust-1", "on")]


async def test_a_command_sent_while_the_gateway_was_away_is_served_on_return(
    broker: Mosquitto, operator: Listener, tmp_path: Path
) -> None:
    target = Target()
    async with running(broker, tmp_path, target):
        pass  # the persistent session now holds the subscription to the command topic
    operator.publish(f"{OWN}/cmd", command("threshold", {"setting": "wind.crane_gust", "value": 8.5}, "c-away"))
    async with running(broker, tmp_path, target):
        reply = await reply_to(operator, "c-away")
    assert reply["ok"] and target.calls == [("threshold", "wind.crane_gust", 8.5, None)]
