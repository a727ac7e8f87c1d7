"""A private server process (influxd, mosquitto) on free loopback ports, with its files in one folder.

Used by ``sitewatch demo`` and by the tests' fixtures. The server runs in its
own session, so a Ctrl-C in the demo's terminal reaches the demo only: the
demo flushes its gateway into the server first and then stops it. On Linux
the child also gets SIGTERM when the thread that started it dies
(``PR_SET_PDEATHSIG``), so even a demo killed with SIGKILL leaves no server
behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

READY_TIMEOUT_S = 60.0  # generous: two cores shared with other work
STOP_TIMEOUT_S = 20.0
SEARCH_PATH = ("/usr/bin", "/usr/sbin")  # where Debian installs servers, even when PATH does not list them


class LocalServerError(RuntimeError):
    """The server exited or did not answer in time (the message carries its log's tail)."""


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


def resolve_binary(name: str, option: str | None) -> str | None:
    """The binary to run: `option` (a path, or a name looked up on PATH only), else `name` via find_binary."""
    if option is None:
        return find_binary(name)
    if "/" in option:
        return option if os.access(option, os.X_OK) and not os.path.isdir(option) else None
    return find_binary(option, os.environ.get("PATH", ""))


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


class LocalServer:
    """A server process with its log under `root`; subclasses say how to run it and when it is ready."""

    name = "server"

    def __init__(self, root: Path, binary: str) -> None:
        self.root = root
        self.binary = binary
        root.mkdir(parents=True, exist_ok=True)
        self.log_path = root / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        if self.process is None:
            raise LocalServerError(f"{self.name} is not running")
        return self.process.pid

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start the server and wait until it is ready; LocalServerError when it exits or stays silent."""
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process. Call it from the main thread: the death signal is tied to the thread that forks,
        so a worker thread that ends would take the server with it."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until the server is ready (it may run in a worker thread); stops it when it does not get there."""
        if self.process is None:
            raise LocalServerError(f"{self.name} was not launched")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalServerError(f"{self.name} exited with {self.process.returncode}: {self.tail()}")
            try:
                if self.ready():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise LocalServerError(f"{self.name} was not ready within {timeout:g} s: {self.tail()}")

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
