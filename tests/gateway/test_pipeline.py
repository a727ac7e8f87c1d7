"""The gateway pipeline: pure stages on synthetic readings, then the whole gateway on a simulated site."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TypeVar, cast

import pytest

from gateway.acquire.link import NoReply
from gateway.acquire.poller import BusPoller, NodeConfig
from gateway.deliver.queue import DurableQueue
from gateway.deliver.records import Actuation, Record
from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Quality, Reading
from gateway.ops.config import GatewayConfig
from gateway.ops.service import CoilActuator, Gateway
from gateway.pipeline import SprayPlan, StageError, StageSpec, build_pipeline
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.process.limits import LimitsResolver
from gateway.process.spray import SprayCommand, SprayMode
from gateway.protocols import modbus_rtu_master as rtu
from simulator.site import BusSpec, NodeSpec, Site
from tests.gateway.process.support import local, reading
from tests.support.site_gateway import ScriptedOwner, gateway_config, running
from tests.support.waiting import wait_until, wait_until_async

T0 = local(9, 0)  # a clock-aligned start: 15-min and 1-h windows begin here


def limits(**tables: dict[str, object]) -> LimitsResolver:
    return LimitsResolver.from_config(tables)


def pm10(value: float | None, t: float, quality: Quality = Quality.NORMAL, seq: int = 0) -> Reading:
    return reading("pm10", value, t, node="dust-1", kind="dust", unit="ug/m3", quality=quality, sequence=seq)


R = TypeVar("R")


def of(records: list[Record], cls: type[R]) -> list[R]:
    return [r for r in records if isinstance(r, cls)]


def aggregate(records: list[Record], channel: str) -> Aggregate:
    (found,) = [r for r in records if isinstance(r, Aggregate) and r.channel == channel]
    return found


# -- pure: processors, aggregators, alarms, spray -------------------------------------------------


def test_an_hour_of_dusty_air_raises_the_dust_alarm_and_switches_the_spray_on() -> None:
    pipeline = build_pipeline(LimitsResolver(), spray=SprayPlan())
    out: list[Record] = []
    for i in range(3601):  # 09:00:00 .. 10:00:00 inclusive: the last reading closes the hour
        out += pipeline.feed([pm10(200.0, T0 + i, seq=i + 1)], now=T0 + i + 0.5)
    # Every reading comes through, once, in order.
    readings = of(out, Reading)
    assert [r.timestamp for r in readings] == [T0 + i for i in range(3601)]
    quarter = aggregate(out, "pm10_1h_mean")
    assert (quarter.value, quarter.count, quarter.expected, quarter.valid) == (200.0, 3600, 3600, True)
    # The first 15-min mean switches the spray on, right behind the aggregate that caused it.
    first_quarter = next(i for i, r in enumerate(out) if isinstance(r, Aggregate) and r.channel == "pm10_15min_mean")
    command = out[first_quarter + 1]
    assert isinstance(command, SprayCommand)
    assert (command.node, command.coil, command.on, command.mode) == ("dust-1", "spray_relay", True, SprayMode.AUTO)
    assert command.reason == "PM10 15-min mean 200 ug/m3 > 150 ug/m3"
    assert command.time == T0 + 900 + 0.5  # the `now` of the feed that closed the window
    assert len(of(out, SprayCommand)) == 1  # on, and it stays on
    # The hourly mean above the dust setting raises the dust alarm, stamped with the window start.
    (event,) = [e for e in of(out, AlarmEvent) if e.alarm == "dust"]
    assert (event.severity, event.state, event.value, event.limit, event.time) == (
        Severity.ALARM, EventState.RAISED, 200.0, 150.0, T0
    )


def test_processors_flag_readings_before_aggregation_and_over_range_values_count_in_the_means_with_t() -> None:
    pipeline = build_pipeline(LimitsResolver(), processors=[StageSpec("range")],
                              aggregators=[StageSpec("pm", {"windows": ["1min"]})], alarms=[])
    out: list[Record] = []
    for i in range(60):
        value = 5000.0 if i % 4 == 0 else 40.0  # every 4th is beyond the sensor's 1000 ug/m3
        out += pipeline.feed([pm10(value, T0 + i)], T0 + i)
    out += pipeline.feed([pm10(40.0, T0 + 60)], T0 + 60)
    flagged = [r for r in of(out, Reading) if r.value == 5000.0]
    assert len(flagged) == 15 and all(r.quality is Quality.OVER_RANGE for r in flagged)
    mean = aggregate(out, "pm10_1min_mean")
    # Over range is information (docs/data-quality.md): the T values count at their value and flag the mean T.
    assert (mean.value, mean.count, mean.valid, mean.quality) == (1280.0, 60, True, Quality.OVER_RANGE)


def test_a_silent_node_closes_its_windows_on_tick_and_the_aggregate_still_reaches_alarms_and_spray() -> None:
    pipeline = build_pipeline(limits(dust={"pm10_1h_limit": 100.0}), spray=SprayPlan(), late_s=5.0)
    for i in range(900):
        pipeline.feed([pm10(300.0, T0 + i)], T0 + i)
    # The node goes quiet: nothing closes the 09:00-09:15 window but time.
    assert pipeline.tick(T0 + 900 + 4.9) == []  # still within the grace for late readings
    out = pipeline.tick(T0 + 905.0)
    assert aggregate(out, "pm10_15min_mean").value == 300.0
    (command,) = of(out, SprayCommand)
    assert command.on and command.time == T0 + 905.0
    # A reading for the closed window that arrives now is late: it revises the window, and the
    # revision neither drives the spray again nor raises an alarm (docs/revisions.md).
    late = pipeline.feed([pm10(300.0, T0 + 899.5)], T0 + 906)
    revised = aggregate(late, "pm10_15min_mean")
    assert (revised.start, revised.count, revised.revision) == (T0, 901, 1)
    assert of(late, SprayCommand) == [] and of(late, AlarmEvent) == []


def sample(seq: int, t: float, humidity: float = 50.0) -> list[Reading]:
    return [
        reading("pm25", 20.0, t, node="dust-1", kind="dust", unit="ug/m3", sequence=seq),
        reading("pm10", 35.0, t, node="dust-1", kind="dust", unit="ug/m3", sequence=seq),
        reading("humidity", humidity, t, node="dust-1", kind="dust", unit="%", sequence=seq),
    ]


def humid_flags(records: list[Record]) -> list[tuple[int, float | None]]:
    return [(r.sequence, r.value) for r in records if isinstance(r, Reading) and r.channel == "pm_humid"]


def test_humid_pm_is_flagged_once_per_sample_from_the_rh_channel() -> None:
    # One place decides "humid": the humidity processor, from the sample's RH (gateway threshold 75 %).
    # The node's STATUS_HUMID bit is not a second source (docs/data-quality.md).
    pipeline = build_pipeline(LimitsResolver(), aggregators=[], alarms=[])
    out = pipeline.feed(sample(1, T0, 70.0) + sample(2, T0 + 1, 80.0) + sample(3, T0 + 2, 50.0), T0 + 3)
    assert humid_flags(out) == [(1, 0.0), (2, 1.0), (3, 0.0)]
    assert [r.channel for r in of(out[:4], Reading)] == ["pm25", "pm10", "humidity", "pm_humid"]
    # A sample after a value-less one still gets exactly one flag (outages come from the bus owner now).
    pipeline.feed([pm10(None, T0 + 4, Quality.COMMUNICATION_FAILURE)], T0 + 4)
    out = pipeline.feed(sample(5, T0 + 5, 90.0), T0 + 5)
    assert humid_flags(out) == [(5, 1.0)]


def test_manual_spray_override_through_the_pipeline() -> None:
    pipeline = build_pipeline(LimitsResolver(), spray=SprayPlan())
    (on,) = pipeline.set_spray_mode("dust-1", "on", T0, who="safety officer")
    assert isinstance(on, SprayCommand) and on.on and on.reason == "manual on by safety officer"
    assert pipeline.spray_state() == {"dust-1": (SprayMode.ON, True)}
    (back,) = pipeline.set_spray_mode("dust-1", SprayMode.AUTO, T0 + 1)
    assert isinstance(back, SprayCommand) and back.reason.startswith("auto mode set by operator")
    with pytest.raises(LookupError):
        build_pipeline(LimitsResolver()).set_spray_mode("dust-1", "on", T0)


def test_a_stage_that_cannot_be_built_is_named() -> None:
    with pytest.raises(StageError) as raised:
        build_pipeline(LimitsResolver(), processors=[StageSpec("range"), StageSpec("hampel", {"flag": "Q"})])
    assert raised.value.where == "processor[1] (hampel)" and "'Q' is not an HJ 212 flag" in raised.value.problem
    with pytest.raises(StageError, match=r"aggregator\[0\] \(pmm\): unknown aggregator 'pmm'"):
        build_pipeline(LimitsResolver(), aggregators=[StageSpec("pmm")])
    with pytest.raises(StageError, match="alarm names repeat: dust"):
        build_pipeline(LimitsResolver(), alarms=[StageSpec("dust"), StageSpec("dust")])


# -- the whole gateway on a simulated site -----------------------------------------------------------


PIPELINE = """
[queue]
deliver_interval_s = 0.2
[processing]
tick_s = 0.2
late_s = 0.5
[[processing.aggregator]]
type = "pm"
windows = ["5s"]
[spray]
channel = "pm10_5s_mean"
[limits.dust]
pm10_1h_limit = 1.0       # far below any real air: the simulated dust switches the spray on
[limits.sampling]
validity_fraction = 0.5
"""


def site_config(tmp_path: Path, port: Path, extra: str = "") -> GatewayConfig:
    """One dust node polled every 0.5 s; 5-s PM windows that switch the spray."""
    return gateway_config(tmp_path, port, [("dust-1", "dust", 1, 0.5, "")], PIPELINE + extra)


async def test_dust_over_the_limit_switches_the_spray_coil_of_the_simulated_node(tmp_path: Path) -> None:
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=3)
    config = site_config(tmp_path, tmp_path / "buses" / "bus0")
    with site:
        coils = site.node("bus0", 1).node.bank.coils
        assert coils[0] == 0
        async with running(Gateway(config)) as gateway:
            await wait_until_async(lambda: site.node("bus0", 1).node.bank.coils[0] == 1, 60, detail=gateway.status)
            # The manual override switches it off again, whatever the dust does.
            (off,) = await gateway.set_spray_mode("dust-1", "off", who="test")
            assert (off.on, off.result, off.reason) == (False, "ok", "manual off by test")
            assert site.node("bus0", 1).node.bank.coils[0] == 0
            status = gateway.status()  # every write read back as written; the node delivers
            assert status["coil_faults"] == {} and status["nodes"]["dust-1"]["healthy"], status
            with pytest.raises(LookupError, match="no bus owns node 'dust-7'"):
                await gateway.set_spray_mode("dust-7", "on")
    store = SqliteStore(config.store_path)
    try:
        rows = store.query('SELECT "on", result, mode, reason, value, level FROM actuations ORDER BY id')
        readings = store.readings(node="dust-1")
        means = store.query("SELECT value, valid FROM aggregates WHERE channel = 'pm10_5s_mean'")
    finally:
        store.close()
    assert rows[0][:3] == (1, "ok", "auto") and rows[-1][:3] == (0, "ok", "off")
    on_reason, on_value, level = rows[0][3], rows[0][4], rows[0][5]
    assert isinstance(on_value, float) and on_value > 1.0 and level == 1.0
    assert on_reason == f"pm10_5s_mean {on_value:g} ug/m3 > 1 ug/m3"
    assert (on_value, 1) in means  # the valid mean behind the decision is in the store too
    # One pm_humid reading per valid dust sample, from its RH reading.
    samples = {r.sequence for r in readings if r.channel == "pm10"}
    good = {r.sequence for r in readings if r.channel == "pm10" and r.quality is Quality.NORMAL}
    flags = [r.sequence for r in readings if r.channel == "pm_humid"]
    assert good and good <= set(flags) <= samples
    assert len(flags) == len(set(flags))


def test_sitewatch_run_resumes_the_queue_and_stops_on_sigterm_with_every_record_delivered(tmp_path: Path) -> None:
    # Burst: the coil's readback is checked to the word below, and a bus thread kept off a loaded CPU in
    # mid-reply would cut it in two, which no real line does (docs/testing.md; series s6a).
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1), NodeSpec("wind", 2))),), tmp_path / "buses", seed=5,
                burst=True)
    store = tmp_path / "store.sqlite3"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[store]\npath = "{store}"\n[queue]\ndeliver_interval_s = 5.0\n[clock]\nrequire_sync = "never"\n'
        '[spray]\nmode = { "dust-1" = "on" }\n'
        f'[[bus]]\nport = "{tmp_path / "buses" / "bus0"}"\n'
        '[[bus.node]]\nkind = "dust"\nunit_id = 1\n[[bus.node]]\nkind = "wind"\nunit_id = 2\n'
    )
    # A queue left by an earlier run, an hour ago, with a record the store never got.
    earlier = time.time() - 3600
    queue = DurableQueue(tmp_path / "store-queue.sqlite3", ["sqlite"], wall=lambda: earlier)
    queue.append([pm10(77.0, earlier)])
    queue.close()
    sitewatch = Path(sys.executable).with_name("sitewatch")
    with site:
        proc = subprocess.Popen([str(sitewatch), "run", "--config", str(config)], stderr=subprocess.PIPE, text=True)
        try:
            # Until the configured mode reached the coil and the queue holds two samples of each node.
            wait_until(lambda: site.node("bus0", 1).node.bank.coils[0] == 1, timeout=60)
            wait_until(lambda: queued_readings(tmp_path / "store-queue.sqlite3", "dust-1") >= 7 * 2, timeout=60)
            wait_until(lambda: queued_readings(tmp_path / "store-queue.sqlite3", "wind-2") >= 3 * 2, timeout=60)
            coil = site.node("bus0", 1).node.bank.coils[0]
            os.kill(proc.pid, signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM: stopping" in err and "stopped" in err
    assert coil == 1  # the configured manual mode, applied at start
    # deliver_interval_s = 5 means the store had not been written yet: the flush at stop did it.
    db = sqlite3.connect(tmp_path / "store-queue.sqlite3")
    try:
        (last,) = db.execute("SELECT max(id) FROM records").fetchone()
        (cursor,) = db.execute("SELECT position FROM cursors WHERE sink = 'sqlite'").fetchone()
    finally:
        db.close()
    assert last > 1 and cursor == last
    reader = SqliteStore(store)
    try:
        counts = reader.count_by_node()
        first = reader.readings()[0]
        outages = reader.query("SELECT start, \"end\" - start, reason FROM outages WHERE node = 'gateway'")
        actuations = reader.query('SELECT "on", mode, reason, result FROM actuations')
    finally:
        reader.close()
    assert (first.value, first.timestamp) == (77.0, earlier)  # delivery resumed where the last run left off
    assert counts.get("dust-1", 0) >= 7 * 2 and counts.get("wind-2", 0) >= 3 * 2, counts
    ((start, down, reason),) = outages
    assert start == earlier and reason == "gateway not running"
    assert isinstance(down, float) and 3600 <= down < 3700
    assert actuations == [(1, "on", "manual on by configuration", "ok")]


def queued_readings(queue: Path, node: str) -> int:
    """Readings of `node` the running gateway has queued (read beside it: the queue is in WAL mode)."""
    db = sqlite3.connect(f"file:{queue}?mode=ro", uri=True, timeout=30)
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM records WHERE kind = 'reading' AND node = ?", (node,)).fetchone()
    finally:
        db.close()
    return int(count)


async def test_a_failed_coil_write_is_retried_and_queued_once_per_change_of_result() -> None:
    no_reply = NoReply("timeout", "no reply within 0.5 s")
    owner = ScriptedOwner(no_reply, no_reply, rtu.WriteAck(0, 0xFF00), rtu.Bits((True,)))
    queued: list[Record] = []
    wall = [1000.0]
    actuator = CoilActuator(
        {"dust-1": (cast(BusPoller, owner), NodeConfig("dust-1", "dust", 1))}, queued.extend, lambda: wall[0], 10.0
    )
    command = SprayCommand("dust-1", "spray_relay", True, 1000.0, SprayMode.AUTO, "PM10 high", 200.0, 150.0)
    first = await actuator.apply(command)
    assert (first.result, first.attempt, first.reason) == ("timeout: no reply within 0.5 s", 1, "PM10 high")
    assert owner.requests == [rtu.write_coil(1, 0, True)]
    actuator.retry_due(1009.0)
    await actuator.drain()
    assert len(owner.requests) == 1  # not before retry_s
    wall[0] = 1010.0
    actuator.retry_due(wall[0])
    await actuator.drain()
    assert len(owner.requests) == 2 and queued == [first]  # the same failure again is not queued again
    wall[0] = 1020.0
    actuator.retry_due(wall[0])
    await actuator.drain()
    assert [(a.result, a.attempt) for a in of(queued, Actuation)] == [("timeout: no reply within 0.5 s", 1), ("ok", 3)]
    actuator.retry_due(2000.0)
    await actuator.drain()
    assert owner.requests[-1] == rtu.read_bits(1, rtu.READ_COILS, 0, 1)  # the write read back
    assert len(owner.requests) == 4  # confirmed: no more writes
    lost = await actuator.apply(dataclasses.replace(command, node="dust-9"))
    assert lost.result == "no bus owns node 'dust-9'" and lost in queued


def test_a_stage_that_fails_at_run_time_costs_no_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = site_config(tmp_path, tmp_path / "nowhere", extra='[[processing.processor]]\ntype = "units"\n'
                                                               'to = { pm10 = "mg/m3" }\n')
    gateway = Gateway(config)
    try:
        odd = [reading("pm10", 3.0, T0, node="dust-1", kind="dust", unit="ppm")]  # no ppm -> mg/m3 conversion
        with caplog.at_level(logging.ERROR):
            gateway._deliver(odd)
            gateway._deliver(odd)
        assert gateway.stage_errors == 2 and caplog.text.count("pipeline failed") == 1
        assert "no conversion from 'ppm' to 'mg/m3'" in caplog.text
        assert list(gateway.writer.waiting) == odd + odd  # queued as they came
    finally:
        gateway.queue.close()
        for sink in gateway.sinks:
            sink.close()


def test_readings_too_old_to_revise_are_logged_at_most_once_a_minute_with_every_one_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The drop log looks at the counts only when an aggregator counted something new (issue 13:
    # gathering them on every batch cost 7 % of the pipeline); what it says must not change.
    pipeline = build_pipeline(LimitsResolver(), revision_horizon_s=30.0)
    start = 1_790_000_000.0 - 1_790_000_000.0 % 3600

    def pm25(t: float, seq: int) -> Reading:
        return Reading("dust-1", "dust", "pm25", 30.0, "ug/m3", Quality.NORMAL, t, seq)

    for second in range(200):
        pipeline.feed([pm25(start + second, second + 1)], start + second + 0.1)
    pipeline.tick(start + 200)
    with caplog.at_level(logging.INFO, logger="gateway.pipeline"):
        pipeline.feed([pm25(start + 5, 6)], start + 200.5)  # 195 s old: past the 30 s horizon
        pipeline.feed([pm25(start + 6, 7)], start + 201.0)  # within the minute: counted, not logged yet
        pipeline.feed([pm25(start + 201, 202)], start + 230.0)  # nothing new dropped
        pipeline.feed([pm25(start + 202, 203)], start + 262.0)  # a minute on: the second drop is told
    dropped = [r.getMessage() for r in caplog.records if "older than the revision horizon" in r.getMessage()]
    assert dropped == [
        "dust-1: 1 readings older than the revision horizon dropped from aggregation (1 in all)",
        "dust-1: 1 readings older than the revision horizon dropped from aggregation (2 in all)",
    ]


def test_routing_readings_by_channel_changes_no_aggregate(monkeypatch: pytest.MonkeyPatch) -> None:
    # AggregateStage hands a reading only to the aggregators that take its channel (issue 13); the
    # others just observe it. Whatever the pipeline makes must be what feeding every aggregator made.
    import random

    from gateway.process.aggregate import WindowedAggregator

    start = 1_790_000_000.0 - 1_790_000_000.0 % 3600
    channels = {"dust": ("pm25", "pm10", "pm1", "temperature", "humidity"),
                "noise": ("laeq_1s", "lamax_1s", "lamin_1s"), "tilt": ("pitch", "roll", "slope_x", "slope_y"),
                "wind": ("wind_speed", "wind_dir", "wind_gust_3s")}
    rng = random.Random(7)
    batches: list[tuple[float, list[Reading]]] = []
    for second in range(1300):
        for kind, names in channels.items():
            if rng.random() < 0.03:
                continue  # a lost poll
            t = start + second - (40 if rng.random() < 0.01 else 0)  # now and then a late sample
            quality = Quality.COMMUNICATION_FAILURE if rng.random() < 0.01 else Quality.NORMAL
            batches.append((start + second + 0.2, [
                Reading(f"{kind}-1", kind, c, None if quality is not Quality.NORMAL else rng.uniform(0, 200),
                        "", quality, t, second + 1)
                for c in names
            ]))

    def run() -> list[Record]:
        pipeline = build_pipeline(LimitsResolver(), spray=SprayPlan())
        out: list[Record] = []
        for now, readings in batches:
            out.extend(pipeline.feed(readings, now))
            out.extend(pipeline.tick(now))
        return out

    routed = run()
    monkeypatch.setattr(WindowedAggregator, "accepted_channels", lambda self: None)  # every aggregator fed
    assert routed == run()
    assert sum(isinstance(r, Aggregate) for r in routed) > 100
