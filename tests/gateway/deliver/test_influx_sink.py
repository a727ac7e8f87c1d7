"""The InfluxDB sink against real servers: influxd 1.6.7 (v1 /write) and VictoriaMetrics (v2 API).

Only the faults no real server here produces on demand (429 with Retry-After, a
v2 401) come from a small local HTTP server in the test.
"""

from __future__ import annotations

import base64
import gzip
import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.deliver.dispatch import Delivery
from gateway.deliver.influx import InfluxSink
from gateway.deliver.queue import Batch, DurableQueue, Queued
from gateway.deliver.records import Actuation, Outage, Record, kind_of
from gateway.deliver.sinks import SINKS, SinkConfigError, SinkError, SinkFatalError, load_builtin_sinks
from gateway.model import Gap, Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.process.spray import SprayCommand, SprayMode
from tests.support.influx import InfluxServer, VictoriaServer

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
NS = 1_000_000_000

RECORDS: list[Record] = [
    Reading("dust-1", "dust", "pm10", 41.5, "ug/m3", Quality.NORMAL, T0, 7),
    Reading("dust-1", "dust", "pm25", None, "ug/m3", Quality.COMMUNICATION_FAILURE, T0 + 1, 8),
    Aggregate("dust-1", "dust", "pm10_1h_mean", "pm10", "mean", "1h", T0, T0 + 3600, 40.25, "ug/m3", 2000, 3600,
              False, Quality.COMMUNICATION_FAILURE),
    AlarmEvent("crane_wind", "wind-1", "gust_3s", Severity.ALARM, EventState.RAISED, 9.4, 9.0, T0 + 2,
               'gust 9.4 m/s >= 9.0 m/s, "GB 55034-2022 3.4.7"'),
    Actuation("dust-1", "spray_relay", True, T0 + 3, SprayMode.AUTO, "PM10 high", 160.0, 150.0, "ok", 1, T0 + 3.5),
    Outage("noise-1", "noise", T0, T0 + 30, "B: no reply", 30),
    Gap("dust-1", "dust", T0, T0 + 900, 100, 130, "overwritten"),
    SprayCommand("dust-1", "spray_relay", True, T0 + 3, SprayMode.AUTO, "PM10 high", 160.0, 150.0),
]


@dataclass(frozen=True, slots=True)
class RevisedAggregate(Aggregate):
    """Aggregate with the `revision` another branch adds (the sink reads it with getattr)."""

    revision: int = 0


def batch(records: list[Record], start: int = 1) -> Batch:
    kinds = [("aggregate" if isinstance(r, Aggregate) else kind_of(r)) for r in records]
    return Batch("q1", tuple(Queued(start + i, kind, r) for i, (kind, r) in enumerate(zip(kinds, records,
                                                                                           strict=True))))


def v1_sink(server: InfluxServer, database: str, **params: Any) -> InfluxSink:
    return InfluxSink("influx", server.url, "zs site", "gw-1", api="v1", database=database, **params)


async def test_every_kind_of_record_reads_back_from_influxdb_1_6_exactly(influxd: InfluxServer) -> None:
    db = influxd.database()
    sink = v1_sink(influxd, db)
    assert await sink.send(batch(RECORDS)) == len(RECORDS)
    assert (sink.stats.points, sink.stats.skipped) == (7, 1)  # the spray command: the actuation is written
    sink.close()
    readings = influxd.rows("SELECT * FROM reading GROUP BY * ORDER BY time", db)
    assert readings == [
        {"time": 1_700_000_000 * NS, "quality": "N", "quality_code": 0, "seq": 7, "value": 41.5, "channel": "pm10",
         "gateway": "gw-1", "kind": "dust", "node": "dust-1", "site": "zs site", "unit": "ug/m3"},
        {"time": 1_700_000_001 * NS, "quality": "B", "quality_code": 7, "seq": 8, "value": None, "channel": "pm25",
         "gateway": "gw-1", "kind": "dust", "node": "dust-1", "site": "zs site", "unit": "ug/m3"},
    ]
    [aggregate] = influxd.rows("SELECT * FROM aggregate GROUP BY *", db)
    assert aggregate == {
        "time": 1_700_000_000 * NS, "count": 2000, "end_s": T0 + 3600, "expected": 3600, "quality": "B",
        "quality_code": 7, "revision": 0, "valid": False, "value": 40.25, "channel": "pm10_1h_mean",
        "gateway": "gw-1", "kind": "dust", "node": "dust-1", "site": "zs site", "source": "pm10",
        "statistic": "mean", "unit": "ug/m3", "window": "1h",
    }
    [alarm] = influxd.rows("SELECT * FROM alarm GROUP BY *", db)
    assert (alarm["reason"], alarm["value"], alarm["limit"], alarm["state"], alarm["severity"], alarm["alarm"]) == (
        'gust 9.4 m/s >= 9.0 m/s, "GB 55034-2022 3.4.7"', 9.4, 9.0, "raised", "alarm", "crane_wind")
    [actuation] = influxd.rows("SELECT * FROM actuation GROUP BY *", db)
    assert (actuation["time"], actuation["on"], actuation["ok"], actuation["attempt"]) == (
        1_700_000_003_500_000_000, True, True, 1)
    [outage] = influxd.rows("SELECT * FROM outage GROUP BY *", db)
    assert (outage["node"], outage["duration_s"], outage["missed"], outage["closed"]) == ("noise-1", 30.0, 30, True)
    [gap] = influxd.rows("SELECT * FROM gap GROUP BY *", db)
    assert (gap["first_sequence"], gap["last_sequence"], gap["missing"]) == (100, 130, 31)


