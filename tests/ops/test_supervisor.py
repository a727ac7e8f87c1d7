"""The supervisor: the watchdog is fed only while the loops make progress; STATUS; node transitions."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.acquire.link import Exchange
from gateway.ops.config import GatewayConfig, parse_config
from gateway.ops.progress import ProgressWatch
from gateway.ops.sdnotify import Notifier
from gateway.ops.service import Gateway
from gateway.ops.supervisor import Supervisor
from gateway.protocols import modbus_rtu_master as rtu
from simulator.site import BusSpec, NodeSpec, Site
from tests.ops.service_process import NotifySocket, gateway_toml


def test_progress_a_moving_counter_is_never_stuck() -> None:
    watch = ProgressWatch()
    for t in range(10):
        watch.observe("bus0", t, float(t), allowance=2.0)
    assert watch.stuck(9.5) == {}


def test_progress_a_counter_standing_still_past_its_allowance_is_stuck() -> None:
    watch = ProgressWatch()
    watch.observe("bus0", 5, 0.0, allowance=2.0)
    watch.observe("bus0", 5, 1.0, allowance=2.0)
    assert watch.stuck(2.0) == {}
    watch.observe("bus0", 5, 2.5, allowance=2.0)
    assert watch.stuck(2.5) == {"bus0": 2.5}
    watch.observe("bus0", 6, 3.0, allowance=2.0)  # moved again
    assert watch.stuck(3.0) == {}


def test_progress_an_idle_loop_is_never_stuck() -> None:
    watch = ProgressWatch()
    for t in range(10):
        watch.observe("sink sqlite", 0, float(t), allowance=1.0, busy=False)
    assert watch.stuck(9.0) == {}


class HangingLink:
    """The bus owner's link, until `hang` is set: then a transaction never ends (a driver stuck in a read)."""

    def __init__(self, link: Any) -> None:
        self._link = link
        self.hang = asyncio.Event()
        self.hanging = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._link, name)

    async def transact(self, request: rtu.Request, timeout: float) -> Exchange:
        if self.hang.is_set():
            self.hanging = True
            await asyncio.Event().wait()  # forever
        exchange: Exchange = await self._link.transact(request, timeout)
        return exchange


def _config(tmp_path: Path, port: Path) -> GatewayConfig:
    extra = "[service]\nstall_grace_s = 2.0\nheartbeat_s = 1.0\n[processing]\ntick_s = 0.2\n"
    # Deliveries every 0.05 s: between two polls the backlog is 0 (what the status line should say).
    text = gateway_toml(tmp_path, str(port), extra, queue_extra="deliver_interval_s = 0.05")
    return parse_config(tomllib.loads(text), "test.toml")


async def _wait(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {condition}"
        await asyncio.sleep(0.05)


async def test_watchdog_stops_when_a_poll_loop_is_stuck_and_status_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=3)
    manager = NotifySocket(tmp_path / "notify")
    notifier = Notifier({"NOTIFY_SOCKET": str(manager.path), "WATCHDOG_USEC": "200000"})  # WatchdogSec=0.2 s
    with site:
        gateway = Gateway(_config(tmp_path, tmp_path / "buses" / "bus0"))
        link = HangingLink(gateway.pollers[0].link)
        gateway.pollers[0].link = link  # type: ignore[assignment]
        supervisor = Supervisor(gateway, notifier)
        stop = asyncio.Event()
        running = asyncio.gather(gateway.run(stop), supervisor.run(stop))
        try:
            # Healthy: ready, fed, and the status line counts the node online with an empty backlog.
            await asyncio.to_thread(manager.wait_for, "READY", "1")
            await asyncio.to_thread(manager.wait_for, "STATUS", r"^1/1 nodes online, backlog 0$")
            fed = await asyncio.to_thread(manager.wait_for, "WATCHDOG", "1")
            assert fed >= 0
            assert any("node dust-1 (bus bus0) online" in r.message for r in caplog.records)
            link.hang.set()
            await _wait(lambda: link.hanging)
            stuck = await asyncio.to_thread(manager.wait_for, "STATUS", "STUCK: bus bus0", 120.0)
            # From then on: status lines go on, keep-alives do not.
            later = await asyncio.to_thread(manager.wait_for, "STATUS", "STUCK", 60.0, stuck + 5)
            assert not [m for m in manager.messages[stuck:later] if "WATCHDOG" in m]
            assert any("bus bus0 has made no progress" in r.message and r.levelno == logging.ERROR
                       for r in caplog.records)
        finally:
            stop.set()
            # The stuck owner never finishes its transaction: cancel what is left.
            done, _ = await asyncio.wait([running], timeout=5)
            if not done:
                running.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await running
            notifier.close()
            manager.close()
    assert any(r.message.startswith("heartbeat: 1/1 nodes online") for r in caplog.records)


