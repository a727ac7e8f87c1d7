"""Acknowledging an alarm from the status page: a real click in headless Chromium reaches the gateway.

The gateway is a real `sitewatch run` on a simulated dust node whose alarm limit is 1 ug/m3 (raised within
seconds). The click is a DevTools mouse event at the button (tests/support/cdp.py), so the page's own script
sends the POST. Checked: the acknowledgement is in /status and on the page, the alarm stays active, it is
logged and on disk after the gateway stopped; requests a browser would refuse to send cross-site, or that name
no active alarm or nobody, are refused and change nothing.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gateway.ops.local_server import free_port
from simulator.site import BusSpec, NodeSpec, Site
from tests.ops.service_process import Running, gateway_toml
from tests.ops.test_status import EXTRA
from tests.support.cdp import Page
from tests.support.waiting import wait_until


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_a_click_on_acknowledge_is_recorded_and_the_alarm_stays_active(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path, str(tmp_path / "buses" / "bus0"), EXTRA, status_port=port))
    base = f"http://127.0.0.1:{port}"
    with Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=3):
        gateway = Running("run", "-c", str(config))
        try:
            gateway.wait_for(f"status endpoint on {base}")
            wait_until(lambda: bool(get(base + "/status")["alarms"]), 240.0, 0.2)
            alarm = get(base + "/status")["alarms"][0]
            assert alarm["acknowledged"] is None
            body = {k: alarm[k] for k in ("alarm", "node", "channel", "since")}
            json_type = {"Content-Type": "application/json"}

            # Refused, each with a reason, and nothing recorded.
            ack = base + "/alarms/ack"
            code, answer = post(ack, b"alarm=dust&by=x", {"Content-Type": "application/x-www-form-urlencoded"})
            assert code == 415 and "application/json" in answer["error"]
            code, answer = post(ack, json.dumps({**body, "by": "x"}).encode(),
                                {**json_type, "Origin": "http://evil.example"})
            assert code == 403 and "http://evil.example" in answer["error"]
            code, answer = post(ack, json.dumps({**body, "since": alarm["since"] - 60, "by": "x"}).encode(), json_type)
            assert code == 409 and "no active alarm dust on dust-1/pm10" in answer["error"]
            code, answer = post(ack, json.dumps({**body, "by": "  "}).encode(), json_type)
            assert code == 400 and answer["error"].startswith("by: who acknowledges")
            code, answer = post(ack, b"{not json", json_type)
            assert code == 400 and "not JSON" in answer["error"]
            assert get(base + "/status")["alarms"][0]["acknowledged"] is None
            # No [status] spray_token_file: the page cannot switch sprays, whatever it sends.
            assert get(base + "/status")["spray_control"] is False
            code, answer = post(base + "/spray", json.dumps({"node": "dust-1", "mode": "on"}).encode(),
                                {**json_type, "Authorization": "Bearer 0123456789abcdef0123"})
            assert code == 403 and "spray control from the page is off" in answer["error"]

            async with Page(base + "/", tmp_path / "profile") as page:
                await page.wait_for("!!document.querySelector('button.ack')")
                await page.click("button.ack")  # no name yet: the page asks for one and sends nothing
                assert await page.wait_for("document.getElementById('ack-note').textContent") == "请先填写确认人姓名"
                assert get(base + "/status")["alarms"][0]["acknowledged"] is None
                await page.type("#who", "张工")
                await page.click("button.ack")
                shown = await page.wait_for("document.querySelector('#alarms .acked')?.textContent")
                assert shown.startswith("已确认, 确认人 张工")
                assert "(已确认)" in await page.evaluate("document.getElementById('banner').textContent")

            state = get(base + "/status")
            assert len(state["alarms"]) == 1  # acknowledged, not cleared
            acked = state["alarms"][0]
            assert acked["since"] == alarm["since"] and acked["acknowledged"]["by"] == "张工"
            assert abs(acked["acknowledged"]["at"] - state["time"]) < 60
            # A second acknowledgement is answered with the first.
            code, answer = post(ack, json.dumps({**body, "by": "李工"}).encode(), json_type)
            assert code == 200 and answer["new"] is False and answer["acknowledged"]["by"] == "张工"
            gateway.wait_for("alarm dust on dust-1/pm10 acknowledged by 张工")
        finally:
            assert gateway.stop() == 0, "\n".join(gateway.lines[-50:])
    acks = list(tmp_path.glob("*-acks.sqlite3"))
    assert len(acks) == 1, list(tmp_path.iterdir())
    with sqlite3.connect(acks[0]) as db:
        rows = db.execute("SELECT alarm, node, channel, since, by FROM acks").fetchall()
    assert rows == [("dust", "dust-1", "pm10", alarm["since"], "张工")]
