"""Issue 9 review (audit9): an InfluxDB uplink's credentials never reach a log line or an error, on any path.

The failures an operator sees in the log (a missing database, a server that is down, a bad token) are the
moments a careless message would carry the request: its URL, its headers. Logged at DEBUG, with the HTTP
libraries' own loggers too, against a real influxd 1.6.7 and a port nothing listens on.
"""

from __future__ import annotations

import base64
import logging
import socket
from pathlib import Path

import pytest

from gateway.deliver.dispatch import Delivery
from gateway.deliver.influx import InfluxSink
from gateway.deliver.queue import DurableQueue
from gateway.model import Quality, Reading
from tests.support.influx import InfluxServer

PASSWORD = "Sup3r-Secret-Pw"
TOKEN = "tok-Very-Secret-123"
T0 = 1_796_300_000.0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def secrets() -> list[str]:
    basic = base64.b64encode(f"writer:{PASSWORD}".encode()).decode()
    return [PASSWORD, TOKEN, basic]


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize("where", ["missing database", "server down"])
async def test_no_credential_in_any_log_line_or_error(
    api: str, where: str, influxd: InfluxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    credentials = tmp_path / "credentials"
    credentials.write_text(f"writer:{PASSWORD}\n" if api == "v1" else f"{TOKEN}\n")
    url = influxd.url if where == "missing database" else f"http://127.0.0.1:{closed_port()}"
    target = {"database": "no_such_db"} if api == "v1" else {"org": "o", "bucket": "no_such_bucket"}
    sink = InfluxSink("influx", url, "s", "gw", api=api, credentials_file=str(credentials), timeout_s=5.0, **target)
    queue = DurableQueue(tmp_path / "q.sqlite3", ["influx"])
    queue.append([Reading("dust-1", "dust", "pm10", 42.0, "ug/m3", Quality.NORMAL, T0, 1)])
    delivery = Delivery(queue, sink)
    try:
        assert await delivery.pump() is False
        assert delivery.stats.last_error  # it failed, and said so
        said = caplog.text + delivery.stats.last_error + delivery.stats.fatal
        for secret in secrets():
            assert secret not in said, f"{secret!r} in {said!r}"
    finally:
        sink.close()
        queue.close()
