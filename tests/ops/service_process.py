"""`sitewatch run` as a real process for the operations tests: its log read line by line, waits on conditions."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

SITEWATCH = str(Path(sys.executable).with_name("sitewatch"))


def gateway_toml(
    tmp: Path, port: str, extra: str = "", store: str | None = None, queue: str = "", queue_extra: str = "",
    status_port: int = 0,
) -> str:
    """A small gateway configuration: one serial bus (the port need not exist: the gateway retries it).

    status_port: the status endpoint's; 0 (none) by default, so that gateways of concurrent tests never compete
    for the default port.
    """
    return f"""
[status]
port = {status_port}
[store]
path = "{store or tmp / 'store.sqlite3'}"
[queue]
path = "{queue}"
{queue_extra}
[clock]
require_sync = "never"
{extra}
[[bus]]
name = "bus0"
port = "{port}"
max_backoff = 1.0
[[bus.node]]
name = "dust-1"
kind = "dust"
unit_id = 1
interval = 0.5
"""


class Running:
    """A `sitewatch` process; stderr is collected in `lines` by a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
        environ.update(env or {})
        self.proc = subprocess.Popen([SITEWATCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=environ)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, pattern: str, timeout: float = 60.0, start: int = 0) -> str:
        """The first line from `start` on that matches `pattern` (a regular expression); fails after timeout."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if regex.search(line):
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r} (exit status {self.proc.poll()}); log:\n"
                             + "\n".join(self.lines))

    def exit_status(self, timeout: float = 60.0) -> int:
        status = self.proc.wait(timeout)
        self._reader.join(10)
        return status

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.exit_status()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.exit_status()


class NotifySocket:
    """A unix datagram socket standing in for systemd's $NOTIFY_SOCKET; a thread collects every message
    (as systemd reads at once: a full receive queue would make the gateway's sends fail)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[dict[str, str]] = []
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                return
            self.messages.append(dict(line.split("=", 1) for line in data.decode().split("\n")))

    def wait_for(self, key: str, value: str | None = None, timeout: float = 60.0, start: int = 0) -> int:
        """Index of the first message from `start` with key (and a value matching the regular expression)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, message in enumerate(list(self.messages[start:]), start):
                if key in message and (value is None or re.search(value, message[key])):
                    return i
            time.sleep(0.01)
        raise AssertionError(f"no notification {key}={value!r} within {timeout} s: {self.messages[-20:]}")

    def close(self) -> None:
        self._closed.set()
        self._reader.join(5)
        self.sock.close()
