"""Spray control from the status page: only with the page token, only by a JSON POST, through the command path.

A real `sitewatch run` polls a simulated dust node whose spray starts in manual "off"; the page token is in
a credential file. Refusals (no token, a wrong one, another origin, a GET, a bad mode) leave the node's coil
alone; a DevTools click on "on" in headless Chromium, after typing the token, sets the simulated node's
spray_relay coil, and "off" clears it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gateway.ops.local_server import free_port
from simulator.site import BusSpec, NodeSpec, Site
from tests.ops.service_process import Running, gateway_toml
from tests.support.cdp import Page
from tests.support.waiting import wait_until

TOKEN = "s3cret-page-token-0123456789"
EXTRA = """
[service]
heartbeat_s = 0.0
[spray.mode]
dust-1 = "off"
"""


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def post(url: str, body: object, headers: dict[str, str], method: str = "POST") -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if method == "POST" else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **headers},
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text.startswith(b"{") else {"error": text.decode()}


async def test_the_page_switches_the_spray_only_with_the_token(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "page.token").write_text(TOKEN + "\n")
    text = gateway_toml(tmp_path, str(tmp_path / "buses" / "bus0"), EXTRA, status_port=port)
    config = tmp_path / "gateway.toml"
    config.write_text(text.replace("[status]", f'[status]\nspray_token_file = "{tmp_path / "page.token"}"', 1))
    base = f"http://127.0.0.1:{port}"
    with Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=3) as site:
        bank = site.node("bus0", 1).node.bank
        gateway = Running("run", "-c", str(config))
        try:
            gateway.wait_for(f"status endpoint on {base}")
            wait_until(lambda: get(base + "/status")["nodes"][0]["online"], 240.0, 0.2)
            assert get(base + "/status")["spray_control"] is True
            on = {"node": "dust-1", "mode": "on"}
            bearer = {"Authorization": f"Bearer {TOKEN}"}

            code, answer = post(base + "/spray", on, {})
            assert code == 401 and "page token" in answer["error"]
            code, answer = post(base + "/spray", on, {"Authorization": "Bearer guess-guess-guess-guess"})
            assert code == 401 and answer["error"] == "wrong page token"
            code, answer = post(base + "/spray", on, {**bearer, "Origin": "http://evil.example"})
            assert code == 403
            code, _ = post(base + "/spray", on, bearer, method="GET")
            assert code == 405  # nothing is switched by a link
            code, answer = post(base + "/spray", {"node": "dust-1", "mode": "explode"}, bearer)
            assert code == 400 and "mode must be one of on, off, auto" in answer["error"]
            code, answer = post(base + "/spray", {"node": "dust-7", "mode": "on"}, bearer)
            assert code == 400 and answer["error"] == "invalid" and "dust-7" in answer["message"]
            assert not bank.coils[0]
            assert not [line for line in gateway.lines if TOKEN in line or "guess-guess" in line]

            async with Page(base + "/", tmp_path / "profile") as page:
                button = "button.spray[data-node='dust-1'][data-mode='{}']"
                await page.wait_for("document.getElementById('spray')?.hidden === false")
                await page.click(button.format("on"))  # no token typed yet
                assert await page.wait_for("document.getElementById('spray-note').textContent") == "请先填写控制口令"
                await page.type("#token", TOKEN)
                await page.click(button.format("on"))
                note = await page.wait_for("document.getElementById('spray-note').className === 'ok' && "
                                           "document.getElementById('spray-note').textContent", 120.0)
                assert note == "dust-1 开: ok"
                wait_until(lambda: bool(bank.coils[0]), 60.0)
                await page.click(button.format("off"))
                wait_until(lambda: not bank.coils[0], 60.0)
            gateway.wait_for(r"spray dust-1 on from the status page \(127\.0\.0\.1\) \(page-[0-9a-f]+\): applied")
            gateway.wait_for(r"spray dust-1 off from the status page")
            assert not [line for line in gateway.lines if TOKEN in line]
        finally:
            assert gateway.stop() == 0, "\n".join(gateway.lines[-50:])