async def test_a_node_that_never_answers_is_logged_offline_once(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=3)
    manager = NotifySocket(tmp_path / "notify")
    notifier = Notifier({"NOTIFY_SOCKET": str(manager.path), "WATCHDOG_USEC": "200000"})
    text = gateway_toml(tmp_path, str(tmp_path / "buses" / "bus0"), "[service]\nheartbeat_s = 0.0\n")
    text += '[[bus.node]]\nname = "dust-9"\nkind = "dust"\nunit_id = 9\ninterval = 0.5\n'  # nobody answers as 9
    stop = asyncio.Event()
    with site:
        gateway = Gateway(parse_config(tomllib.loads(text), "test.toml"))
        supervisor = Supervisor(gateway, notifier)
        running = asyncio.gather(gateway.run(stop), supervisor.run(stop))
        try:
            await asyncio.to_thread(manager.wait_for, "STATUS", r"^1/2 nodes online", 120.0)
            await _wait(lambda: any("node dust-9 (bus bus0) offline" in r.message for r in caplog.records))
            seen = len(manager.messages)
            await asyncio.to_thread(manager.wait_for, "STATUS", r"^1/2 nodes online", 60.0, seen + 5)
        finally:
            stop.set()
            await asyncio.wait_for(running, 60)
            notifier.close()
            manager.close()
    offline = [r for r in caplog.records if "node dust-9 (bus bus0) offline after" in r.message]
    assert len(offline) == 1 and offline[0].levelno == logging.WARNING, [r.message for r in offline]
    assert not [r for r in caplog.records if r.message.startswith("heartbeat")]  # heartbeat_s = 0: none


async def test_a_long_start_keeps_systemd_informed_and_the_watchdog_fed(tmp_path: Path) -> None:
    """The window rebuild runs in a worker thread before READY; meanwhile the start timeout is extended."""
    manager = NotifySocket(tmp_path / "notify")
    notifier = Notifier({"NOTIFY_SOCKET": str(manager.path), "WATCHDOG_USEC": "200000"})
    gateway = Gateway(_config(tmp_path, tmp_path / "no-bus"))
    supervisor = Supervisor(gateway, notifier)
    release = threading.Event()

    def rebuild() -> str:
        release.wait(120)
        return "rebuilt"

    try:
        starting = asyncio.ensure_future(supervisor.starting(asyncio.to_thread(rebuild), "rebuilding windows"))
        first = await asyncio.to_thread(manager.wait_for, "EXTEND_TIMEOUT_USEC")
        await asyncio.to_thread(manager.wait_for, "WATCHDOG", "1", 60.0, first + 3)  # several rounds: still fed
        assert manager.messages[first]["STATUS"].startswith("starting: rebuilding windows (")
        assert not [m for m in manager.messages if "READY" in m]  # not ready before the rebuild is done
        release.set()
        assert await asyncio.wait_for(starting, 60) == "rebuilt"
    finally:
        release.set()
        notifier.close()
        manager.close()
        gateway.queue.close()
        for sink in gateway.sinks:
            sink.close()


