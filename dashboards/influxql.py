"""InfluxQL targets for Grafana panels and alert rules, and the filters every query of the dashboards shares.

grafana-foundation-sdk has no InfluxDB query type, so this is one: a ``Dataquery`` whose JSON is the
InfluxDB data source's raw-query model (``rawQuery``, ``query``, ``resultFormat``). InfluxQL rather
than Flux: it runs on InfluxDB 1.x, on 2.x through a DBRP mapping and on 3.x (docs/influxdb-schema.md).

The queries use Grafana's macros: ``$timeFilter`` (the dashboard's time range), ``$__interval``, and
the template variables ``$district``, ``$site`` and ``$node``, always inside ``=~ /^...$/`` so that
a multi-value or "All" selection (Grafana writes ``(a|b)``, and ``.*`` for All) matches as a regex.
"""

from __future__ import annotations

import typing

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

DATASOURCE_UID = "sitewatch-influxdb"
DATASOURCE = dashboard.DataSourceRef(type_val="influxdb", uid=DATASOURCE_UID)

# Every query is limited to the selected districts and sites; node dashboards to the selected nodes too.
SITE_FILTER = '"district" =~ /^$district$/ AND "site" =~ /^$site$/'
NODE_FILTER = SITE_FILTER + ' AND "node" =~ /^$node$/'
VALID = "\"valid\" = true"  # aggregates with at least 75 % of their expected samples

ResultFormat = typing.Literal["time_series", "table"]


class InfluxQuery(cogvariants.Dataquery):
    """The InfluxDB data source's query model, raw InfluxQL mode."""

    def __init__(self, ref_id: str, query: str, result_format: ResultFormat, alias: str = "") -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": DATASOURCE.to_json(),
            "rawQuery": True,
            "query": self.query,
            "resultFormat": self.result_format,
        }
        if self.alias:
            payload["alias"] = self.alias
        return payload


class Influx(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of an InfluxQL target, as the SDK's builders of other data sources' queries."""

    def __init__(self, ref_id: str, query: str, result_format: ResultFormat = "time_series", alias: str = "") -> None:
        self._internal = InfluxQuery(ref_id, query, result_format, alias)

    def build(self) -> InfluxQuery:
        return self._internal


def where(*conditions: str) -> str:
    """`conditions` joined with AND, after the time range (Grafana's $timeFilter)."""
    return " AND ".join(("$timeFilter", *conditions))


def eq(key: str, value: str) -> str:
    """`"key" = 'value'`: a tag or string field equal to a literal (the literal has no quote to escape)."""
    assert "'" not in value and "\\" not in value, value
    return f"\"{key}\" = '{value}'"
