"""One session-scoped InfluxDB 1.6.7 database filled by simulated sites through the gateway's own sink.

Every query test of the dashboards reads the same fill (tests/dashboards/fill.py), so the suite pays
for the simulated runs once. The gateway health measurements (gateway_health, node_health) are not
written by this branch's gateway yet: they are written here, as line protocol in the agreed schema
(docs/influxdb-schema.md, "gateway health"), with known values, before the gateway panels are run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.dashboards.fill import FilledSite, fill
from tests.dashboards.health import HealthPoint, NodeHealthPoint, health_lines, health_points
from tests.support.influx import InfluxServer


@dataclass
class Filled:
    influx: InfluxServer
    database: str
    sites: list[FilledSite]
    gateway_health: list[HealthPoint]
    node_health: list[NodeHealthPoint]

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
    gateway_health, node_health = health_points(sites)
    influxd.write(database, health_lines(gateway_health, node_health))
    yield Filled(influxd, database, sites, gateway_health, node_health)
