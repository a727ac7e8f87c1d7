"""The spray coil cannot stop silently: lease refresh and readback, on a simulated node's real relay logic.

The dust node runs firmware/node.py with a firmware/relay.py Relay behind its spray_relay coil, on a
pseudo-terminal bus, with a lease (max_on) of 1.5 s instead of an hour; the gateway's CoilActuator
writes through a real BusPoller, refreshing every 0.4 s. The ticker's job (refresh_due every tick)
is done by the test's own loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from firmware import regmap
from firmware.fakes import FakePin
from firmware.relay import Relay
from gateway.acquire.link import NoReply
from gateway.acquire.poller import BusPoller, NodeConfig
from gateway.deliver.records import Actuation, Record
from gateway.ops.service import CoilActuator
from gateway.process.spray import SprayCommand, SprayMode
from gateway.protocols import modbus_rtu_master as rtu
from simulator.site import NodeSpec
from tests.gateway.acquire.test_bus_polling import config, sim_node, simulated
from tests.support.site_gateway import ScriptedOwner

COIL = regmap.find(regmap.COILS[regmap.KIND_DUST], "spray_relay")[1]
LEASE_MS = 1500
REFRESH_S = 0.4


def command(on: bool, at: float) -> SprayCommand:
    return SprayCommand("dust-1", "spray_relay", on, at, SprayMode.ON if on else SprayMode.AUTO,
                        "manual on", None, 150.0)


async def ticking(actuator: CoilActuator, seconds: float, until: Callable[[], bool] | None = None) -> None:
    """Call refresh_due every 50 ms for `seconds` (or until the condition holds), as the gateway's ticker does."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until is not None and until()):
        actuator.refresh_due(time.monotonic())
        await asyncio.sleep(0.05)


async def test_spraying_outlasts_the_relays_lease_and_a_node_that_dropped_it_is_caught(tmp_path: Path) -> None:
    queued: list[Record] = []
    with simulated(tmp_path, NodeSpec("dust", 1)) as (site, port):
        node = sim_node(site, 1).node
        relay = Relay(FakePin("relay"), max_on_ms=LEASE_MS)
        node.relay, node.relay_coil = relay, COIL  # as firmware/main.py wires a board with a relay
        node.bank.on_coil_written = node._coil_written
        poller = BusPoller(config(port, ("dust", 1, 0.2)), lambda readings: None)
        actuator = CoilActuator({"dust-1": (poller, poller.bus.nodes[0])}, queued.extend, time.monotonic,
                                retry_s=0.5, refresh_s=REFRESH_S)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        try:
            first = await actuator.apply(command(True, time.monotonic()))
            assert first.result == "ok" and relay.on
            # Three leases long: the relay never ran out (no auto-off, never switched again).
            await ticking(actuator, 3 * LEASE_MS / 1000)
            assert relay.on and relay.auto_offs == 0 and relay.switches == 1
            assert actuator.faults() == {}
            # The node restarts: its relay is off (the firmware's safe state) while the gateway wants it on.
            relay.set(False, node.now_ms)
            node.bank.coils[COIL] = 0
            await ticking(actuator, 30.0, until=lambda: relay.on)  # a ceiling for a loaded host: ~0.4 s idle
            assert relay.on
            await actuator.drain()
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
    results = [a.result for a in queued if isinstance(a, Actuation)]
    # A reply damaged on a loaded host's pty is a failed read, said as such; the mismatch is there once.
    assert results[0] == "ok" and results[-1] == "ok", results
    assert results.count("readback mismatch: the coil reads off, wanted on") == 1, results
    assert all(r == "ok" or r.startswith("readback") for r in results), results
    assert actuator.faults() == {}


async def test_a_coil_that_does_not_read_back_as_written_is_a_fault_until_it_does() -> None:
    on = rtu.WriteAck(COIL, 0xFF00)
    owner = ScriptedOwner(on, rtu.Bits((False,)), on, rtu.Bits((True,)))
    queued: list[Record] = []
    wall = [1000.0]
    actuator = CoilActuator({"dust-1": (cast(BusPoller, owner), NodeConfig("dust-1", "dust", 1))}, queued.extend,
                            lambda: wall[0], retry_s=10.0, refresh_s=300.0)
    first = await actuator.apply(command(True, 1000.0))
    assert first.result == "readback mismatch: the coil reads off, wanted on"
    assert actuator.faults() == {"dust-1.spray_relay": first.result}
    actuator.refresh_due(2000.0)  # not confirmed: retried, not refreshed
    wall[0] = 1010.0
    actuator.retry_due(wall[0])
    await actuator.drain()
    assert [a.result for a in queued if isinstance(a, Actuation)] == [first.result, "ok"]
    assert actuator.faults() == {} and owner.outcomes == []


async def test_a_refresh_whose_rewrite_is_lost_is_said_and_retried_as_the_same_command() -> None:
    # What a starved host did to tests/integration/test_dust_episode.py: a refresh's rewrite got no reply in time.
    on, read_on = rtu.WriteAck(COIL, 0xFF00), rtu.Bits((True,))
    lost = NoReply("timeout", "no reply")
    owner = ScriptedOwner(on, read_on, read_on, lost, on, read_on)  # apply; refresh (read, lost write); retry
    queued: list[Record] = []
    wall = [1000.0]
    actuator = CoilActuator({"dust-1": (cast(BusPoller, owner), NodeConfig("dust-1", "dust", 1))}, queued.extend,
                            lambda: wall[0], retry_s=10.0, refresh_s=300.0)
    decided = command(True, 1000.0)
    assert (await actuator.apply(decided)).result == "ok"
    wall[0] = 1299.0
    actuator.refresh_due(wall[0])  # not due yet
    await actuator.drain()
    assert len(owner.outcomes) == 4
    wall[0] = 1300.0
    actuator.refresh_due(wall[0])
    await actuator.drain()
    assert actuator.faults() == {"dust-1.spray_relay": "timeout: no reply"}
    wall[0] = 1310.0
    actuator.retry_due(wall[0])
    await actuator.drain()
    actuations = [a for a in queued if isinstance(a, Actuation)]
    assert [(a.result, a.attempt, a.written) for a in actuations] == [
        ("ok", 1, 1000.0), ("timeout: no reply", 1, 1300.0), ("ok", 2, 1310.0)]
    # One decision: every record carries the command's own time, reason and state.
    assert {(a.time, a.on, a.reason) for a in actuations} == {(decided.time, True, decided.reason)}
    assert actuator.faults() == {} and owner.outcomes == []
