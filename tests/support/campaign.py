"""Pieces of the delivery fault campaign (tests/integration/test_delivery_campaign.py).

* ``Platform``: an HJ 212 platform (gateway.deliver.hj212_listen.Receiver) on its own event loop
  thread, that can be dropped (server closed, connections cut) and brought back on the same port;
* ``GatewayProcess``: the gateway as a process on the site's clock (tests/support/sim_gateway.py),
  started, killed with SIGKILL, stopped with SIGTERM;
* ``expected_reading``: what the gateway must read for a true value (the register's quantisation);
* ``hj212_time``: the DataTime of a window start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from firmware import regmap
from gateway.deliver.hj212_listen import Received, Receiver
from gateway.protocols.hj212 import FrameError
from simulator.scenario import KIND_CODES
from simulator.site import Site
from tests.support.warm_gateway import WarmGateway


class Platform:
    """The HJ 212 receiver of a municipal platform, running in a thread; drop() and back() keep the port."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hj212-platform", daemon=True)
        self._thread.start()
        self._receiver: Receiver | None = None
        self.port = 0
        self.drops = 0
        self.errors: list[str] = []  # frames the receivers refused, and why (the sender resends them)
        self._finished: list[Receiver] = []

    def _on_packet(self, packet: Received) -> None:
        with self._lock:
            self.received.append(packet)

    def packets(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def _call(self, make: Callable[[], object]) -> object:
        async def run() -> object:
            result = make()
            if asyncio.iscoroutine(result):
                return await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def _on_error(self, peer: str, error: FrameError) -> None:
        with self._lock:
            self.errors.append(f"{peer}: {error}")

    def counts(self) -> Counter[str]:
        """The receivers' counts (connections, packets, acknowledged), over every start."""
        total: Counter[str] = Counter()
        for receiver in [*self._finished, *([self._receiver] if self._receiver is not None else [])]:
            total.update(receiver.counts)
        return total

    def start(self) -> int:
        receiver = Receiver(self._on_packet, self._on_error)
        _, self.port = self._call(lambda: receiver.start("127.0.0.1", self.port))  # type: ignore[misc]
        self._receiver = receiver
        return self.port

    def drop(self) -> None:
        """The platform goes away: no more connections accepted, the open ones cut."""
        if self._close():
            self.drops += 1

    def _close(self) -> bool:
        receiver, self._receiver = self._receiver, None
        if receiver is None:
            return False
        self._call(receiver.close)
        self._finished.append(receiver)
        return True

    def close(self) -> None:
        self._close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class GatewayProcess:
    """`sitewatch run` on the site's clock, as a process: start, kill -9, SIGTERM."""

    def __init__(self, site: Site, config: Path, log: Path, spare: WarmGateway | None = None) -> None:
        """spare: a process already imported (warm()), made before the site started: a first start on a busy
        host would otherwise spend the simulated minutes before the compared window importing Python."""
        clock = site.clock
        # The site clock is start_time + speed * (monotonic - origin) while nothing gates it.
        assert clock.gate is None, "a gated site clock cannot be followed by another process"
        probe = 1000.0
        self.origin = probe - (clock.at(probe) - clock.start_time) / clock.speed
        self.start_time = clock.start_time
        self.speed = clock.speed
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self._spare = spare if spare is not None else self.warm(log)

    @staticmethod
    def warm(log: Path) -> WarmGateway:
        """A gateway process that has done its imports and waits for start() (one is kept ready for each start)."""
        with log.open("ab") as out:
            return WarmGateway(log.with_name(f"ready-{time.monotonic_ns()}"), stdout=out, stderr=subprocess.STDOUT,
                               target="sim_gateway")

    def start(self) -> None:
        """Start at once, as systemd's Restart= would: the spare has imported already."""
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
        self._spare.wait_ready()
        self.process = self._spare.go(["--config", str(self.config), "--start-time", repr(self.start_time),
                                       "--origin", repr(self.origin), "--speed", repr(self.speed)])
        self._spare = self.warm(self.log)
        self.starts += 1

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None and self.process.poll() is None, f"the gateway died: {self.tail()}"
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.kills += 1

    def terminate(self, timeout: float = 120.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def ensure_stopped(self) -> None:
        self._spare.discard()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def measurement_rows(kind: str) -> dict[str, tuple[int, int]]:
    """channel -> (register format, scale) of a node kind's measurements."""
    return {name: (fmt, scale) for name, _address, fmt, scale, _unit in regmap.MEASUREMENTS[KIND_CODES[kind]]}


def expected_reading(kind: str, channel: str, true_value: float) -> float:
    """The value the gateway reads for a true value: encoded into its register and decoded back."""
    fmt, scale = measurement_rows(kind)[channel]
    raw: int = regmap.decode_raw(regmap.encode(true_value, fmt, scale), fmt)
    return raw / scale


def hj212_time(epoch: float, utc_offset_h: float = 8.0) -> str:
    """DataTime (YYYYMMDDhhmmss, local time at the sink's offset) of an epoch time."""
    return (datetime.fromtimestamp(epoch, UTC) + timedelta(hours=utc_offset_h)).strftime("%Y%m%d%H%M%S")
