"""`sitewatch status`, /metrics and the alarm notifications, against a real `sitewatch run` on a simulated site."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.acquire.health import LATENCY_BUCKETS_S
from gateway.ops.cmd_status import EXIT_NOT_RUNNING
from gateway.ops.local_server import free_port
from simulator.site import BusSpec, NodeSpec, Site
from tests.ops.service_process import SITEWATCH, Running, gateway_toml
from tests.support.http_recorder import HttpRecorder
from tests.support.waiting import wait_until

# dust-1 answers; dust-9 is configured but nobody answers as unit 9. The dust alarm judges the raw PM10
# against a limit of 1 ug/m3, so it is raised within seconds of the first reading.
EXTRA = """
[service]
heartbeat_s = 0.0
[spray]
enabled = false
[limits.dust]
pm10_1h_limit = 1.0
[[processing.alarm]]
type = "dust"
channels = ["pm10"]
"""
DEAD_NODE = '[[bus.node]]\nname = "dust-9"\nkind = "dust"\nunit_id = 9\ninterval = 0.5\n'


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SITEWATCH, "status", *args], capture_output=True, text=True, timeout=60)


def json_status(config: Path) -> dict[str, Any]:
    done = status("--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    state: dict[str, Any] = json.loads(done.stdout)
    return state


def metrics(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        text = answer.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Any, name: str, **labels: str) -> list[Any]:
    return [s for s in family.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def test_status_metrics_and_notifications_of_a_running_gateway(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "wecom.key").write_text("wk-secret\n")
    (tmp_path / "ding.token").write_text("dt\n")
    (tmp_path / "ding.secret").write_text("SECsecret\n")
    with HttpRecorder([(500, b"down for a moment")]) as webhook, HttpRecorder() as robots:
        notify = (f'[notify]\nwebhook_url = "{webhook.url}/hook"\n'
                  f'wecom_url = "{robots.url}/wecom"\nwecom_key_file = "{tmp_path / "wecom.key"}"\n'
                  f'dingtalk_url = "{robots.url}/ding"\ndingtalk_token_file = "{tmp_path / "ding.token"}"\n'
                  f'dingtalk_secret_file = "{tmp_path / "ding.secret"}"\n')
        text = gateway_toml(tmp_path, str(tmp_path / "buses" / "bus0"), EXTRA + notify,
                            queue_extra="max_backoff_s = 1.0\ndeliver_interval_s = 0.1", status_port=port) + DEAD_NODE
        config = tmp_path / "gateway.toml"
        config.write_text(text)

        # Not running yet: a clear message and status 3.
        done = status("--config", str(config))
        assert done.returncode == EXIT_NOT_RUNNING
        assert "the gateway is not running" in done.stderr and f"127.0.0.1:{port}/status" in done.stderr

        site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=3)
        with site:
            gateway = Running("run", "-c", str(config))
            try:
                gateway.wait_for(f"status endpoint on http://127.0.0.1:{port}")

                def settled() -> bool:  # read directly (a `sitewatch status` process takes a second to start)
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30) as answer:
                        state = json.loads(answer.read())
                    nodes = {n["name"]: n for n in state["nodes"]}
                    return (nodes["dust-1"]["online"] and nodes["dust-9"]["consecutive_failures"] >= 3
                            and bool(state["alarms"]) and bool(nodes["dust-1"]["readings"]))

                wait_until(settled, 240.0, 0.2)
                state = json_status(config)
                assert state["site"] == "site" and state["clock"]["valid"] is True and state["pid"] == gateway.pid
                assert [b["name"] for b in state["buses"]] == ["bus0"] and state["buses"][0]["nodes"] == 2
                nodes = {n["name"]: n for n in state["nodes"]}
                one, nine = nodes["dust-1"], nodes["dust-9"]
                assert one["kind"] == "dust" and one["unit_id"] == 1 and one["latency_ms"] > 0
                assert 0 <= one["last_seen_age_s"] < 60 and one["success_rate"] > 0
                assert {r["channel"] for r in one["readings"]} >= {"pm10", "pm25"}
                assert not nine["online"] and nine["last_seen_age_s"] is None and nine["last_error"]
                assert state["nodes_online"] == 1 and state["nodes_total"] == 2
                assert state["status_line"].startswith("1/2 nodes online") and state["stuck"] == {}  # systemd's
                assert {s["name"] for s in state["sinks"]} == {"sqlite", "notify.wecom", "notify.dingtalk",
                                                               "notify.webhook"}
                assert all(isinstance(s["backlog"], int) for s in state["sinks"]) and state["queue_answered"]
                assert state["alarms"][0]["alarm"] == "dust" and state["alarms"][0]["node"] == "dust-1"
                assert "wk-secret" not in json.dumps(state) and "SECsecret" not in json.dumps(state)

                human = status("--config", str(config))
                assert human.returncode == 0, human.stderr
                out = human.stdout
                assert "nodes: 1/2 online" in out and "clock: valid" in out
                assert "bus bus0" in out and "OFFLINE dust-9" in out and "online  dust-1" in out
                assert "last seen" in out and "latency" in out
                assert "sqlite" in out and "backlog" in out and "oldest" in out
                assert "alarms active: 1" in out and "dust on dust-1/pm10" in out

                # Prometheus: scraped and parsed with prometheus_client's own parser.
                families = metrics(port)
                polls = samples(families["sitewatch_node_polls"], "sitewatch_node_polls_total", node="dust-1")
                answered = samples(families["sitewatch_node_polls_answered"], "sitewatch_node_polls_answered_total",
                                   node="dust-1")
                assert polls[0].value > 0 and answered[0].value > 0
                assert samples(families["sitewatch_node_online"], "sitewatch_node_online", node="dust-9")[0].value == 0
                latency = families["sitewatch_node_latency_seconds"]
                buckets = samples(latency, "sitewatch_node_latency_seconds_bucket", node="dust-1")
                assert [b.labels["le"] for b in buckets] == [*map(str, LATENCY_BUCKETS_S), "+Inf"]
                counts = [b.value for b in buckets]
                assert counts == sorted(counts) and counts[-1] >= answered[0].value > 0  # cumulative, every reply
                count = samples(latency, "sitewatch_node_latency_seconds_count", node="dust-1")[0].value
                assert count == counts[-1]
                assert samples(families["sitewatch_sink_backlog"], "sitewatch_sink_backlog", sink="sqlite")
                assert samples(families["sitewatch_sink_oldest_age_seconds"], "sitewatch_sink_oldest_age_seconds",
                               sink="notify.webhook")
                assert samples(families["sitewatch_sink_delivered"], "sitewatch_sink_delivered_total",
                               sink="sqlite")[0].value > 0
                assert samples(families["sitewatch_alarms_active"], "sitewatch_alarms_active", alarm="dust",
                               node="dust-1", severity="alarm")[0].value == 1
                assert samples(families["sitewatch_dropped"], "sitewatch_dropped_total", cause="queue_quota")
                assert samples(families["sitewatch_bus_transactions"], "sitewatch_bus_transactions_total",
                               bus="bus0")[0].value > 0
                busy = samples(families["sitewatch_bus_busy_seconds"], "sitewatch_bus_busy_seconds_total", bus="bus0")
                assert busy[0].value > 0  # dust-9's timeouts alone hold the bus for seconds
                assert 0 < samples(families["sitewatch_bus_utilisation"], "sitewatch_bus_utilisation",
                                   bus="bus0")[0].value <= 1
                assert samples(families["sitewatch_node_late_samples"], "sitewatch_node_late_samples_total",
                               node="dust-1")
                assert samples(families["process_cpu_seconds"], "process_cpu_seconds_total")[0].value > 0
                assert families["process_resident_memory_bytes"].samples[0].value > 0

                # The alarm reached every notifier; the webhook only after its first try failed with a 500.
                wait_until(lambda: len(webhook.requests) >= 2 and len(robots.requests) >= 2, 120.0)
                assert webhook.answers[:2] == [500, 200]
                assert webhook.requests[0].body == webhook.requests[1].body  # the same event, retried
                hook = webhook.requests[1].json()
                assert hook["alarm"] == "dust" and hook["state"] == "raised" and hook["title"].startswith("【")
                by_path = {r.path: r for r in robots.requests}
                assert by_path["/wecom"].query["key"] == ["wk-secret"]
                assert by_path["/wecom"].json()["markdown"]["content"].startswith("### 【")
                assert set(by_path["/ding"].query) == {"access_token", "timestamp", "sign"}
                assert not [line for line in gateway.lines if "wk-secret" in line or "SECsecret" in line]
            finally:
                assert gateway.stop() == 0, "\n".join(gateway.lines)

        # Stopped: the endpoint is gone with it.
        done = status("--config", str(config), "--json")
        assert done.returncode == EXIT_NOT_RUNNING and done.stdout == ""


def test_a_port_in_use_is_one_error_line_and_the_gateway_runs_on(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = tmp_path / "gateway.toml"
        config.write_text(gateway_toml(tmp_path, str(tmp_path / "no-bus"), status_port=port))
        gateway = Running("run", "-c", str(config))
        try:
            line = gateway.wait_for("status endpoint: cannot listen")
            assert f"127.0.0.1:{port}" in line and "ERROR" in line
            gateway.wait_for("site site: 1 bus")
        finally:
            assert gateway.stop() == 0, "\n".join(gateway.lines)


def test_a_gateway_without_an_endpoint_is_said_so(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path, "/dev/null"))
    done = status("--config", str(config))
    assert done.returncode == 78 and "status.port is 0" in done.stderr


# -- the status page, in real headless Chromium ------------------------------------------------------

CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--virtual-time-budget=4000"]


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    assert binary is not None, "chromium is missing: tools/install-system-deps.sh installs it"
    return subprocess.run([binary, *CHROMIUM, *args], capture_output=True, text=True, timeout=120)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_status_page_shows_nodes_and_the_alarm_banner_in_both_languages(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path, str(tmp_path / "buses" / "bus0"), EXTRA, status_port=port) + DEAD_NODE)
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=3)
    with site:
        gateway = Running("run", "-c", str(config))
        try:
            gateway.wait_for(f"status endpoint on http://127.0.0.1:{port}")

            def alarmed() -> bool:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30) as answer:
                    state = json.loads(answer.read())
                return bool(state["alarms"]) and state["nodes"][0]["online"]

            wait_until(alarmed, 240.0, 0.2)
            page = f"http://127.0.0.1:{port}/"
            zh = chromium("--dump-dom", page).stdout
            assert 'data-loaded="1"' in zh, zh[-2000:]  # the script fetched /status and rendered it
            assert '<div id="banner" role="alert" class="" style="display: block;">报警：报警 扬尘超标 @ dust-1' in zh
            assert '<h2 data-t="nodes">测点</h2>' in zh and "dust-1" in zh and "dust-9" in zh and "离线" in zh
            en = chromium("--dump-dom", page + "?lang=en").stdout
            assert "ALARM: ALARM dust over the limit @ dust-1" in en and "OFFLINE" in en
            assert '<h2 data-t="nodes">Nodes</h2>' in en
            for width, height in ((1280, 800), (390, 844)):
                shot = tmp_path / f"page-{width}.png"
                done = chromium(f"--screenshot={shot}", f"--window-size={width},{height}", page)
                assert done.returncode == 0, done.stderr[-2000:]
                assert png_size(shot) == (width, height)
        finally:
            assert gateway.stop() == 0, "\n".join(gateway.lines)


def test_the_endpoint_comes_from_the_url_the_configuration_or_the_default(tmp_path: Path,
                                                                          monkeypatch: Any) -> None:
    import argparse

    from gateway.ops import cmd_status

    def args(**kw: Any) -> argparse.Namespace:
        return argparse.Namespace(**{"url": None, "config": None, **kw})

    assert cmd_status.endpoint(args(url="http://10.0.0.5:9000/")) == "http://10.0.0.5:9000"
    config = tmp_path / "gateway.toml"
    text = gateway_toml(tmp_path, "/dev/null", status_port=9999)
    config.write_text(text.replace("[status]", '[status]\nbind = "0.0.0.0"'))
    assert cmd_status.endpoint(args(config=config)) == "http://127.0.0.1:9999"  # all addresses: ask loopback
    # The installed file is not readable by everyone: the default address then.
    monkeypatch.setattr(cmd_status, "DEFAULT_CONFIG", tmp_path / "unreadable.toml")
    assert cmd_status.endpoint(args()) == "http://127.0.0.1:9721"
    monkeypatch.setattr(cmd_status, "DEFAULT_CONFIG", config)
    assert cmd_status.endpoint(args()) == "http://127.0.0.1:9999"
