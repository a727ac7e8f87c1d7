"""The siren / beacon relay ([siren]): the rule (sans-IO), the configuration's checks, and a gateway switching a
simulated node's real coil on while the alarm is active, keeping it on against a node that dropped it, and off
when the alarm clears."""

from __future__ import annotations

import asyncio
import re
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.deliver.sqlite_store import SqliteStore
from gateway.ops.config import ConfigError, parse_config
from gateway.ops.service import Gateway
from gateway.ops.status_server import StatusServer
from gateway.ops.status_text import render
from gateway.process.alarms import ActiveAlarm, Severity
from gateway.process.siren import Siren, SirenRule
from simulator.site import BusSpec, NodeSpec, Site

DUST = ActiveAlarm("dust", "dust-1", "pm10", Severity.ALARM, 100.0)
WIND_PRE = ActiveAlarm("crane_wind", "wind-1", "wind_gust_3s", Severity.PREWARNING, 100.0)


def test_the_siren_follows_the_chosen_alarms_and_says_why() -> None:
    siren = Siren(SirenRule("relay-2", "spray_relay", {"crane_wind": Severity.PREWARNING}))
    first = siren.update([], 1.0)
    assert first is not None and not first.on  # the first call always commands: a siren left on goes off
    assert siren.update([DUST], 2.0) is None  # dust does not sound this siren
    on = siren.update([DUST, WIND_PRE], 3.0)
    assert on is not None and on.on and on.node == "relay-2" and on.coil == "spray_relay" and on.time == 3.0
    assert on.reason == "siren: crane_wind prewarning on wind-1/wind_gust_3s"
    assert siren.update([WIND_PRE], 4.0) is None  # still on: no new command
    off = siren.update([DUST], 5.0)
    assert off is not None and not off.on and off.reason == "siren: no alarm that sounds it is active"


def test_without_names_every_alarm_from_the_least_severity_sounds_it() -> None:
    assert SirenRule("n", "c").sounds("dust", Severity.ALARM)
    assert not SirenRule("n", "c").sounds("crane_wind", Severity.PREWARNING)
    assert SirenRule("n", "c", min_severity=Severity.PREWARNING).sounds("crane_wind", Severity.PREWARNING)
    assert not SirenRule("n", "c", {"dust": Severity.ALARM}).sounds("dust", Severity.PREWARNING)


def config_text(tmp: Path, port: str, extra: str) -> str:
    return f"""
[store]
path = "{tmp / 'store.sqlite3'}"
[queue]
deliver_interval_s = 0.2
[clock]
require_sync = "never"
[processing]
tick_s = 0.1
[limits.dust]
pm10_1h_limit = 1.0
[[processing.alarm]]
type = "dust"
channels = ["pm10"]
{extra}
[[bus]]
name = "bus0"
port = "{port}"
max_backoff = 1.0
[[bus.node]]
name = "dust-1"
kind = "dust"
unit_id = 1
interval = 0.3
[[bus.node]]
name = "relay-2"
kind = "dust"
unit_id = 2
interval = 0.3
"""


@pytest.mark.parametrize(("extra", "message"), [
    ('[spray]\nenabled = false\n[siren]\nnode = "relay-9"', "siren.node: 'relay-9' is not a configured node"),
    ('[spray]\nenabled = false\n[siren]\nnode = "relay-2"\ncoil = "horn"',
     "siren.coil: node 'relay-2' (dust) has no coil 'horn' (its coils: spray_relay)"),
    ('[siren]\nnode = "relay-2"', "siren.node: the spray_relay coil of 'relay-2' is driven by the spray linkage"),
    ('[siren.alarms]\ndust = "loud"', "siren.alarms.dust: 'loud' is not \"prewarning\" or \"alarm\""),
])
def test_a_siren_the_configuration_cannot_have_is_refused(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(tomllib.loads(config_text(tmp_path, "/dev/null", extra)), "test.toml")


def test_a_siren_on_a_node_whose_spray_is_mapped_elsewhere_is_accepted(tmp_path: Path) -> None:
    extra = '[spray.coils]\n"relay-2" = "dust-1"\n"dust-1" = "dust-1"\n[siren]\nnode = "relay-2"'
    with pytest.raises(ConfigError, match="two dust nodes drive the same coil"):  # the spray's own rule still holds
        parse_config(tomllib.loads(config_text(tmp_path, "/dev/null", extra)), "test.toml")
    extra = '[spray]\nenabled = false\n[siren]\nnode = "relay-2"\nmin_severity = "prewarning"'
    config = parse_config(tomllib.loads(config_text(tmp_path, "/dev/null", extra)), "test.toml")
    assert config.siren.node == "relay-2" and config.siren.min_severity == "prewarning"


async def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_the_siren_coil_is_on_while_the_alarm_is_active_and_off_when_it_clears(tmp_path: Path) -> None:
    extra = ('[spray]\nenabled = false\nrefresh_s = 1.0\nretry_s = 1.0\n[siren]\nnode = "relay-2"\n'
             '[siren.alarms]\ndust = "alarm"')
    config = parse_config(tomllib.loads(config_text(tmp_path, str(tmp_path / "buses" / "bus0"), extra)), "t.toml")
    with Site((BusSpec("bus0", (NodeSpec("dust", 1), NodeSpec("dust", 2))),), tmp_path / "buses", seed=3) as site:
        coil = site.node("bus0", 2).node.bank.coils
        gateway = Gateway(config)
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        try:
            alarms = gateway.pipeline.alarms
            assert alarms is not None
            def settled(on: bool) -> bool:  # written and read back as wanted
                state = gateway.actuator.coil_of("relay-2")
                assert not isinstance(state, str), state
                return (state.command is not None and state.command.on is on and state.last_result == "ok"
                        and not state.lock.locked() and bool(coil[0]) is on)

            await wait_for(lambda: bool(alarms.active()) and settled(True), 120.0, "the alarm and the siren")
            server = StatusServer(gateway)
            state = await server.snapshot()
            await server.stop()
            siren = state["siren"]
            assert (siren["node"], siren["coil"], siren["on"]) == ("relay-2", "spray_relay", True)
            assert siren["causes"] and all(c.startswith("dust alarm on ") for c in siren["causes"])
            assert "siren (relay-2.spray_relay): ON: dust alarm on " in render(state)
            # The node loses the coil (a reboot, its lease ran out): the readback catches it and writes it again.
            coil[0] = 0
            await wait_for(lambda: bool(coil[0]), 60.0, "the refresh to switch the siren on again")
            # The alarm clears (its limit raised far above the air, as a `threshold` command does).
            gateway.command_threshold("dust.pm10_1h_limit", 100000.0, None)
            await wait_for(lambda: not alarms.active() and settled(False), 60.0, "the siren to go off")
            assert gateway.siren is not None and gateway.siren.on is False
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
    store = SqliteStore(config.store_path)
    try:
        rows = store.query('SELECT node, coil, "on", result, reason FROM actuations ORDER BY id')
    finally:
        store.close()
    assert all(r[0] == "relay-2" and r[1] == "spray_relay" for r in rows)
    written = [(on, result) for _, _, on, result, _ in rows]
    assert written[0] == (0, "ok")  # the first tick: off, before any alarm
    assert (1, "ok") in written and written[-1] == (0, "ok")
    assert any(result.startswith("readback mismatch: the coil reads off") for _, result in written), rows
    assert any("dust alarm on dust-1/pm10" in reason for *_, reason in rows if reason.startswith("siren: ")), rows
