"""A private influxd (InfluxDB 1.x) on free loopback ports, with its data in one folder.

Used by ``sitewatch demo`` (when influxd is installed) and by the tests'
fixtures (tests/support/influx.py): one config template, one way to start
and stop it.

The server runs in its own session, so a Ctrl-C in the demo's terminal
reaches the demo only: the demo flushes its gateway into influxd first and
then stops it. On Linux the child also gets SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``), so even a demo killed with SIGKILL leaves no influxd
behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 60.0  # generous: two cores shared with other work
STOP_TIMEOUT_S = 20.0
SEARCH_PATH = ("/usr/bin", "/usr/sbin")  # where Debian installs influxd, even when PATH does not list them

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


class LocalInfluxError(RuntimeError):
    """influxd exited or did not answer in time (the message carries its log's tail)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str, path: str | None = None) -> str | None:
    """`name` on `path` (default: $PATH), else in /usr/bin or /usr/sbin when `path` is None."""
    found = shutil.which(name, path=path)
    if found is not None or path is not None:
        return found
    return next((str(Path(d) / name) for d in SEARCH_PATH if os.access(Path(d) / name, os.X_OK)), None)


def http(method: str, url: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(libc_name, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class LocalInflux:
    """influxd with its own config, folders and ports under `root`; `start()`, `query()`, `stop()`."""

    name = "influxd"

    def __init__(self, root: Path, binary: str) -> None:
        self.root = root
        self.binary = binary
        root.mkdir(parents=True, exist_ok=True)
        self.log_path = root / "influxd.log"
        self.http_port = free_port()
        self.rpc_port = free_port()
        while self.rpc_port == self.http_port:  # the kernel may hand out a just-closed port again
            self.rpc_port = free_port()
        self.config = root / "influxdb.conf"
        self.config.write_text(INFLUXD_CONFIG.format(root=root, rpc_port=self.rpc_port, http_port=self.http_port))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise LocalInfluxError("influxd is not running")
        return self.process.pid

    def command(self) -> list[str]:
        return [self.binary, "run", "-config", str(self.config)]

    def ready(self) -> bool:
        try:
            return http("GET", self.url + "/ping", timeout=2.0)[0] == 204
        except OSError:
            return False

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start influxd and wait until it answers /ping; LocalInfluxError when it exits or stays silent."""
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process. Call it from the main thread: the death signal is tied to the thread that forks,
        so a worker thread that ends would take influxd with it."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until influxd answers /ping (it may run in a worker thread); stops it when it does not."""
        if self.process is None:
            raise LocalInfluxError("influxd was not launched")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalInfluxError(f"influxd exited with {self.process.returncode}: {self.tail()}")
            if self.ready():
                return
            time.sleep(0.05)
        self.stop()
        raise LocalInfluxError(f"influxd was not ready within {timeout:g} s: {self.tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def query(self, q: str, database: str = "") -> list[dict[str, Any]]:
        """InfluxQL through /query: the series of the first statement's result; LocalInfluxError on an error."""
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
            raise LocalInfluxError(f"query {q!r}: {status} {body!r}")
        return list(result["results"][0].get("series", []))

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')


def query_command(url: str, database: str, query: str) -> str:
    """A curl command a user can paste to run an InfluxQL query."""
    return (f"curl -sG {url}/query --data-urlencode db={shlex.quote(database)} --data-urlencode epoch=s "
            f"--data-urlencode {shlex.quote('q=' + query)}")
