"""A vendor device that stops answering, or refuses: honest gaps (B / D readings, an outage), never old values.

Also a profile whose registers need two requests (two function codes): both
go out in the device's one slot and decode into one set of readings.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.acquire.outages import NodeOutage
from gateway.acquire.poller import BusConfig, BusPoller, NodeConfig
from gateway.model import Quality, Reading
from gateway.profiles.vendor import load_profile, load_vendor_profiles
from simulator.bus import PtyBus
from simulator.site import BusSpec, NodeSpec, Site

BAUD = 19200
TWO_FUNCTIONS = """
[device]
kind = "wind"
description = "speed in a holding register, direction in an input register"
source = "test"
[[register]]
quantity = "wind_speed"
function = 3
address = 0
scale = 0.01
unit = "m/s"
[[register]]
quantity = "wind_dir"
function = 4
address = 0
scale = 0.1
unit = "deg"
"""


async def until(condition: object, seconds: float = 60.0) -> None:
    assert callable(condition)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not condition():
        assert loop.time() < end, "condition not met before the deadline"
        await asyncio.sleep(0.02)


async def test_missed_polls_are_gaps_and_refusals_are_faults(tmp_path: Path) -> None:
    profile_path = tmp_path / "two-functions.toml"
    profile_path.write_text(TWO_FUNCTIONS)
    two = load_profile(profile_path)
    assert len(two.reads()) == 2
    pm = load_vendor_profiles(system_dir=None)["deltaohm-pmsense"]
    specs = (NodeSpec("wind", 20, profile=str(profile_path)), NodeSpec("noise", 21, profile="generic-485-noise"))
    readings: list[Reading] = []
    outages: list[NodeOutage] = []
    with Site((BusSpec("bus0", specs, baud=BAUD),), tmp_path / "buses", seed=2, burst=True) as site:
        bus = BusConfig(
            "bus0", str(tmp_path / "buses" / "bus0"),
            (NodeConfig("wind-20", "wind", 20, 0.25, history=False, profile=two),
             # The noise transmitter configured with the wrong profile: it refuses those registers.
             NodeConfig("dust-21", "dust", 21, 0.25, history=False, profile=pm)),
            baud=BAUD, timeout=0.3,
        )
        poller = BusPoller(bus, readings.extend, on_outage=outages.extend)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        health = poller.health["wind-20"]
        line: PtyBus = site.running[0]
        try:
            await until(lambda: health.new_samples >= 3)
            away = [s for s in line.nodes if s.ident == 20]
            line.nodes = [s for s in line.nodes if s.ident != 20]
            timeouts = health.timeouts  # (a loaded host may have missed a reply already)
            await until(lambda: health.timeouts >= timeouts + 2)
            line.nodes = line.nodes + away
            back = health.new_samples
            await until(lambda: health.new_samples >= back + 3 and outages)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    wind = [r for r in readings if r.node == "wind-20"]
    good = [r for r in wind if r.quality is Quality.NORMAL]
    missed = [r for r in wind if r.quality is Quality.COMMUNICATION_FAILURE]
    assert {r.channel for r in good} == {"wind_speed", "wind_dir"}
    # One sample per good poll has both channels (two requests, one set of readings, one sequence number).
    by_sequence: dict[int, set[str]] = {}
    for r in good:
        by_sequence.setdefault(r.sequence, set()).add(r.channel)
    assert all(channels == {"wind_speed", "wind_dir"} for channels in by_sequence.values())
    assert len(by_sequence) == health.new_samples
    assert health.answered == health.polls - health.failures  # a poll of two requests counts once
    # Each failed poll: both channels without a value, flag B; never a repeat of the last good value.
    assert len(missed) == 2 * health.failures and health.failures >= 2
    assert all(r.value is None and r.sequence == 0 for r in missed)
    outage = max((o for o in outages if o.node == "wind-20"), key=lambda o: o.missed)
    assert outage.closed and outage.reason.startswith("B: timeout") and outage.missed >= 2
    # The refusing device: every poll an exception 2, so flag D and no value, counted as exceptions.
    refused = [r for r in readings if r.node == "dust-21"]
    wrong = poller.health["dust-21"]
    # (A loaded host may miss a reply now and then: a timeout, flag B.)
    assert wrong.exceptions >= 1 and wrong.exceptions + wrong.timeouts == wrong.polls and wrong.new_samples == 0
    assert all(r.value is None for r in refused)
    assert sum(r.quality is Quality.DEVICE_FAULT for r in refused) == 3 * wrong.exceptions
    assert sum(r.quality is Quality.COMMUNICATION_FAILURE for r in refused) == 3 * wrong.timeouts
    assert {r.channel for r in refused} == {"pm1", "pm25", "pm10"}
