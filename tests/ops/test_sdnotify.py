"""sd_notify against a real unix datagram socket standing in for systemd."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import pytest

from gateway.ops.sdnotify import Notifier, encode, watchdog_interval
from tests.ops.service_process import NotifySocket


def test_notifications_arrive_as_systemd_reads_them(tmp_path: Path) -> None:
    manager = NotifySocket(tmp_path / "notify")
    notifier = Notifier({"NOTIFY_SOCKET": str(manager.path)})
    try:
        assert notifier.enabled
        assert notifier.ready(status="starting")
        assert notifier.status("8/8 nodes online, backlog 0")
        assert notifier.watchdog()
        assert notifier.reloading()
        assert notifier.stopping()
        manager.wait_for("STOPPING")
        assert manager.messages[:3] == [
            {"READY": "1", "STATUS": "starting"}, {"STATUS": "8/8 nodes online, backlog 0"}, {"WATCHDOG": "1"},
        ]
        assert manager.messages[3]["RELOADING"] == "1" and manager.messages[3]["MONOTONIC_USEC"].isdigit()
        assert notifier.sent == 5
    finally:
        notifier.close()
        manager.close()


def test_an_abstract_socket_name_works() -> None:
    name = f"sitewatch-test-{os.getpid()}"
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(b"\0" + name.encode())
    manager.settimeout(30)
    notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
    try:
        assert notifier.watchdog()
        assert manager.recv(100) == b"WATCHDOG=1"
    finally:
        notifier.close()
        manager.close()


def test_without_a_socket_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled and not notifier.ready() and not notifier.watchdog()


def test_a_vanished_manager_is_counted_not_raised(tmp_path: Path) -> None:
    manager = NotifySocket(tmp_path / "notify")
    notifier = Notifier({"NOTIFY_SOCKET": str(manager.path)})
    manager.close()
    manager.path.unlink()
    assert not notifier.watchdog()
    assert notifier.failures == 1
    notifier.close()


def test_a_field_cannot_smuggle_another_key() -> None:
    assert encode({"STATUS": "ok"}) == b"STATUS=ok"
    with pytest.raises(ValueError, match="newline"):
        encode({"STATUS": "ok\nREADY=1"})
    with pytest.raises(ValueError):
        Notifier({"NOTIFY_SOCKET": "relative/path"})


def test_watchdog_interval_is_half_of_watchdog_sec_for_this_process_only() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None and watchdog_interval({"WATCHDOG_USEC": "0"}) is None


def test_a_manager_that_does_not_read_never_blocks_the_sender(tmp_path: Path) -> None:
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(tmp_path / "notify"))
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})
    try:
        results = [notifier.status(f"line {i}") for i in range(1000)]  # far beyond the receive queue
        assert results[0] and not all(results)
        assert notifier.failures == results.count(False)
        manager.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while manager.recv(100):
                pass
        assert notifier.watchdog()  # once read, sending works again
    finally:
        notifier.close()
        manager.close()
