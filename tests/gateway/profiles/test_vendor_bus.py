"""A mixed bus on real bytes: sitewatch nodes and vendor devices of four profiles on one simulated RS-485 line.

The gateway's bus owner polls them all; every stored reading of a vendor
device is what the simulated device measured for a sample it held at that
time (to the register's resolution), sent through the profile's layout
(including a float32 with swapped words), and the sitewatch nodes keep their
own path. Then the same readings go through the pipeline: the wind
aggregator forms gusts from the vendor anemometer's speed samples.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from gateway.acquire.poller import BusConfig, BusPoller, NodeConfig
from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Quality, Reading
from gateway.pipeline import build_pipeline
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent
from gateway.process.limits import LimitsResolver
from gateway.profiles.gust import RunningGust
from gateway.profiles.vendor import VendorProfile, load_vendor_profiles
from simulator.site import BusSpec, NodeSpec, Site
from simulator.vendor_device import VendorDevice

BAUD = 19200
PROFILES = load_vendor_profiles(system_dir=None)
DEVICES = {  # unit -> profile
    10: "calypso-ulp-ultrasonic",
    11: "deltaohm-pmsense",
    12: "geokon-6150f-inclinometer",
    13: "generic-485-noise",
}


def device_config(unit: int) -> NodeConfig:
    profile = PROFILES[DEVICES[unit]]
    return NodeConfig(f"{profile.kind}-{unit}", profile.kind, unit, 0.5, history=False, profile=profile)


def matches(profile: VendorProfile, channel: str, stored: float, truth: float) -> bool:
    register = profile.register(channel)
    if register.type == "f32":
        return math.isclose(stored, truth, rel_tol=1e-5, abs_tol=1e-6)
    return abs(stored - truth) <= abs(register.scale) / 2 + 1e-9


async def wait_until(condition: object, deadline: float) -> None:
    assert callable(condition)
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        assert loop.time() < end, "condition not met before the deadline"
        await asyncio.sleep(0.05)


async def test_mixed_bus_of_nodes_and_vendor_devices(tmp_path: Path) -> None:
    specs = (NodeSpec("dust", 1), NodeSpec("wind", 2),
             *(NodeSpec(PROFILES[p].kind, unit, profile=p) for unit, p in DEVICES.items()))
    store = SqliteStore(tmp_path / "store.sqlite3")
    delivered: list[Reading] = []

    def deliver(readings: list[Reading]) -> None:
        delivered.extend(readings)
        store.write(readings)

    with Site((BusSpec("bus0", specs, baud=BAUD),), tmp_path / "buses", seed=3, burst=True) as site:
        bus = BusConfig("bus0", str(tmp_path / "buses" / "bus0"),
                        (NodeConfig("dust-1", "dust", 1, 0.5), NodeConfig("wind-2", "wind", 2, 0.5),
                         *(device_config(unit) for unit in DEVICES)), baud=BAUD, timeout=0.5)
        poller = BusPoller(bus, deliver)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        try:
            # Six good polls of every vendor device, however long a loaded host takes for them.
            await wait_until(lambda: all(poller.health[n.name].new_samples >= (6 if n.profile else 2)
                                         for n in bus.nodes), 60.0)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        devices = {unit: site.node("bus0", unit).sim.node for unit in DEVICES}

    counts = store.count_by_node()
    for unit, name in DEVICES.items():
        profile = PROFILES[name]
        node = f"{profile.kind}-{unit}"
        device = devices[unit]
        assert isinstance(device, VendorDevice)
        readings = store.readings(node=node)
        good = [r for r in readings
                if r.quality is not Quality.COMMUNICATION_FAILURE and r.channel in profile.quantities]
        assert counts[node] == len(readings) and len(good) >= 6 * len(profile.quantities)
        assert {r.channel for r in readings} - {"wind_gust_3s"} == set(profile.quantities)
        health = poller.health[node]
        # A reply a loaded host missed is a timeout, and its poll left value-less B readings: never an old value.
        assert health.failures == health.timeouts and health.exceptions == 0
        missed = [r for r in readings if r.quality is Quality.COMMUNICATION_FAILURE]
        assert len(missed) == health.failures * len(profile.quantities)
        assert all(r.value is None for r in missed)
        for reading in good:
            assert reading.quality is Quality.NORMAL and reading.value is not None, reading
            assert reading.kind == profile.kind and reading.unit == profile.unit(reading.channel)
            # The device answered from a sample it took before the poll: one of its recent ones.
            candidates = [values[reading.channel] for t, values in device.samples
                          if reading.timestamp - 3.0 <= t <= reading.timestamp + 0.1]
            assert any(matches(profile, reading.channel, reading.value, truth) for truth in candidates), (
                reading, candidates)
    # The anemometer reports no gust: the bus owner formed wind_gust_3s from its last 6 speed samples (0.5 s).
    speeds = {r.sequence: r.value for r in store.readings(node="wind-10", channel="wind_speed")}
    formed = store.readings(node="wind-10", channel="wind_gust_3s")
    assert formed
    for g in formed:
        window = [speeds.get(k) for k in range(g.sequence - 5, g.sequence + 1)]
        if all(v is not None for v in window):  # (a missed poll between them leaves a shorter window)
            assert g.value == pytest.approx(sum(v for v in window if v is not None) / 6)
    # The sitewatch nodes keep their own path (sequence numbers from the node, history ring).
    dust = site.node("bus0", 1).sensor
    for reading in store.readings(node="dust-1", channel="pm10"):
        assert reading.value is not None
        assert abs(reading.value - dust.truth[reading.sequence]["pm10"]) <= 0.5
    assert counts["dust-1"] >= 2 * 6
    # The inclinometer's one merged read fetched both float32 values (4 registers in one request).
    assert PROFILES[DEVICES[12]].reads()[0].count == 4


def test_running_gust_follows_the_wmo_rule() -> None:
    gust = RunningGust(1.0)
    assert [gust.add(t, v) for t, v in ((0.0, 5.0), (1.0, 6.0))] == [None, None]  # 3 samples needed
    assert gust.add(2.0, 7.0) == pytest.approx(6.0)
    assert gust.add(3.0, None) is None  # an invalid sample forms no mean...
    assert gust.add(4.0, 9.0) is None  # ...nor does a window it left short
    assert gust.add(5.0, 9.0) is None
    assert gust.add(6.0, 12.0) == pytest.approx(10.0)
    assert RunningGust(0.5).count == 6


def test_a_vendor_anemometer_feeds_the_gust_and_the_crane_alarm() -> None:
    """Its readings are plain Readings: with the gust the bus owner forms (profile gust = "gateway"), the wind
    aggregator's gust and the crane alarm (which watches wind_gust_3s) act on it as on a sitewatch wind node."""
    profile = PROFILES["calypso-ulp-ultrasonic"]
    assert profile.gust == "gateway"
    pipeline = build_pipeline(LimitsResolver())
    running = RunningGust(1.0)
    base = 1_700_000_400.0  # a 10-minute boundary
    out: list[object] = []
    for i in range(125):
        t = base + i
        speed = 12.0 if 60 <= i < 63 else 5.0
        batch = [Reading("wind-10", profile.kind, channel, value, profile.unit(channel), Quality.NORMAL, t, i + 1)
                 for channel, value in (("wind_speed", speed), ("wind_dir", 90.0))]
        gust = running.add(t, speed)
        if gust is not None:
            batch.append(Reading("wind-10", profile.kind, "wind_gust_3s", gust, "m/s", Quality.NORMAL, t, i + 1))
        out += pipeline.feed(batch, t)
    gusts = [r for r in out if isinstance(r, Aggregate) and r.channel == "wind_2min_gust"]
    assert gusts and gusts[0].node == "wind-10" and gusts[0].value == pytest.approx(12.0)
    alarms = [r for r in out if isinstance(r, AlarmEvent) and r.node == "wind-10" and r.alarm == "crane_wind"]
    assert alarms, "a 12 m/s gust raises the crane alarm (9 m/s)"
