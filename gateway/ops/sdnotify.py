"""The systemd notification protocol (sd_notify(3)): newline-separated KEY=VALUE datagrams to $NOTIFY_SOCKET.

Used with ``Type=notify``: READY=1 once the gateway runs, STATUS= one line for
``systemctl status``, WATCHDOG=1 while the loops make progress (``WatchdogSec=``),
RELOADING=1 / READY=1 around a SIGHUP reload, STOPPING=1 at shutdown.

Outside systemd ($NOTIFY_SOCKET unset) every call does nothing, so the same
code runs in a terminal. A socket name starting with "@" is in the abstract
namespace (a leading NUL byte). A send that fails (systemd restarting, socket
gone, its queue full: the socket never blocks) is counted, logged once, and never stops the gateway.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def encode(fields: Mapping[str, str | int]) -> bytes:
    """One notification: KEY=VALUE lines. A value with a newline would start a new key: refused."""
    lines = []
    for key, value in fields.items():
        text = str(value)
        if not key or "=" in key or "\n" in key or "\n" in text:
            raise ValueError(f"sd_notify field {key!r}={text!r}: keys need no '=', neither may hold a newline")
        lines.append(f"{key}={text}")
    return "\n".join(lines).encode()


def socket_address(name: str) -> str | bytes:
    """$NOTIFY_SOCKET as an AF_UNIX address: "@name" is abstract (a leading NUL)."""
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    if not name.startswith("/"):
        raise ValueError(f"NOTIFY_SOCKET={name!r} is neither an absolute path nor an abstract name (@...)")
    return name


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between keep-alives systemd asks for (half of WatchdogSec), or None if it asks for none.

    $WATCHDOG_PID, when set, must be this process (the watchdog is not for a child).
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2e6


class Notifier:
    """Sends notifications to the service manager; a no-op without $NOTIFY_SOCKET."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        name = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = socket_address(name) if name else None
        self.watchdog_s = watchdog_interval(env)
        self.sent = 0
        self.failures = 0
        self._socket: socket.socket | None = None
        if self.address is not None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Never block the event loop the bus owners time replies on: a manager that does not read
            # (its queue holds ~10 datagrams) costs a counted failure, not a stalled gateway.
            self._socket.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, **fields: str | int) -> bool:
        """Send one datagram; True if it was sent (False without a socket or when sending failed)."""
        if self._socket is None or self.address is None:
            return False
        try:
            self._socket.sendto(encode(fields), self.address)
        except OSError as error:
            self.failures += 1
            if self.failures == 1:  # once: the manager may be restarting; it is not the gateway's fault
                log.warning("sd_notify to %r failed: %s (counted; the gateway goes on)", self.address,
                            error.strerror or error)
            return False
        self.sent += 1
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify(READY=1, **({"STATUS": status} if status else {}))

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def reloading(self) -> bool:
        # systemd >= 253 wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload); older ones ignore it.
        return self.notify(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> bool:
        return self.notify(STOPPING=1)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
