"""The InfluxDB sink: records from the queue as line protocol to InfluxDB 1.x (/write) or the v2 API.

``api = "v2"`` (InfluxDB 2.x / 3.x, VictoriaMetrics, InfluxDB >= 1.8) writes
through influxdb-client's v2 write service, in a worker thread so the
event loop never waits on the network. Its own retries are off (the
client's default): the dispatcher owns retrying, so one policy (backoff,
Retry-After, fatal stop) holds for every sink.

``api = "v1"`` posts to ``/write`` with urllib3 (already installed with
influxdb-client: a pooled keep-alive connection, no further dependency).
influxdb-client cannot talk to InfluxDB 1.6/1.7: its v1 compatibility needs
the ``/api/v2/write`` endpoint that came with 1.8, and Debian and Raspberry
Pi OS ship 1.6.7 (docs/influxdb-schema.md).

A batch from the queue is encoded (line_protocol.py) and sent in requests of
at most ``batch_size`` lines, gzip-compressed when ``gzip`` is on. ``send``
returns how many records, from the front, the server took: a request that
fails after earlier ones succeeded confirms those, and the rest are retried.
The server's answer decides (http_status.py): 429/503 retry after the
server's Retry-After, other 5xx and network errors retry with the
dispatcher's backoff, any other 4xx stops the sink with the server's message.

Credentials never sit in the configuration: ``credentials_file`` names a
file holding the v2 token, or ``username:password`` for v1, and neither is
ever logged.
"""

from __future__ import annotations

import asyncio
import gzip as gzip_module
import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import urllib3
from influxdb_client import InfluxDBClient  # type: ignore[attr-defined]
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.service.write_service import WriteService

from gateway.deliver.credentials import CredentialError, credential_path
from gateway.deliver.http_status import dropped_beyond_retention, refusal
from gateway.deliver.line_protocol import V1_PRECISION, Encoded, LineProtocolError, RecordEncoder
from gateway.deliver.queue import Batch
from gateway.deliver.sinks import SINKS, SinkConfigError, SinkError

log = logging.getLogger(__name__)

APIS = ("v1", "v2")
GZIP_LEVEL = 6  # zlib's default: ~4x smaller line protocol at a fraction of level 9's CPU time


