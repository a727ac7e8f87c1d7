"""The Gateway with an `mqtt` [[sink]] from its configuration: a simulated site, a real mosquitto, real commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from gateway.ops.service import Gateway
from simulator.site import BusSpec, NodeSpec, Site
from tests.gateway.deliver.test_mqtt import KEY, body, command, message, reply_to
from tests.gateway.test_pipeline import site_config
from tests.support.mosquitto import GATEWAY, GATEWAY_USER, OPERATOR_USER, OWN, PASSWORDS, SITE, Listener, Mosquitto


def mqtt_table(broker: Mosquitto, folder: Path) -> str:
    (folder / "mqtt-password").write_text(PASSWORDS[GATEWAY_USER] + "\n")
    (folder / "command-key").write_bytes(KEY + b"\n")
    return f"""
[site]
name = "{SITE}"
[[sink]]
type = "mqtt"
host = "127.0.0.1"
port = {broker.port}
gateway = "{GATEWAY}"
ca_file = "{broker.ca}"
username = "{GATEWAY_USER}"
password_file = "mqtt-password"
command_key_file = "command-key"
max_backoff_s = 1.0
"""


async def test_the_gateway_publishes_its_readings_and_obeys_signed_commands(
    broker: Mosquitto, operator: Listener, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))  # as systemd's LoadCredential= hands them over
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=5)
    config = site_config(tmp_path, tmp_path / "buses" / "bus0", mqtt_table(broker, tmp_path))
    with site:
        gateway = Gateway(config)
        assert [d.name for d in gateway.deliveries] == ["sqlite", "mqtt.alarms", "mqtt"]
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        try:
            first = await message(operator, lambda m: m.topic.startswith(f"{OWN}/reading/dust-1/"))
            assert body(first)["record"]["node"] == "dust-1"

            operator.publish(f"{OWN}/cmd", command("threshold", {"setting": "wind.crane_gust", "value": 8.5}, "t-1"))
            reply = await reply_to(operator, "t-1")
            assert reply["ok"] and reply["result"]["old"] == 9.0, reply
            assert gateway.pipeline.alarms is not None
            assert gateway.pipeline.alarms.limits.site.wind.crane_gust == 8.5

            operator.publish(f"{OWN}/cmd", command("threshold", {"setting": "wind.crane_gusto", "value": 8}, "t-2"))
            assert (await reply_to(operator, "t-2"))["error"] == "invalid"
            assert gateway.pipeline.alarms.limits.site.wind.crane_gust == 8.5

            operator.publish(f"{OWN}/cmd", command("poll_interval", {"seconds": 2.0, "node": "dust-1"}, "p-1"))
            assert (await reply_to(operator, "p-1"))["result"]["nodes"] == ["dust-1"]
            assert gateway.pollers[0]._nodes[0].config.interval == 2.0

            operator.publish(f"{OWN}/cmd", command("spray", {"node": "dust-1", "mode": "off"}, "s-1"))
            spray = await reply_to(operator, "s-1")
            assert spray["ok"] and spray["result"]["writes"] == ["ok"], spray
            assert gateway.pipeline.spray_state()["dust-1"][0] == "off"
            await message(operator, lambda m: m.topic == f"{OWN}/event/actuation/dust-1")

            operator.publish(f"{OWN}/cmd", command("time_sync", {}, "ts-1"))
            sync = await reply_to(operator, "ts-1")
            assert sync["ok"] and abs(sync["result"]["offset_s"]) < 60
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
    status = broker.client(OPERATOR_USER)
    status.subscribe(f"{OWN}/status")
    try:
        last = status.wait_for(lambda m: True, 20)
        assert json.loads(last.payload)["state"] == "offline"
    finally:
        status.close()
