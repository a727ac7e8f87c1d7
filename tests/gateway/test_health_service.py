"""The running gateway's health reports, end to end, against real services and a simulated site.

* InfluxDB 1.6.7: gateway_health / sink_health / node_health points land with the values the gateway
  measured; while influxd is down the queue depth and the sink's backlog rise, and the reports measured
  meanwhile arrive once it is back; a node the simulator silences shows offline.
* mosquitto: a health message on <base>/health with an id, and the retained status carrying it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.deliver.records import HealthReport
from gateway.ops.config import GatewayConfig, HealthConfig
from gateway.ops.service import Gateway
from simulator.faults import Fault, FaultKind
from simulator.site import BusSpec, NodeSpec, Site
from tests.gateway.deliver.test_mqtt import body, message
from tests.gateway.deliver.test_mqtt_gateway import mqtt_table
from tests.gateway.test_pipeline import site_config
from tests.support.influx import InfluxServer
from tests.support.mosquitto import OPERATOR_USER, OWN, Listener, Mosquitto

DEADLINE = 60.0  # s for each condition: generous, two busy cores
INTERVAL = 0.5  # s between reports: many reports in a short test


async def until(what: str, condition: Callable[[], bool], task: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert not task.done(), f"the gateway stopped while waiting for {what}: {task}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def fast_health(config: GatewayConfig) -> GatewayConfig:
    return dataclasses.replace(
        config, health=HealthConfig(True, INTERVAL), queue=dataclasses.replace(config.queue, max_backoff_s=1.0)
    )


def collect(gateway: Gateway) -> list[HealthReport]:
    """Every report the gateway queues, as it queues it (the truth the servers are compared with)."""
    assert gateway.health is not None
    made: list[HealthReport] = []
    queue_it = gateway.health.accept

    def accept(records: list[Any]) -> None:
        made.extend(records)
        queue_it(records)

    gateway.health.accept = accept
    return made


async def test_health_points_reach_influxdb_and_those_measured_while_it_was_down_arrive_later(
    tmp_path: Path, own_influxd: InfluxServer
) -> None:
    db = own_influxd.database()
    sink = f"""