class Refused(Exception):
    """A non-2xx answer: status, the server's message, and its Retry-After header if any."""

    def __init__(self, status: int, message: str, retry_after: str | None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after


class Writer(Protocol):
    """Posts one body of line protocol; raises Refused for a non-2xx answer, anything else for a network error."""

    def write(self, body: bytes) -> None: ...

    def close(self) -> None: ...


class V1Writer:
    def __init__(self, url: str, database: str, precision: str, gzip: bool, timeout_s: float,
                 credentials: str | None) -> None:
        query = urllib.parse.urlencode({"db": database, "precision": V1_PRECISION[precision]})
        self.url = url.rstrip("/") + "/write?" + query
        self.gzip = gzip
        self.headers = {"Content-Type": "text/plain; charset=utf-8"}
        if gzip:
            self.headers["Content-Encoding"] = "gzip"
        if credentials is not None:
            self.headers.update(urllib3.util.make_headers(basic_auth=credentials))
        self.pool = urllib3.PoolManager(num_pools=1, maxsize=1, retries=False,
                                        timeout=urllib3.Timeout(total=timeout_s))

    def write(self, body: bytes) -> None:
        data = gzip_module.compress(body, GZIP_LEVEL) if self.gzip else body
        response = self.pool.request("POST", self.url, body=data, headers=self.headers)
        if response.status // 100 != 2:
            raise Refused(response.status, _v1_message(response.data), response.headers.get("Retry-After"))

    def close(self) -> None:
        self.pool.clear()


def _v1_message(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    try:
        answer = json.loads(text)
        return str(answer.get("error") or answer["message"])  # 1.x says "error"; 1.8+ and proxies "message"
    except (ValueError, KeyError, TypeError, AttributeError):
        return text


class V2Writer:
    """influxdb-client's v2 write service (POST /api/v2/write), with a body compressed here.

    The client's own gzip (``enable_gzip``) compresses at level 9, several
    times the CPU of level 6 for a few percent of size: a backlog drain on a
    Pi is CPU-bound, so the body is compressed here and sent with
    ``Content-Encoding: gzip`` through the same generated write service that
    ``WriteApi`` uses.
    """

    def __init__(self, url: str, org: str, bucket: str, precision: str, gzip: bool, timeout_s: float,
                 token: str | None) -> None:
        self.org = org
        self.bucket = bucket
        self.precision = precision  # WritePrecision's constants are these very strings
        self.gzip = gzip
        self.client = InfluxDBClient(url=url, token=token or "", org=org, timeout=int(timeout_s * 1000),
                                     enable_gzip=False)
        self.service = WriteService(self.client.api_client)  # type: ignore[no-untyped-call]

    def write(self, body: bytes) -> None:
        data = gzip_module.compress(body, GZIP_LEVEL) if self.gzip else body
        try:
            self.service.post_write(  # type: ignore[no-untyped-call]
                org=self.org, bucket=self.bucket, body=data, precision=self.precision,
                content_encoding="gzip" if self.gzip else "identity", content_type="text/plain; charset=utf-8")
        except InfluxDBError as error:
            response = getattr(error, "response", None)
            if response is None:
                raise
            status = int(getattr(error, "status", None) or response.status)
            raise Refused(status, str(error.message), error.retry_after) from None

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]


@dataclass
class InfluxStats:
    points: int = 0  # lines the server took
    requests: int = 0  # successful write requests
    skipped: int = 0  # records of a kind that is not written (spray commands)
    unencodable: int = 0  # records line protocol cannot carry (logged with what is wrong)
    nonfinite: int = 0  # NaN / infinite values left out of their points
    beyond_retention: int = 0  # points the server dropped as older than its retention policy


def read_credentials(path: str, api: str) -> str | None:
    """The token (v2) or username:password (v1) from the file at `path` ("" for none)."""
    if not path:
        return None
    try:
        # As systemd's LoadCredential= hands it over ($CREDENTIALS_DIRECTORY/sitewatch_<name>): the service's
        # user cannot read /etc/sitewatch/credentials itself. Not found there: read as named, which says why not.
        location = credential_path(path, "credentials_file")
    except CredentialError:
        location = Path(path)
    try:
        text = location.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SinkConfigError(f"credentials_file {path!r}: {error.strerror or error}") from None
    if not text:
        raise SinkConfigError(f"credentials_file {path!r} is empty")
    if api == "v1" and ":" not in text.splitlines()[0]:
        raise SinkConfigError(f"credentials_file {path!r}: v1 expects 'username:password' on its first line")
    return text.splitlines()[0]


def make_writer(api: str, url: str, database: str, org: str, bucket: str, precision: str, gzip: bool,
                timeout_s: float, credentials: str | None) -> Writer:
    """The writer for `api` ("v1": /write into `database`; "v2": the v2 API into `org`/`bucket`).

    Shared by the sink and `sitewatch hj212 listen --influx-url` (gateway/deliver/hj212_influx.py).
    """
    if api == "v1":
        return V1Writer(url, database, precision, gzip, timeout_s, credentials)
    return V2Writer(url, org, bucket, precision, gzip, timeout_s, credentials)


def post_lines(writer: Writer, name: str, lines: list[str], now: float) -> int:
    """Post `lines` in one request; returns how many the server dropped as beyond its retention (it kept the rest).

    Raises SinkError (retry: network, 5xx, 429) or SinkFatalError (any other refusal), naming `name`.
    """
    body = ("\n".join(lines) + "\n").encode("utf-8")
    try:
        writer.write(body)
    except Refused as answer:
        dropped = dropped_beyond_retention(answer.status, answer.message)
        if dropped is None:  # the Refused stays the cause: its status, for callers that act on it
            raise refusal(name, answer.status, answer.message, answer.retry_after, now) from answer
        log.error("sink %s: the server dropped %d points older than its retention policy (it kept the"
                  " rest): %s", name, dropped, answer.message)
        return dropped
    except (urllib3.exceptions.HTTPError, InfluxDBError, OSError) as error:
        raise SinkError(f"sink {name}: {type(error).__name__}: {error}") from None
    return 0


@SINKS.register("influxdb")
class InfluxSink:
    def __init__(
        self,
        name: str,
        url: str,
        site: str,
        gateway: str,
        api: str = "v2",
        database: str = "",
        org: str = "",
        bucket: str = "",
        credentials_file: str = "",
        batch_size: int = 5000,
        gzip: bool = True,
        timeout_s: float = 10.0,
        precision: str = "ns",
        district: str = "",
    ) -> None:
        self.name = name
        where = f"sink {name!r} (influxdb)"
        if api not in APIS:
            raise SinkConfigError(f"{where}: api {api!r} is not one of {', '.join(APIS)}")
        if not url.startswith(("http://", "https://")):
            raise SinkConfigError(f"{where}: url {url!r} must start with http:// or https://")
        if api == "v1" and not database:
            raise SinkConfigError(f"{where}: api v1 needs a database")
        if api == "v2" and not bucket:
            raise SinkConfigError(f"{where}: api v2 needs a bucket (and, for InfluxDB 2.x, an org)")
        if batch_size < 1:
            raise SinkConfigError(f"{where}: batch_size must be at least 1")
        if timeout_s <= 0:
            raise SinkConfigError(f"{where}: timeout_s must be positive")
        try:
            self.encoder = RecordEncoder(site, gateway, precision, district)
        except LineProtocolError as error:
            raise SinkConfigError(f"{where}: {error}") from None
        try:
            credentials = read_credentials(credentials_file, api)
        except SinkConfigError as error:
            raise SinkConfigError(f"{where}: {error}") from None  # which uplink, when a site has several
        self.batch_size = batch_size
        self.clock: Callable[[], float] = time.time  # wall clock, for Retry-After dates (tests replace it)
        self.stats = InfluxStats()
        self.writer: Writer = make_writer(api, url, database, org, bucket, precision, gzip, timeout_s, credentials)

    async def send(self, batch: Batch) -> int:
        return await asyncio.to_thread(self._send, batch)

    def _send(self, batch: Batch) -> int:
        delivered = 0  # records, from the front, that the server took
        lines: list[str] = []
        counts = Encoded(lines)
        last = len(batch.items) - 1
        for index, item in enumerate(batch.items):
            try:
                text = self.encoder.line(item.record, counts)
            except LineProtocolError as error:
                self.stats.unencodable += 1
                log.error("sink %s: record %d (%s) cannot be written and is left out: %s",
                          self.name, item.id, item.kind, error)
                text = None
            else:
                if text is None:
                    self.stats.skipped += 1
            if text is not None:
                if item.kind == "health":  # several points in one record: count each
                    lines.extend(text.split("\n"))
                else:
                    lines.append(text)
            if len(lines) >= self.batch_size or index == last:
                if lines:
                    try:
                        self._post(lines)
                    except SinkError:
                        if delivered:
                            return delivered
                        raise
                self.stats.nonfinite += counts.nonfinite
                counts.nonfinite = 0
                delivered = index + 1
                lines.clear()
        return delivered

    def _post(self, lines: list[str]) -> None:
        dropped = post_lines(self.writer, self.name, lines, self.clock())
        self.stats.beyond_retention += dropped
        self.stats.points += len(lines) - dropped
        self.stats.requests += 1

    def close(self) -> None:
        self.writer.close()
