"""What `sitewatch demo` starts besides the simulated site and the gateway, and where it says the data went.

* InfluxDB: when influxd is installed, a private one (gateway/ops/local_influx.py)
  on a free loopback port, its data in ``var/<store>-influxdb`` beside the
  SQLite store, and an ``influxdb`` sink (v1 /write, database ``sitewatch``) in
  the demo gateway. Without influxd the demo says so and keeps to SQLite.
* An HJ 212 receiver, in-process on a free loopback port (what
  ``sitewatch hj212 listen`` runs), and an ``hj212`` sink sending to it, as a
  municipal platform would receive the site; what it receives goes into the
  same InfluxDB (measurement ``hj212``) when there is one.

Everything started here is stopped by ``stop()``: the demo calls it after the
gateway has flushed its sinks, also when it ends by an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from gateway.deliver.hj212_influx import InfluxPacketWriter
from gateway.deliver.hj212_listen import Received, Receiver
from gateway.deliver.influx import make_writer
from gateway.ops.config import SinkSpec
from gateway.ops.local_influx import LocalInflux, query_command
from gateway.ops.local_mosquitto import LocalMosquitto, subscribe_command
from gateway.ops.local_server import LocalServer, LocalServerError, resolve_binary

DATABASE = "sitewatch"
GATEWAY_NAME = "demo"
HJ212_MN = "DEMO0000000001"
MQTT_PREFIX = "sitewatch"
HJ212_RTD_INTERVAL_S = 10  # a real-time packet every 10 s, so a short demo shows some
INFLUX_FLUSH_TIMEOUT_S = 10.0
NOT_INSTALLED = "InfluxDB not installed: data in SQLite only"


def influx_root(store: Path) -> Path:
    """The demo's InfluxDB folder: beside the store (var/demo.sqlite3 -> var/demo-influxdb)."""
    return store.parent / f"{store.stem}-influxdb"


