"""Real InfluxDB 1.6.7 (Debian's influxd) and VictoriaMetrics for tests: started on free loopback ports.

Fixtures (registered in tests/conftest.py through ``pytest_plugins``):

* ``influxd``: one influxd for the session (``InfluxServer``); each test takes its own
  database with ``influxd.database()``.
* ``own_influxd``: an influxd for one test alone, which it may stop and start again
  (same port, same data).
* ``victoria``: one victoria-metrics for the session; each test tags its points with its
  own ``site`` and reads back by it.

A binary that is missing, or a server that does not come up, fails the test (never a skip).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# One influxd config and port picker for the tests and the demo (gateway/ops/local_influx.py).
from gateway.ops.local_influx import INFLUXD_CONFIG
from gateway.ops.local_server import free_port, http

READY_TIMEOUT = 60.0  # s: generous, two cores shared with stress
STOP_TIMEOUT = 20.0


def _binary(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.path.exists(p)), None)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install {'influxdb' if name == 'influxd' else name})")
    return path


class _Process:
    name = "server"

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}: {self._tail()}")
            try:
                if self.ready():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"{self.name} was not ready within {READY_TIMEOUT} s: {self._tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)

    def _tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]




class InfluxServer(_Process):
    """influxd 1.6.7 with its own config, dirs and ports under `root`."""

    name = "influxd"

    def __init__(self, root: Path) -> None:
        super().__init__(root / "influxd.log")
        self.root = root
        self.http_port = free_port()
        self.rpc_port = free_port()
        while self.rpc_port == self.http_port:  # the kernel may hand out a just-closed port again
            self.rpc_port = free_port()
        self.config = root / "influxdb.conf"
        self.config.write_text(INFLUXD_CONFIG.format(root=root, rpc_port=self.rpc_port, http_port=self.http_port))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        return [_binary("influxd"), "run", "-config", str(self.config)]

    def ready(self) -> bool:
        return http("GET", self.url + "/ping", timeout=2.0)[0] == 204

    def query(self, q: str, database: str = "") -> list[dict[str, Any]]:
        """InfluxQL through /query: the series of the first statement's result."""
        params = {"q": q, "epoch": "ns"}
        if database:
            params["db"] = database
        status, body = http("POST", self.url + "/query", urllib.parse.urlencode(params).encode())
        result = json.loads(body)
        if status != 200 or "error" in result or "error" in result["results"][0]:
            raise AssertionError(f"query {q!r}: {status} {body!r}")
        return list(result["results"][0].get("series", []))

    def rows(self, q: str, database: str) -> list[dict[str, Any]]:
        """The rows of an InfluxQL query as dicts (tags of GROUP BY * included), in the server's order."""
        rows = []
        for series in self.query(q, database):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags") or {})
                rows.append(row)
        return rows

    def write(self, database: str, lines: str) -> None:
        status, body = http("POST", f"{self.url}/write?db={database}", lines.encode())
        assert status == 204, body

    def database(self) -> str:
        """A new database, for one test alone."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.query(f'CREATE DATABASE "{name}"')
        return name


class VictoriaServer(_Process):
    name = "victoria-metrics"

    def __init__(self, root: Path) -> None:
        super().__init__(root / "victoria-metrics.log")
        self.root = root
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            _binary("victoria-metrics"), f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.root / 'data'}", "-search.latencyOffset=0s", "-loggerLevel=ERROR",
            "-retentionPeriod=100y",  # tests write fixed timestamps from years ago: keep them
            "-dedup.minScrapeInterval=1ms",  # a point written twice is one sample (docs/influxdb-schema.md)
        ]

    def ready(self) -> bool:
        return http("GET", self.url + "/health", timeout=2.0)[0] == 200

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every series matching the selector, as /api/v1/export gives them (after a flush)."""
        status, body = http("GET", self.url + "/internal/force_flush")
        assert status == 200, body
        query = urllib.parse.urlencode({"match[]": match})
        status, body = http("GET", f"{self.url}/api/v1/export?{query}")
        assert status == 200, body
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path_factory.mktemp("influxd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[InfluxServer]:
    root = tmp_path / "influxd"
    root.mkdir()
    server = InfluxServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaServer]:
    server = VictoriaServer(tmp_path_factory.mktemp("victoria"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
