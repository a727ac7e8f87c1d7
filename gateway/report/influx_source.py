"""A report's records from InfluxDB (a bureau's database that many gateways write to), over InfluxQL.

InfluxQL ``/query`` works on InfluxDB 1.x (Debian's 1.6.7), on 2.x through a DBRP mapping and on
3.x. The points are those the gateway's InfluxDB sink writes (docs/influxdb-schema.md):
measurements ``reading``, ``alarm``, ``outage``, ``gap`` with the tag ``site``; this reads them back
into the gateway's own record types, so the summary is the same whichever source it came from.
Queries ask for epoch nanoseconds (``epoch=ns``) and group by the tags that identify a series.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import urllib3

from gateway.deliver.influx import read_credentials
from gateway.deliver.records import Outage
from gateway.deliver.sinks import SinkConfigError
from gateway.model import Gap, Quality, Reading
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.report.sources import ALARM_LOOKBACK_S
from gateway.report.summary import LOOKBACK_S, DayRecords, ReportError, report_channels

TIMEOUT_S = 30.0
NS = 1_000_000_000


def quote(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ns(t: float) -> int:
    return round(t * NS)


Row = dict[str, Any]


class InfluxSource:
    def __init__(self, url: str, database: str, site: str, credentials_file: Path | None = None) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.site = site
        self.headers: dict[str, str] = {}
        if credentials_file is not None:
            try:
                credentials = read_credentials(str(credentials_file), "v1")
            except SinkConfigError as error:
                raise ReportError(str(error)) from error
            if credentials:
                self.headers.update(urllib3.util.make_headers(basic_auth=credentials))
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(total=TIMEOUT_S), retries=False)

    def query(self, text: str) -> Iterator[Row]:
        """Rows of one InfluxQL query: the series' tags merged with each row's columns (time in epoch ns)."""
        try:
            response = self._http.request(
                "POST", f"{self.url}/query", fields={"db": self.database, "q": text, "epoch": "ns"},
                headers=self.headers, encode_multipart=False,
            )
        except urllib3.exceptions.HTTPError as error:
            raise ReportError(f"InfluxDB {self.url}: {error}") from error
        try:
            body = json.loads(response.data)
        except ValueError:
            snippet = response.data[:200]
            raise ReportError(f"InfluxDB {self.url}: HTTP {response.status}, not JSON: {snippet!r}") from None
        if response.status != 200 or "error" in body:
            raise ReportError(f"InfluxDB {self.url}: HTTP {response.status}: {body.get('error', body)}")
        for result in body.get("results", []):
            if "error" in result:
                raise ReportError(f"InfluxDB {self.url} database {self.database}: {result['error']}")
            for series in result.get("series", []):
                tags = series.get("tags", {})
                columns = series["columns"]
                for values in series["values"]:
                    yield {**tags, **dict(zip(columns, values, strict=True))}

    def _where(self, start: float, end: float) -> str:
        return f"\"site\" = {quote(self.site)} AND time >= {ns(start)} AND time < {ns(end)}"

    def fetch(self, start: float, end: float, step: Callable[[str], None] = lambda what: None) -> DayRecords:
        readings = [
            Reading(r["node"], r["kind"], r["channel"], _number(r.get("value")), r.get("unit", ""),
                    Quality(r.get("quality") or "N"), r["time"] / NS, int(r.get("seq") or 0))
            for r in self.query(
                f'SELECT "value", "quality", "seq" FROM "reading" WHERE {self._where(start - LOOKBACK_S, end)}'
                f" AND {_channel_filter()}"
                ' GROUP BY "node", "kind", "channel", "unit"'
            )
        ]
        readings.sort(key=lambda r: r.timestamp)
        step(f"{len(readings)} readings")
        alarms = [
            AlarmEvent(r["alarm"], r["node"], r["channel"], Severity(r["severity"]), EventState(r["state"]),
                       _number(r.get("value")) or math.nan, _nan(r.get("limit")), r["time"] / NS,
                       r.get("reason") or "")
            for r in self.query(
                f'SELECT "value", "limit", "reason" FROM "alarm" WHERE {self._where(start - ALARM_LOOKBACK_S, end)}'
                ' GROUP BY "alarm", "node", "channel", "severity", "state"'
            )
        ]
        alarms.sort(key=lambda e: e.time)
        step(f"{len(alarms)} alarm events")
        outages = [
            Outage(r["node"], r.get("kind", ""), r["time"] / NS, float(r["end_s"]), r.get("reason") or "",
                   int(r.get("missed") or 0), bool(r.get("closed", True)))
            for r in self.query(
                f'SELECT "end_s", "missed", "closed", "reason" FROM "outage"'
                f" WHERE {self._where(start - ALARM_LOOKBACK_S, end)} AND \"end_s\" >= {start!r}"
                ' GROUP BY "node", "kind"'
            )
        ]
        gaps = [
            Gap(r["node"], r.get("kind", ""), r["time"] / NS, float(r["end_s"]), int(r.get("first_sequence") or 0),
                None if r.get("last_sequence") is None else int(r["last_sequence"]), r.get("reason") or "")
            for r in self.query(
                f'SELECT "end_s", "first_sequence", "last_sequence", "reason" FROM "gap"'
                f" WHERE {self._where(start - ALARM_LOOKBACK_S, end)} AND \"end_s\" >= {start!r}"
                ' GROUP BY "node", "kind"'
            )
        ]
        step(f"{len(outages)} outages, {len(gaps)} gaps")
        return DayRecords(readings, alarms, outages, gaps)


def _channel_filter() -> str:
    """Of the kinds the report knows, only the channels it reads (as the store source fetches them)."""
    read = report_channels()
    kinds = "|".join(sorted(read))
    channels = "|".join(sorted({c for cs in read.values() for c in cs}))
    return f'("kind" !~ /^({kinds})$/ OR "channel" =~ /^({channels})$/)'


def _number(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _nan(value: object) -> float:
    number = _number(value)
    return math.nan if number is None else number
