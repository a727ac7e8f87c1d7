"""The status page's charts and alarm banner in real headless Chromium, on the dust-episode scenario.

The scenario runs in-process at 30x from 10:00 local (the north-easterly freshens, PM10 at the downwind
monitor well past 150 ug/m3) and the gateway is a real `sitewatch run` process following the simulator's clock
(`[clock] simulated`). Nodes sample every 30 simulated seconds (one real second), so the 30-minute charts
fill in about a minute. The dust alarm judges the raw PM10 against the default 150 ug/m3, so the banner comes
up as soon as the first high reading arrives.

SITEWATCH_UPDATE_DOCS=1 writes the screenshots to docs/ (status-page.png, status-page-phone.png); the
last test checks the ones in docs/ either way.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from gateway.ops.local_server import free_port
from simulator.scenario import load_builtin
from simulator.site import Site
from tests.ops.service_process import Running
from tests.ops.test_status import chromium, png_size
from tests.support.png import rows_of_colour
from tests.support.waiting import wait_until

DOCS = Path(__file__).resolve().parents[2] / "docs"
SPEED = 30.0
SKIP_S = 3 * 3600.0  # 07:00 + 3 h: 10:00 local
SAMPLE_MS = 30_000
BANNER_RED = (0xC6, 0x28, 0x28)
NODES = (("dust-downwind", "dust", 1), ("dust-upwind", "dust", 2), ("wind-3", "wind", 3), ("noise-4", "noise", 4))
SHOTS = {(1280, 800): "status-page.png", (390, 844): "status-page-phone.png"}


def config_text(tmp: Path, port: int, bus: str, clock: Path) -> str:
    nodes = "".join(f'[[bus.node]]\nname = "{name}"\nkind = "{kind}"\nunit_id = {unit}\ninterval = 0.5\n'
                    for name, kind, unit in NODES)
    return f"""
[site]
name = "dust-episode"
[status]
port = {port}
[store]
path = "{tmp / 'store.sqlite3'}"
[clock]
require_sync = "never"
simulated = "{clock}"
[service]
heartbeat_s = 0.0
[spray]
enabled = false
[limits.sampling]
interval_s = 30.0
[[processing.alarm]]
type = "dust"
channels = ["pm10"]
[[bus]]
name = "boundary"
port = "{bus}"
baud = 9600
max_backoff = 1.0
{nodes}"""


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def test_charts_and_the_dust_alarm_banner_in_chromium_at_desk_and_phone_width(tmp_path: Path) -> None:
    port = free_port()
    site = Site(load_builtin("dust_episode"), tmp_path / "buses", speed=SPEED, skip=SKIP_S, burst=True)
    with site:
        for n in site.nodes:
            n.node.bank.set_holding_raw("sample_interval", SAMPLE_MS)
        site.write_clock(tmp_path / "clock.json")
        config = tmp_path / "gateway.toml"
        config.write_text(config_text(tmp_path, port, site.paths["boundary"], tmp_path / "clock.json"))
        gateway = Running("run", "-c", str(config))
        try:
            gateway.wait_for(f"status endpoint on http://127.0.0.1:{port}", 120.0)
            base = f"http://127.0.0.1:{port}"

            def filled() -> bool:
                state = get(base + "/status")
                charts = {c["id"]: c["svg"] for c in get(base + "/charts?lang=en")["charts"]}
                wind = charts.get("wind-wind-3", "")
                return bool(state["alarms"]) and wind.count(",") >= 2 * 40 and 'data-points="0"' not in wind
            wait_until(filled, 300.0, 0.5)

            charts = get(base + "/charts?lang=en")["charts"]
            assert [c["id"] for c in charts] == ["wind-wind-3", "wind-wind-3-rose", "dust-dust-downwind",
                                                 "dust-dust-upwind", "noise-noise-4"]
            page = base + "/"
            zh = chromium("--dump-dom", page).stdout
            assert 'data-charts="5"' in zh, zh[-3000:]  # the script fetched /charts and drew them
            assert "报警：报警 扬尘超标 @ dust-downwind" in zh
            assert zh.count("<svg") == 5 and "风向玫瑰图 wind-3" in zh and "塔吊安拆" in zh and "PM10限值" in zh
            assert 'class="sector"' in zh and 'class="limit step"' in zh
            en = chromium("--dump-dom", page + "?lang=en").stdout
            assert "Wind rose wind-3" in en and "crane erection" in en and "day/night limit" in en
            for (width, height), name in SHOTS.items():
                shot = tmp_path / name
                done = chromium(f"--screenshot={shot}", f"--window-size={width},{height}", page)
                assert done.returncode == 0, done.stderr[-2000:]
                assert png_size(shot) == (width, height)
                assert rows_of_colour(shot, BANNER_RED), f"{name}: no alarm banner across the page"
                if os.environ.get("SITEWATCH_UPDATE_DOCS") == "1":
                    shutil.copyfile(shot, DOCS / name)
        finally:
            assert gateway.stop() == 0, "\n".join(gateway.lines[-50:])


def test_the_screenshots_in_the_docs_show_the_alarm_banner_at_both_widths() -> None:
    for (width, height), name in SHOTS.items():
        assert png_size(DOCS / name) == (width, height)
        assert rows_of_colour(DOCS / name, BANNER_RED), f"docs/{name} shows no alarm banner"