def test_a_poll_interval_changed_by_a_command_widens_the_allowance(tmp_path: Path) -> None:
    gateway = Gateway(_config(tmp_path, tmp_path / "no-bus"))
    try:
        supervisor = Supervisor(gateway, Notifier({}), monotonic=lambda: 0.0)
        supervisor.observe_progress(0.0)
        gateway.command_poll_interval(600.0, "dust-1", None)  # slower polls: the loop waits 600 s legitimately
        assert "bus bus0" not in supervisor.observe_progress(1000.0)  # under 2 x 600 s + timeouts + grace
        assert "bus bus0" in supervisor.observe_progress(1300.0)
    finally:
        gateway.queue.close()
        for sink in gateway.sinks:
            sink.close()


class HangingSink:
    """A sink whose sends, once `hang` is set, never end (a remote that accepted the connection and went quiet)."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self.hang = asyncio.Event()
        self.hanging = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)

    async def send(self, batch: Any) -> int:
        if self.hang.is_set():
            self.hanging = True
            await asyncio.Event().wait()
        sent: int = await self._sink.send(batch)
        return sent


async def test_watchdog_stops_when_a_delivery_is_stuck_with_a_backlog(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=3)
    manager = NotifySocket(tmp_path / "notify")
    notifier = Notifier({"NOTIFY_SOCKET": str(manager.path), "WATCHDOG_USEC": "200000"})
    text = gateway_toml(tmp_path, str(tmp_path / "buses" / "bus0"), "[service]\nstall_grace_s = 2.0\n",
                        queue_extra="deliver_interval_s = 0.05\nmax_backoff_s = 1.0")
    with site:
        gateway = Gateway(parse_config(tomllib.loads(text), "test.toml"))
        sink = HangingSink(gateway.deliveries[0].sink)
        gateway.deliveries[0].sink = sink  # type: ignore[assignment]
        supervisor = Supervisor(gateway, notifier)
        stop = asyncio.Event()
        running = asyncio.gather(gateway.run(stop), supervisor.run(stop))
        try:
            await asyncio.to_thread(manager.wait_for, "WATCHDOG", "1")
            sink.hang.set()
            await _wait(lambda: sink.hanging)
            stuck = await asyncio.to_thread(manager.wait_for, "STATUS", "STUCK: sink sqlite", 120.0)
            later = await asyncio.to_thread(manager.wait_for, "STATUS", "STUCK", 60.0, stuck + 5)
            assert not [m for m in manager.messages[stuck:later] if "WATCHDOG" in m]
            assert "bus bus0" not in manager.messages[later]["STATUS"]  # the poll loop is fine
        finally:
            stop.set()
            done, _ = await asyncio.wait([running], timeout=5)
            if not done:  # the shutdown flush waits on the stuck send: cancel it
                running.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await running
            notifier.close()
            manager.close()


async def test_the_status_line_says_when_readings_are_held_for_the_clock(tmp_path: Path) -> None:
    """Audit: without a synchronised clock `systemctl status` said "1/1 nodes online, backlog 0" while every
    reading was held and nothing reached the store or a sink."""
    from gateway.acquire.timestamps import Clock

    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=3)
    with site:
        gateway = Gateway(_config(tmp_path, tmp_path / "buses" / "bus0"),
                          clock=Clock(wall=time.time, mono=time.monotonic, valid=lambda: False))
        supervisor = Supervisor(gateway, Notifier({}))
        stop = asyncio.Event()
        running = asyncio.create_task(gateway.run(stop))
        try:
            await _wait(lambda: gateway.pollers[0].stamper.held_count > 0)
            line = supervisor.status_line()
            assert line.startswith("1/1 nodes online") or line.startswith("0/1 nodes online"), line
            assert "clock not synchronised" in line and "readings held" in line, line
        finally:
            stop.set()
            await asyncio.wait_for(running, 60)