@dataclass
class DemoServices:
    store: Path
    influx: LocalInflux | None = None
    influx_note: str = ""  # why there is no InfluxDB, when there is none
    mosquitto: LocalMosquitto | None = None
    receiver: Receiver | None = None
    hj212_address: tuple[str, int] | None = None
    hj212_packets: int = 0
    hj212_writer: InfluxPacketWriter | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, influxd: str | None, no_influx: bool, hj212: bool, mosquitto: str | None = None,
                    no_mqtt: bool = True) -> list[str]:
        """Start what is available; returns what to tell the user."""
        said: list[str] = []
        if not no_mqtt:
            said += await self._start_mosquitto(mosquitto)
        if no_influx:
            self.influx_note = "InfluxDB not started (--no-influx): data in SQLite only"
        else:
            binary = resolve_binary("influxd", influxd)
            if binary is None:
                self.influx_note = NOT_INSTALLED + (f" (no {influxd})" if influxd else "")
            else:
                await self._start_influx(binary)
        if self.influx is None:
            said.append(self.influx_note)
        else:
            said.append(f"InfluxDB: {self.influx.url} (influxd pid {self.influx.pid}, data in "
                        f"{self.influx.root.resolve()}), database {DATABASE}")
            said.append(f"  look: {query_command(self.influx.url, DATABASE, SAMPLE_INFLUXQL)}")
        if hj212:
            await self._start_receiver()
            assert self.hj212_address is not None
            host, port = self.hj212_address
            said.append(f"HJ 212 receiver: {host}:{port} (MN {HJ212_MN}, real-time every {HJ212_RTD_INTERVAL_S} s)"
                        + (", written to InfluxDB as measurement hj212" if self.hj212_writer else ""))
        return said

    async def _start_influx(self, binary: str) -> None:
        influx = LocalInflux(influx_root(self.store), binary)
        try:
            await _start_server(influx)
            await asyncio.to_thread(influx.create_database, DATABASE)
        except (LocalServerError, OSError) as error:
            await asyncio.to_thread(influx.stop)
            self.influx_note = f"InfluxDB did not start ({error}): data in SQLite only"
            return
        self.influx = influx

    async def _start_mosquitto(self, option: str | None) -> list[str]:
        binary = resolve_binary("mosquitto", option)
        if binary is None:
            return ["MQTT: mosquitto not installed: no MQTT broker" + (f" (no {option})" if option else "")]
        broker = LocalMosquitto(self.store.parent / f"{self.store.stem}-mosquitto", binary)
        try:
            await _start_server(broker)
        except (LocalServerError, OSError) as error:
            await asyncio.to_thread(broker.stop)
            return [f"MQTT: mosquitto did not start ({error})"]
        self.mosquitto = broker
        return [f"MQTT: mosquitto on 127.0.0.1:{broker.port} (pid {broker.pid}), topics under {MQTT_PREFIX}/",
                f"  look: {subscribe_command(broker.port, MQTT_PREFIX + '/#')}"]

    async def _start_receiver(self) -> None:
        if self.influx is not None:
            writer = make_writer("v1", self.influx.url, DATABASE, "", "", "s", True, 10.0, None)
            self.hj212_writer = InfluxPacketWriter(writer)
            self._tasks.append(asyncio.create_task(self.hj212_writer.run(self._stop)))
        self.receiver = Receiver(self._received)
        self.hj212_address = await self.receiver.start("127.0.0.1", 0)

    def _received(self, packet: Received) -> None:
        self.hj212_packets += 1
        if self.hj212_writer is not None:
            self.hj212_writer(packet)

    def sinks(self, site: str) -> tuple[SinkSpec, ...]:
        """The sinks the demo gateway gets besides its SQLite store."""
        specs = []
        if self.influx is not None:
            specs.append(SinkSpec("influxdb", "influxdb", MappingProxyType({
                "url": self.influx.url, "api": "v1", "database": DATABASE, "site": site, "gateway": GATEWAY_NAME,
            })))
        if self.mosquitto is not None:
            specs.append(SinkSpec("mqtt", "mqtt", MappingProxyType({
                "host": "127.0.0.1", "port": self.mosquitto.port, "tls": False, "site": site,
                "gateway": GATEWAY_NAME, "topic_prefix": MQTT_PREFIX,
            })))
        if self.hj212_address is not None:
            host, port = self.hj212_address
            specs.append(SinkSpec("hj212", "hj212", MappingProxyType({
                "host": host, "port": port, "mn": HJ212_MN, "rtd_interval": HJ212_RTD_INTERVAL_S,
                "nodes": "dust-1", "store": str(self.store),
            })))
        return tuple(specs)

    def running(self) -> str:
        """One line for the live table's footer: what runs besides the gateway."""
        parts = [f"influxd {self.influx.url}" if self.influx is not None else "no InfluxDB (SQLite only)"]
        if self.mosquitto is not None:
            parts.append(f"mosquitto 127.0.0.1:{self.mosquitto.port}")
        if self.hj212_address is not None:
            parts.append(f"HJ 212 receiver {self.hj212_address[0]}:{self.hj212_address[1]} "
                         f"({self.hj212_packets} packets)")
        return "running: " + ", ".join(parts)

    async def stop(self) -> list[str]:
        """Stop everything started here (receiver, its writer, influxd); returns what to tell the user."""
        said = []
        self._stop.set()
        if self.receiver is not None:
            await self.receiver.close()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await task
        if self.hj212_writer is not None:
            await self.hj212_writer.close(INFLUX_FLUSH_TIMEOUT_S)
        if self.receiver is not None:
            said.append(f"HJ 212 receiver: {self.hj212_packets} packets received"
                        + (f"; {self.hj212_writer.summary()}" if self.hj212_writer is not None else ""))
        if self.influx is not None:
            pid = self.influx.pid
            await asyncio.to_thread(self.influx.stop)
            said.append(f"stopped influxd (pid {pid}); its data stays in {self.influx.root.resolve()}")
        if self.mosquitto is not None:
            pid = self.mosquitto.pid
            await asyncio.to_thread(self.mosquitto.stop)
            said.append(f"stopped mosquitto (pid {pid})")
        return said


SAMPLE_INFLUXQL = 'SELECT last("value") FROM "reading" GROUP BY "node", "channel"'
SAMPLE_SQL = ("SELECT node, channel, value, unit, quality, datetime(ts, 'unixepoch') FROM readings "
              "ORDER BY id DESC LIMIT 10")


def where_the_data_went(store: Path, services: DemoServices) -> list[str]:
    """How to look at what the demo wrote, after it stopped."""
    path = store.resolve()
    lines = ["where the data went:", f"  SQLite: {path}", f"    sqlite3 {shlex.quote(str(path))} \"{SAMPLE_SQL}\""]
    if services.influx is None:
        lines.append(f"  {services.influx_note}")
    else:
        config = services.influx.config.resolve()
        lines += [
            f"  InfluxDB: {services.influx.root.resolve()} (database {DATABASE}; measurements reading, aggregate, "
            "alarm, outage, hj212). To look again, start it and query it:",
            f"    influxd run -config {shlex.quote(str(config))} &",
            f"    {query_command(services.influx.url, DATABASE, SAMPLE_INFLUXQL)}",
        ]
    if services.mosquitto is not None:
        lines.append(f"  MQTT: published under {MQTT_PREFIX}/ on the demo's mosquitto (stopped with it; nothing kept)")
    return lines


async def _start_server(server: LocalServer) -> None:
    server.launch()  # on this (the main) thread: see LocalServer.launch
    await asyncio.to_thread(server.wait_ready)
