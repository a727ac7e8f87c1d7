"""`sitewatch demo` with and without InfluxDB: where the data goes, and nothing left running after it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from gateway.ops.local_influx import LocalInflux
from gateway.ops.local_server import find_binary, http
from tests.support.waiting import wait_until

SITEWATCH = shutil.which("sitewatch", path=str(Path(sys.executable).parent)) or "sitewatch"
INFLUX_LINE = re.compile(r"^InfluxDB: (http://127\.0\.0\.1:\d+) \(influxd pid (\d+), data in (.+)\), database (\w+)$")


def _gone(pid: int) -> bool:
    """The process has exited (a zombie that no init reaps counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _readline(proc: subprocess.Popen[str], deadline: float) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line or time.monotonic() < deadline, "the demo ended early"
    return line


def _reading_points(url: str, database: str) -> int:
    status, body = http("POST", url + "/query", f"db={database}&q=SELECT+count(seq)+FROM+reading".encode())
    match = re.search(rb'"values":\[\[[^,]+,(\d+)\]\]', body)
    return int(match.group(1)) if status == 200 and match else 0


def test_demo_with_influxd_writes_there_says_how_to_look_and_stops_it(tmp_path: Path) -> None:
    assert find_binary("influxd") is not None, "influxd is not installed (apt-get install influxdb)"
    proc = subprocess.Popen([SITEWATCH, "demo", "--duration", "20"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        lines = []
        while not lines or not INFLUX_LINE.match(lines[-1].rstrip("\n")):
            lines.append(_readline(proc, deadline))
            assert "InfluxDB not" not in lines[-1], lines
        found = INFLUX_LINE.match(lines[-1].rstrip("\n"))
        assert found
        url, pid, data, database = found.group(1), int(found.group(2)), Path(found.group(3)), found.group(4)
        assert data == tmp_path / "var" / "demo-influxdb"  # under var/, beside the store
        look = _readline(proc, deadline)
        assert look.strip().startswith(f"look: curl -sG {url}/query") and "FROM \"reading\"" in look
        # While it runs, the readings arrive in influxd.
        wait_until(lambda: _reading_points(url, database) > 0, timeout=60)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert f"stopped influxd (pid {pid})" in stdout
    assert _gone(pid), f"influxd {pid} still runs after the demo"
    assert "where the data went:" in stdout and f"sqlite3 {tmp_path / 'var' / 'demo.sqlite3'}" in stdout
    delivered = re.search(r"sinks: sqlite (\d+) delivered, 0 waiting \| influxdb (\d+) delivered, 0 waiting", stdout)
    assert delivered and int(delivered.group(2)) == int(delivered.group(1)) > 0, stdout
    # The data stays: the same folder, served again, holds the readings and what the HJ 212 receiver took in.
    again = LocalInflux(data, find_binary("influxd") or "influxd")
    again.start()
    try:
        counted = again.query('SELECT count("seq") FROM "reading"', database)[0]["values"][0][1]
        with sqlite3.connect(tmp_path / "var" / "demo.sqlite3") as db:
            stored = db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
        assert counted == stored  # every reading in both
        hj212 = again.query('SELECT * FROM "hj212" WHERE "factor" = \'a34002\'', database)
        assert hj212 and hj212[0]["values"], "the HJ 212 receiver wrote no PM10 point"
    finally:
        again.stop()


def test_demo_without_influxd_says_so_and_keeps_to_sqlite(tmp_path: Path) -> None:
    store = tmp_path / "demo.sqlite3"
    proc = subprocess.run(
        [SITEWATCH, "demo", "--duration", "6", "--store", str(store), "--influxd", str(tmp_path / "no" / "influxd"),
         "--no-hj212"],
        capture_output=True, text=True, timeout=90, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"InfluxDB not installed: data in SQLite only (no {tmp_path / 'no' / 'influxd'})" in proc.stdout
    assert "sinks: sqlite " in proc.stdout and "influxdb" not in proc.stdout.split("sinks:")[1].splitlines()[0]
    assert not (tmp_path / "demo-influxdb").exists()
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM readings").fetchone()[0] > 0


def test_a_demo_killed_outright_leaves_no_influxd_behind(tmp_path: Path) -> None:
    proc = subprocess.Popen([SITEWATCH, "demo", "--no-hj212"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    pid = None
    try:
        deadline = time.monotonic() + 90
        while pid is None:
            found = INFLUX_LINE.match(_readline(proc, deadline).rstrip("\n"))
            pid = int(found.group(2)) if found else None
        proc.send_signal(signal.SIGKILL)  # no chance to clean up: influxd must still go (its death signal)
        proc.wait(30)
        wait_until(lambda: _gone(pid), timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pid is not None and not _gone(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


MQTT_LINE = re.compile(r"^MQTT: mosquitto on 127\.0\.0\.1:(\d+) \(pid (\d+)\), topics under sitewatch/$")


def test_demo_with_mqtt_publishes_to_its_own_mosquitto_and_stops_it(tmp_path: Path) -> None:
    import queue
    import threading

    import paho.mqtt.client as paho

    assert find_binary("mosquitto") is not None, "mosquitto is not installed (apt-get install mosquitto)"
    proc = subprocess.Popen([SITEWATCH, "demo", "--duration", "15", "--mqtt", "--no-influx", "--no-hj212"],
                            cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"demo-test-{os.getpid()}")
    topics: queue.Queue[str] = queue.Queue()
    try:
        deadline = time.monotonic() + 90
        found = None
        while found is None:
            found = MQTT_LINE.match(_readline(proc, deadline).rstrip("\n"))
        port, pid = int(found.group(1)), int(found.group(2))
        subscribed = threading.Event()
        client.on_message = lambda _c, _u, message: topics.put(message.topic)
        client.on_connect = lambda c, *_args: c.subscribe("sitewatch/#", 1)
        client.on_subscribe = lambda *_args: subscribed.set()
        client.connect("127.0.0.1", port, keepalive=30)
        client.loop_start()
        assert subscribed.wait(30), "no SUBACK from the demo's mosquitto"
        topic = topics.get(timeout=60)  # a reading (or status) published by the demo gateway
        assert topic.startswith("sitewatch/"), topic
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        client.loop_stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert f"stopped mosquitto (pid {pid})" in stdout and re.search(r"\| mqtt \d+ delivered, 0 waiting", stdout)
    assert _gone(pid), f"mosquitto {pid} still runs after the demo"