async def test_the_same_batch_twice_is_one_point_each(influxd: InfluxServer) -> None:
    db = influxd.database()
    sink = v1_sink(influxd, db, precision="ms", batch_size=3)
    assert await sink.send(batch(RECORDS)) == len(RECORDS)
    assert await sink.send(batch(RECORDS, start=100)) == len(RECORDS)  # redelivered after a crash
    sink.close()
    counts = {m: influxd.rows(f'SELECT COUNT("quality_code") FROM {m}', db)
              for m in ("reading", "aggregate")}
    assert counts["reading"][0]["count"] == 2 and counts["aggregate"][0]["count"] == 1
    for measurement, field in (("alarm", "limit"), ("actuation", "attempt"), ("outage", "missed"), ("gap", "end_s")):
        assert influxd.rows(f'SELECT COUNT("{field}") FROM {measurement}', db)[0]["count"] == 1, measurement


async def test_a_revised_aggregate_overwrites_the_point_of_its_window(influxd: InfluxServer) -> None:
    db = influxd.database()
    first = RECORDS[2]
    assert isinstance(first, Aggregate)
    # Late samples came in: more of them, a new mean, now valid.
    revised = RevisedAggregate(*astuple(first)[:8], 42.0, "ug/m3", 2900, 3600, True, Quality.NORMAL, revision=1)
    sink = v1_sink(influxd, db)
    assert await sink.send(batch([first])) == 1
    assert await sink.send(batch([revised], start=2)) == 1
    sink.close()
    rows = influxd.rows("SELECT * FROM aggregate", db)
    assert len(rows) == 1
    assert (rows[0]["revision"], rows[0]["value"], rows[0]["count"], rows[0]["valid"], rows[0]["quality"]) == (
        1, 42.0, 2900, True, "N")


async def test_v2_api_to_victoria_metrics_reads_back_through_export(victoria: VictoriaServer) -> None:
    site = f"site-{time.monotonic_ns()}"
    sink = InfluxSink("influx", victoria.url, site, "gw-1", api="v2", org="sitewatch", bucket="site")
    assert await sink.send(batch(RECORDS)) == len(RECORDS)
    assert await sink.send(batch(RECORDS, start=100)) == len(RECORDS)  # twice: still one sample per series
    sink.close()
    series = {(s["metric"]["__name__"], s["metric"].get("channel", "")): s
              for s in victoria.export(f'{{site="{site}"}}')}
    value = series[("reading_value", "pm10")]
    assert value["values"] == [41.5] and value["timestamps"] == [1_700_000_000_000]
    assert value["metric"] == {"__name__": "reading_value", "site": site, "gateway": "gw-1", "node": "dust-1",
                               "kind": "dust", "channel": "pm10", "unit": "ug/m3"}
    # The unread PM2.5: no value series, but its quality code (B = 7) is there.
    assert ("reading_value", "pm25") not in series
    assert series[("reading_quality_code", "pm25")]["values"] == [7]
    assert series[("aggregate_value", "pm10_1h_mean")]["values"] == [40.25]
    assert series[("aggregate_revision", "pm10_1h_mean")]["values"] == [0]
    assert series[("alarm_value", "gust_3s")]["values"] == [9.4]
    assert all(len(s["values"]) == 1 for s in series.values())


