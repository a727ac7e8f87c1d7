"""A private influxd (InfluxDB 1.x) on free loopback ports, with its data in one folder.

Used by ``sitewatch demo`` (when influxd is installed) and by the tests'
fixtures (tests/support/influx.py): one config template, one way to start
and stop it (gateway/ops/local_server.py).
"""

from __future__ import annotations

import json
import shlex
import urllib.parse
from pathlib import Path
from typing import Any

from gateway.ops.local_server import LocalServer, LocalServerError, free_port, http

INFLUXD_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
  flux-enabled = false

[logging]
  level = "warn"

[subscriber]
  enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false

[continuous_queries]
  enabled = false
"""


class LocalInflux(LocalServer):
    """influxd with its own config, folders and ports under `root`; `start()`, `query()`, `stop()`."""

    name = "influxd"

    def __init__(self, root: Path, binary: str) -> None:
        super().__init__(root, binary)
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
        return [self.binary, "run", "-config", str(self.config)]

    def ready(self) -> bool:
        return http("GET", self.url + "/ping", timeout=2.0)[0] == 204

    def query(self, q: str, database: str = "") -> list[dict[str, Any]]:
        """InfluxQL through /query: the series of the first statement's result; LocalServerError on an error."""
        params = {"q": q, "epoch": "ns"}
        if database:
            params["db"] = database
        status, body = http("POST", self.url + "/query", urllib.parse.urlencode(params).encode())
        try:
            result = json.loads(body)
            failed = status != 200 or "error" in result or "error" in result["results"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            failed = True
        if failed:
            raise LocalServerError(f"query {q!r}: {status} {body!r}")
        return list(result["results"][0].get("series", []))

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')


def query_command(url: str, database: str, query: str) -> str:
    """A curl command a user can paste to run an InfluxQL query."""
    return (f"curl -sG {url}/query --data-urlencode db={shlex.quote(database)} --data-urlencode epoch=s "
            f"--data-urlencode {shlex.quote('q=' + query)}")