[[sink]]
type = "influxdb"
name = "bureau"
url = "{own_influxd.url}"
api = "v1"
database = "{db}"
site = "zs-site-1"
gateway = "gw-test"
timeout_s = 2.0
"""
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=5)
    config = fast_health(site_config(tmp_path, tmp_path / "buses" / "bus0", sink))
    influxd = own_influxd

    def points(measurement: str, where: str = "") -> list[dict[str, Any]]:
        return influxd.rows(f"SELECT * FROM {measurement} {where} GROUP BY *", db)

    with site:
        gateway = Gateway(config)
        made = collect(gateway)
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        try:
            await until("a report with the node online in influxd",
                        lambda: any(p["nodes_online"] == 1 for p in points("gateway_health")), task)
            influxd.stop()
            down_from = len(made)
            await until("two reports showing the bureau sink down with a growing backlog", lambda: len([
                r for r in made[down_from:]
                if any(s.sink == "bureau" and not s.connected and s.backlog > 0 for s in r.sinks)
            ]) >= 2, task)
            # The node falls silent while InfluxDB is down.
            site.faults.add(Fault(FaultKind.NO_REPLY, "bus0", site.scenario_time(), unit_id=1))
            await until("a report with the node offline", lambda: made[-1].gateway.nodes_online == 0, task)
            down_until = len(made)
            influxd.start()
            await until("the reports made while influxd was down, in influxd", lambda: len(
                points("gateway_health", "WHERE nodes_online = 0")) > 0, task)
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)

    during = made[down_from:down_until]
    depths = [r.gateway.queue_depth for r in during]
    assert depths[-1] > depths[0], depths  # the queue grows while a sink is down
    backlogs = [next(s.backlog for s in r.sinks if s.sink == "bureau") for r in during]
    assert backlogs[-1] > backlogs[0], backlogs
    # Every report the gateway made, shutdown flush included, is one point in each measurement, with its values.
    stored = {p["time"]: p for p in points("gateway_health")}
    assert len(stored) == len(made)
    for r in made:
        p = stored[round(r.time * 1e6) * 1000]
        g = r.gateway
        assert (p["site"], p["gateway"]) == ("zs-site-1", "gw-test")
        assert (p["queue_depth"], p["nodes_online"], p["nodes_total"], p["dropped_total"]) == (
            g.queue_depth, g.nodes_online, g.nodes_total, g.dropped_total)
        assert p["clock_valid"] is True and p["rss_bytes"] == g.rss_bytes > 10_000_000
        assert p["uptime_s"] == g.uptime_s and p["cpu_s"] == g.cpu_s > 0
        assert p["queue_oldest_age_s"] == g.queue_oldest_age_s
    sinks = points("sink_health", "WHERE sink = 'bureau'")
    assert len(sinks) == len(made)
    assert any(s["connected"] is False and s["backlog"] > 0 and s["failed_total"] > 0 for s in sinks)
    assert sinks[-1]["fatal"] is False
    nodes = points("node_health")
    assert len(nodes) == len(made)
    assert {(n["node"], n["kind"], n["bus"]) for n in nodes} == {("dust-1", "dust", "bus0")}
    assert any(n["online"] is True for n in nodes) and nodes[-1]["online"] is False
    assert any(n["success_rate"] == 1.0 for n in nodes) and nodes[-1]["success_rate"] in (0.0, None)
    assert all(n["latency_ms"] > 0 for n in nodes if n["latency_ms"] is not None)  # absent before a first reply
    for n in nodes:  # each point says what the report said
        r = next(r for r in made if round(r.time * 1e6) * 1000 == n["time"]).nodes[0]
        assert (n["polls_ok_total"], n["polls_failed_total"], n["success_rate"]) == (
            r.polls_ok_total, r.polls_failed_total, r.success_rate)
    # The last good reply ages while the node is silent.
    silent = [n["last_seen_age_s"] for n in nodes if n["online"] is False]
    assert silent and silent[-1] > 1.0


def up(record: dict[str, Any]) -> bool:
    """A report measured once the node answered and the MQTT connection was up."""
    mqtt = next(s for s in record["sinks"] if s["sink"] == "mqtt")
    return bool(record["gateway"]["nodes_online"] == 1 and mqtt["connected"])


async def test_the_health_message_arrives_over_mqtt_and_the_retained_status_carries_it(
    broker: Mosquitto, operator: Listener, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=5)
    config = fast_health(site_config(tmp_path, tmp_path / "buses" / "bus0", mqtt_table(broker, tmp_path)))
    with site:
        gateway = Gateway(config)
        made = collect(gateway)
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        try:
            first = await message(operator, lambda m: m.topic == f"{OWN}/health" and up(body(m)["record"]))
            status = await message(operator, lambda m: m.topic == f"{OWN}/status" and "health" in body(m))
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
    health = body(first)
    report = next(r for r in made if r.time == health["record"]["time"])
    assert health["id"] == f"site-a/gw-1/health/{report.time!r}" and health["kind"] == "health"
    record = health["record"]
    assert record["gateway"]["nodes_total"] == 1 and record["gateway"]["clock_valid"] is True
    assert {s["sink"] for s in record["sinks"]} == {"sqlite", "mqtt", "mqtt.alarms"}
    assert next(s for s in record["sinks"] if s["sink"] == "mqtt")["connected"] is True
    assert record["nodes"][0]["node"] == "dust-1" and record["nodes"][0]["online"] is True
    assert body(status)["state"] == "online" and body(status)["health"]["gateway"]["nodes_total"] == 1
    # After the stop, the retained status says offline and still carries the last report published.
    late = broker.client(OPERATOR_USER)
    late.subscribe(f"{OWN}/status")
    try:
        retained = json.loads(late.wait_for(lambda m: True, 20).payload)
    finally:
        late.close()
    assert retained["state"] == "offline" and retained["reason"] == "stopped"
    assert retained["health"]["time"] <= made[-1].time