class FaultServer:
    """A local HTTP server answering writes as scripted: (status, headers, body) per request, then 204."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, headers, reply = outer.script.pop(0) if outer.script else (204, {}, b"")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def lines(self, index: int) -> list[str]:
        _, headers, body = self.requests[index]
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return body.decode().splitlines()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fault() -> Iterator[type[FaultServer]]:
    made: list[FaultServer] = []

    def make(script: list[tuple[int, dict[str, str], bytes]]) -> FaultServer:
        server = FaultServer(script)
        made.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in made:
        server.close()


def fault_sink(server: FaultServer, api: str, tmp_path: Path, **params: Any) -> InfluxSink:
    credentials = tmp_path / "credentials"
    credentials.write_text("writer:s3cret\n" if api == "v1" else "tok-123\n")
    where = {"database": "site"} if api == "v1" else {"org": "o", "bucket": "site"}
    return InfluxSink("influx", server.url, "s", "gw", api=api, credentials_file=str(credentials), **where, **params)


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_a_429_with_retry_after_makes_the_dispatcher_wait_that_long(
    api: str, fault: Any, tmp_path: Path
) -> None:
    body = b'{"code":"too many requests","message":"slow down"}'
    server = fault([(429, {"Retry-After": "7", "Content-Type": "application/json"}, body)])
    queue = DurableQueue(tmp_path / "q.sqlite3", ["influx"])
    queue.append(RECORDS[:2])
    asked: list[float] = []

    async def pause(stop: Any, seconds: float) -> None:
        asked.append(seconds)

    sink = fault_sink(server, api, tmp_path)
    delivery = Delivery(queue, sink, min_backoff=1.0, max_backoff=2.0, pause=pause)
    assert await delivery.pump() is False
    assert "429: slow down" in delivery.stats.last_error and "retry after 7 s" in delivery.stats.last_error
    assert delivery.backoff == 7.0  # the server's word, beyond max_backoff
    assert await delivery.pump() is True and queue.pending("influx") == 0
    sink.close()
    queue.close()
    # Both requests carried the batch, gzip-compressed, with the credentials from the file.
    assert len(server.requests) == 2 and server.lines(0) == server.lines(1) and len(server.lines(1)) == 2
    path, headers, _ = server.requests[1]
    assert headers["content-encoding"] == "gzip"
    if api == "v1":
        assert path.startswith("/write?db=site&precision=n")
        assert headers["authorization"] == "Basic " + base64.b64encode(b"writer:s3cret").decode()
    else:
        assert path.startswith("/api/v2/write?") and "bucket=site" in path and "org=o" in path
        assert headers["authorization"] == "Token tok-123"


async def test_a_503_with_an_http_date_retry_after_is_honoured(fault: Any, tmp_path: Path) -> None:
    server = fault([(503, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, b"maintenance")])
    sink = fault_sink(server, "v1", tmp_path)
    sink.clock = lambda: 1792567380.0  # 2026-10-21 07:23:00 UTC: five minutes before
    with pytest.raises(SinkError) as raised:
        await sink.send(batch(RECORDS[:1]))
    assert raised.value.retry_after == 300.0
    sink.close()


async def test_a_failure_after_some_requests_confirms_the_records_already_written(fault: Any, tmp_path: Path) -> None:
    server = fault([(204, {}, b""), (500, {}, b'{"error":"timeout"}'), (500, {}, b'{"error":"timeout"}')])
    sink = fault_sink(server, "v1", tmp_path, batch_size=3, gzip=False)
    assert await sink.send(batch(RECORDS[:7])) == 3  # the first request's three; the rest are retried
    with pytest.raises(SinkError, match="500: timeout"):  # nothing went through: nothing to confirm
        await sink.send(batch(RECORDS[3:7]))
    assert await sink.send(batch(RECORDS[3:7])) == 4  # the server is back
    assert [len(server.lines(i)) for i in range(len(server.requests))] == [3, 3, 3, 3, 1]
    assert "content-encoding" not in server.requests[0][1]
    sink.close()


async def test_v2_401_bad_token_is_fatal_with_the_servers_message(fault: Any, tmp_path: Path) -> None:
    server = fault([(401, {"Content-Type": "application/json"}, b'{"code":"unauthorized","message":"unauthorized '
                                                                  b'access"}')])
    sink = fault_sink(server, "v2", tmp_path)
    with pytest.raises(SinkFatalError, match=r"sink influx: .*401: unauthorized access \(check the credentials"):
        await sink.send(batch(RECORDS[:1]))
    sink.close()


async def test_a_missing_database_or_bucket_is_fatal(influxd: InfluxServer) -> None:
    sink = v1_sink(influxd, "no_such_db")
    with pytest.raises(SinkFatalError, match=r"404: database not found: \"no_such_db\" \(check that the database"):
        await sink.send(batch(RECORDS[:1]))
    sink.close()
    # influxd 1.6.7 has no v2 API at all: the same 404, fatal (the docs say to use api = "v1").
    sink = InfluxSink("influx", influxd.url, "s", "gw", api="v2", org="o", bucket="b")
    with pytest.raises(SinkFatalError, match="404"):
        await sink.send(batch(RECORDS[:1]))
    sink.close()


async def test_records_wait_in_the_queue_while_influxd_is_down(own_influxd: InfluxServer, tmp_path: Path) -> None:
    db = own_influxd.database()
    queue = DurableQueue(tmp_path / "q.sqlite3", ["influx"])
    sink = v1_sink(own_influxd, db, timeout_s=5.0)
    delivery = Delivery(queue, sink, batch=100)
    queue.append(RECORDS[:2])
    assert await delivery.pump() is True
    own_influxd.stop()
    queue.append([Reading("dust-1", "dust", "pm10", float(i), "ug/m3", Quality.NORMAL, T0 + 10 + i, 10 + i)
                  for i in range(50)])
    assert await delivery.pump() is False
    assert "cannot" in delivery.stats.last_error.lower() or "refused" in delivery.stats.last_error.lower()
    assert queue.pending("influx") == 50
    own_influxd.start()
    assert await delivery.pump() is True and queue.pending("influx") == 0
    sink.close()
    queue.close()
    assert own_influxd.rows("SELECT COUNT(value) FROM reading", db)[0]["count"] == 51


def test_the_sink_is_configured_by_name_and_checks_its_keys(tmp_path: Path) -> None:
    load_builtin_sinks()
    assert "influxdb" in SINKS.names()
    with pytest.raises(SinkConfigError, match="api 'v3' is not one of v1, v2"):
        SINKS.create("influxdb", "influx", {"url": "http://x", "site": "s", "gateway": "g", "api": "v3"})
    with pytest.raises(SinkConfigError, match="api v1 needs a database"):
        SINKS.create("influxdb", "influx", {"url": "http://x", "site": "s", "gateway": "g", "api": "v1"})
    with pytest.raises(SinkConfigError, match="needs a bucket"):
        SINKS.create("influxdb", "influx", {"url": "http://x", "site": "s", "gateway": "g"})
    missing = tmp_path / "nope"
    with pytest.raises(SinkConfigError, match=f"credentials_file '{missing}': No such file"):
        SINKS.create("influxdb", "influx", {"url": "http://x", "site": "s", "gateway": "g", "bucket": "b",
                                            "credentials_file": str(missing)})
    secret = tmp_path / "secret"
    secret.write_text("justapassword")
    with pytest.raises(SinkConfigError, match="username:password") as raised:
        SINKS.create("influxdb", "influx", {"url": "http://x", "site": "s", "gateway": "g", "api": "v1",
                                            "database": "d", "credentials_file": str(secret)})
    assert "justapassword" not in str(raised.value)


async def test_data_the_server_will_never_take_stops_the_sink(influxd: InfluxServer) -> None:
    db = influxd.database()
    # Someone wrote `seq` as a float into this database before (in the same shard): every reading now conflicts.
    influxd.write(db, "reading,node=x seq=1.5 1699999900000000000")
    sink = v1_sink(influxd, db)
    with pytest.raises(SinkFatalError, match=r"400: partial write: field type conflict.*\"seq\""):
        await sink.send(batch(RECORDS[:1]))
    sink.close()


async def test_points_older_than_the_retention_policy_are_counted_not_retried(influxd: InfluxServer) -> None:
    db = influxd.database()
    influxd.query(f'CREATE RETENTION POLICY "hour" ON "{db}" DURATION 1h REPLICATION 1 DEFAULT')
    now = time.time()
    fresh = Reading("dust-1", "dust", "pm10", 12.0, "ug/m3", Quality.NORMAL, now, 99)
    sink = v1_sink(influxd, db)
    assert await sink.send(batch([*RECORDS[:2], fresh])) == 3  # the 2023 readings can never be stored
    assert (sink.stats.beyond_retention, sink.stats.points) == (2, 1)
    sink.close()
    assert influxd.rows("SELECT value FROM reading", db) == [{"time": round(now * 1e6) * 1000, "value": 12.0}]


def test_a_configuration_with_an_influxdb_sink_parses(tmp_path: Path) -> None:
    import tomllib

    from gateway.ops.config import parse_config

    text = f"""
[[sink]]
type = "influxdb"
name = "bureau"
url = "http://127.0.0.1:8086"
api = "v1"
database = "sitewatch"
site = "zs-site-1"
gateway = "gw-1"
credentials_file = "{tmp_path / 'influx.credentials'}"
batch_size = 2000
timeout_s = 5

[[bus]]
port = "/dev/ttyUSB0"
[[bus.node]]
kind = "dust"
unit_id = 1
"""
    config = parse_config(tomllib.loads(text), "site.toml")
    [spec] = [s for s in config.sinks if s.type == "influxdb"]
    assert spec.name == "bureau" and spec.params["database"] == "sitewatch" and spec.params["batch_size"] == 2000
