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
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

# One influxd config, one way to start, wait for and stop a server: the demo's (gateway/ops/).
from gateway.ops.local_influx import LocalInflux
from gateway.ops.local_server import READY_TIMEOUT_S, LocalServer, LocalServerError, find_binary, free_port, http


def _binary(name: str) -> str:
    path = find_binary(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install {'influxdb' if name == 'influxd' else name})")
    return path


class _FailsTheTest(LocalServer):
    """A server for a test: one that exits or stays silent fails the test (never a skip)."""

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        try:
            super().start(timeout)
        except LocalServerError as error:
            pytest.fail(str(error))


class InfluxServer(_FailsTheTest, LocalInflux):
    """influxd 1.6.7 with its own config, dirs and ports under `root`, plus what tests ask of it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, _binary("influxd"))

    def query(self, q: str, database: str = "") -> list[dict[str, Any]]:
        """InfluxQL through /query: the series of the first statement's result (AssertionError on an error)."""
        try:
            return super().query(q, database)
        except LocalServerError as error:
            raise AssertionError(str(error)) from None

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
        self.create_database(name)
        return name


class VictoriaServer(_FailsTheTest):
    name = "victoria-metrics"

    def __init__(self, root: Path) -> None:
        super().__init__(root, _binary("victoria-metrics"))
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            self.binary, f"-httpListenAddr=127.0.0.1:{self.port}",
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


Server = TypeVar("Server", bound=LocalServer)


def _serving(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    yield from _serving(InfluxServer(tmp_path_factory.mktemp("influxd")))


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[InfluxServer]:
    yield from _serving(InfluxServer(tmp_path / "influxd"))


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaServer]:
    yield from _serving(VictoriaServer(tmp_path_factory.mktemp("victoria")))
