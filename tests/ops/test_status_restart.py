"""The status page after a restart: the last readings and the charts' half hour come back from the queue.

Audit (issues 11/12): a restarted gateway (an upgrade, a crash, a power cut) showed every node without a
reading and every chart empty until new samples arrived, for a node that stays offline (the reason the
site office looks) never; the queue held all of it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from gateway.deliver.queue import DurableQueue
from gateway.model import Quality, Reading
from gateway.ops.live_state import LatestReadings, seed_from_queue
from gateway.ops.local_server import free_port
from tests.ops.service_process import Running, gateway_toml


def _readings(now: float, count: int, node: str = "dust-1") -> list[Reading]:
    out = []
    for i in range(count):
        t = now - 10.0 * (count - i)  # every 10 s, the newest 10 s ago
        out += [Reading(node, "dust", "pm10", 40.0 + i, "ug/m3", Quality.NORMAL, t, 100 + i),
                Reading(node, "dust", "pm25", 20.0 + i, "ug/m3", Quality.NORMAL, t, 100 + i)]
    return out


def _fill_queue(path: Path, readings: list[Reading]) -> None:
    queue = DurableQueue(path, ["sqlite"])
    try:
        queue.append(readings)
    finally:
        queue.close()


def test_seeding_takes_the_last_half_hour_and_the_newest_value(tmp_path: Path) -> None:
    now = 1_780_000_000.0
    old = [Reading("dust-1", "dust", "pm10", 999.0, "ug/m3", Quality.NORMAL, now - 7200.0, 1)]
    _fill_queue(tmp_path / "q.sqlite3", old + _readings(now, 30))
    latest = LatestReadings()
    assert seed_from_queue(latest, tmp_path / "q.sqlite3", now) == 60
    assert [(r.channel, r.value) for r in latest.of("dust-1")] == [("pm10", 69.0), ("pm25", 49.0)]
    points = latest.recent.series("dust-1", "pm10", now - 1800.0)
    assert [v for _, v in points] == [40.0 + i for i in range(30)]  # two hours old: not charted
    assert latest.recent.nodes("dust") == ["dust-1"]


def test_a_missing_queue_seeds_nothing(tmp_path: Path) -> None:
    latest = LatestReadings()
    assert seed_from_queue(latest, tmp_path / "none.sqlite3", 1_780_000_000.0) == 0
    assert not (tmp_path / "none.sqlite3").exists()


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as answer:
        return json.loads(answer.read())


def test_after_a_restart_the_page_shows_the_last_readings_of_an_offline_node(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "gateway.toml"
    # The bus's adapter is gone: dust-1 stays offline in this run, as after a cable cut.
    config.write_text(gateway_toml(tmp_path, str(tmp_path / "no-adapter"), status_port=port))
    _fill_queue(tmp_path / "store-queue.sqlite3", _readings(time.time(), 30))  # what the last run queued
    run = Running("run", "-c", str(config))
    try:
        run.wait_for(r"status endpoint on ")
        state = _get(port, "/status")
        (node,) = [n for n in state["nodes"] if n["name"] == "dust-1"]
        assert not node["online"]
        assert {r["channel"]: r["value"] for r in node["readings"]} == {"pm10": 69.0, "pm25": 49.0}, node
        charts = _get(port, "/charts?lang=en")["charts"]
        dust = [c for c in charts if c.get("kind") == "dust"]
        assert [c["node"] for c in dust] == ["dust-1"], charts
        assert "no data yet" not in dust[0]["svg"]
    finally:
        assert run.stop() == 0
