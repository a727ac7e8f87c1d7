"""SIGHUP reloads what can change while running, refuses a bad file, and says what needs a restart."""

from __future__ import annotations

import logging
import signal
import tomllib
from pathlib import Path

import pytest

from gateway.ops.config import GatewayConfig, parse_config
from gateway.ops.reload import Reloader, plan
from gateway.ops.service import Gateway
from tests.ops.service_process import NotifySocket, Running, gateway_toml


def _parse(text: str) -> GatewayConfig:
    return parse_config(tomllib.loads(text), "test.toml")


def test_plan_nothing_changed(tmp_path: Path) -> None:
    text = gateway_toml(tmp_path, "/dev/null")
    assert plan(_parse(text), _parse(text)).empty


def test_plan_alarm_limits_and_intervals_apply_at_once(tmp_path: Path) -> None:
    old = _parse(gateway_toml(tmp_path, "/dev/null"))
    new = _parse(gateway_toml(tmp_path, "/dev/null", "[limits.wind]\ncrane_gust = 7.5\n").replace(
        "interval = 0.5", "interval = 2.0"))
    change = plan(old, new)
    assert change.changed_tables == ["wind"] and change.limits is not None
    assert change.limits.site.wind.crane_gust == 7.5
    assert change.intervals == {"dust-1": 2.0}
    assert change.needs_restart == []


def test_plan_what_needs_a_restart_is_named(tmp_path: Path) -> None:
    old = _parse(gateway_toml(tmp_path, "/dev/null"))
    new = _parse(gateway_toml(tmp_path, "/dev/ttyS0", "[limits.spray]\nmin_on_s = 60.0\n[site]\nname = \"b\"\n"))
    change = plan(old, new)
    assert sorted(change.needs_restart) == ["bus", "limits.spray", "site"]
    assert change.limits is None and change.intervals == {}


def test_reloader_applies_limits_to_the_running_alarms(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_toml(tmp_path, "/dev/null"))
    gateway = Gateway(_parse(path.read_text()))
    try:
        path.write_text(gateway_toml(tmp_path, "/dev/null", "[limits.wind]\ncrane_gust = 7.5\n"))
        with caplog.at_level(logging.INFO):
            change = Reloader(path, gateway, lambda config: None).reload()
        assert change is not None and change.changed_tables == ["wind"]
        assert gateway.pipeline.alarms is not None
        assert gateway.pipeline.alarms.limits.site.wind.crane_gust == 7.5
        assert gateway.config.limits_resolver().site.wind.crane_gust == 7.5
        path.write_text("[store\n")
        with caplog.at_level(logging.INFO):
            assert Reloader(path, gateway, lambda config: None).reload() is None
        assert any("reload refused, still running on the previous configuration" in r.message
                   for r in caplog.records)
        assert gateway.pipeline.alarms.limits.site.wind.crane_gust == 7.5
    finally:
        gateway.queue.close()
        for sink in gateway.sinks:
            sink.close()


def test_sighup_reloads_refuses_a_bad_file_and_keeps_running(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path, str(tmp_path / "ttyRS485")))
    manager = NotifySocket(tmp_path / "notify")
    run = Running("run", "-c", str(config), env={"NOTIFY_SOCKET": str(manager.path)})
    try:
        manager.wait_for("READY", "1")
        run.wait_for(r"ready \(systemd notified\)")
        config.write_text(gateway_toml(tmp_path, str(tmp_path / "ttyRS485"), "[limits.wind]\ncrane_gust = 7.5\n"
                                       "[service]\nlog_level = \"DEBUG\"\n[site]\nname = \"renamed\"\n")
                          .replace("interval = 0.5", "interval = 2"))
        seen = len(run.lines)
        run.signal(signal.SIGHUP)
        run.wait_for(r"reload: alarm limits \[limits.wind\] applied", start=seen)
        run.wait_for(r"reload: poll interval of dust-1 set to 2 s", start=seen)
        run.wait_for(r"reload: site changed: these need a restart", start=seen)
        run.wait_for(r"reload: \[service\] applied \(log level DEBUG\)", start=seen)
        reloading = manager.wait_for("RELOADING", "1")
        manager.wait_for("READY", "1", start=reloading)
        run.wait_for(r" DEBUG gateway.ops.supervisor: status: ", start=seen)  # the new level is in force
        config.write_text("[store\n")
        seen = len(run.lines)
        run.signal(signal.SIGHUP)
        run.wait_for(r"ERROR .*reload refused, still running on the previous configuration: .*not valid TOML",
                     start=seen)
        assert run.proc.poll() is None
    finally:
        assert run.stop() == 0
        manager.close()
