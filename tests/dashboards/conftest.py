"""One session-scoped InfluxDB 1.6.7 database filled by simulated sites through the gateway's own sink.

Every query test of the dashboards reads the same fill (tests/dashboards/fill.py), so the suite pays
for the simulated runs once, health reports included: the gateways' own health task writes
gateway_health, sink_health and node_health through the same sink (fill.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.dashboards.fill import FilledSite, fill
from tests.support.influx import InfluxServer


@dataclass
class Filled:
    influx: InfluxServer
    database: str
    sites: list[FilledSite]

    def site(self, name: str) -> FilledSite:
        return next(s for s in self.sites if s.spec.site == name)

    def rows(self, query: str) -> list[dict[str, Any]]:
        return self.influx.rows(query, self.database)

    def series(self, query: str) -> list[dict[str, Any]]:
        return self.influx.query(query, self.database)


@pytest.fixture(scope="session")
def filled(influxd: InfluxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    database = influxd.database()
    sites = fill(tmp_path_factory.mktemp("dashboards"), influxd.url, database)
    yield Filled(influxd, database, sites)
