"""The bus owner on real bytes: simulated firmware nodes on a pseudo-terminal, wire-time paced.

No mocks: faults are made the way they happen on a site, by changing the
simulated bus (a node removed from the line, a slow node, a reply corrupted
after the node computed its CRC, a node counter reset as a reboot resets it).
Buses run at 19200 baud to keep the tests short.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from firmware import regmap
from firmware.node import Node
from gateway.acquire.decode import KIND_BY_NAME
from gateway.acquire.health import MIN_SLACK, AdaptiveTimeout
from gateway.acquire.poller import BusConfig, BusPoller, NodeConfig, PollRecord
from gateway.acquire.timestamps import BUILD_TIME_FLOOR, Clock, ClockValidity
from gateway.model import Quality, Reading
from gateway.protocols import modbus_rtu_master as rtu
from simulator.bus import PtyBus, SimNode
from simulator.sensors import SimulatedSensor
from simulator.site import BusSpec, NodeSpec, SimClock, Site, physics_source
from tests.support.waiting import wait_until_async

BAUD = 19200


@contextmanager
def simulated(tmp_path: Path, *nodes: NodeSpec, speed: float = 1.0) -> Iterator[tuple[Site, str]]:
    with Site((BusSpec("bus0", nodes, baud=BAUD),), tmp_path / "buses", seed=5, speed=speed, burst=True) as site:
        yield site, str(tmp_path / "buses" / "bus0")


def sim_node(site: Site, unit: int) -> SimNode:
    bus: PtyBus = site.running[0]
    return next(s for s in bus.nodes if s.node.unit_id == unit)


def remove_from_line(site: Site, unit: int) -> None:
    bus: PtyBus = site.running[0]
    bus.nodes = [s for s in bus.nodes if s.node.unit_id != unit]


def config(port: str, *nodes: tuple[str, int, float], timeout: float = 0.3) -> BusConfig:
    return BusConfig(
        "bus0", port, tuple(NodeConfig(f"{kind}-{unit}", kind, unit, interval) for kind, unit, interval in nodes),
        baud=BAUD, timeout=timeout,
    )


async def run_for(
    poller: BusPoller, seconds: float, midway: Callable[[], None] | None = None, done: Callable[[], bool] | None = None
) -> None:
    """Run the poller for `seconds`, then on until `done` holds (what the test counts: a busy host polls less in a
    given time; the ceiling is generous, not an expectation)."""
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        if midway is None:
            await asyncio.sleep(seconds)
        else:
            await asyncio.sleep(seconds / 2)
            midway()
            await asyncio.sleep(seconds / 2)
        if done is not None:
            await wait_until_async(done, timeout=120.0)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def planned_end(record: PollRecord) -> float:
    """When a poll or probe was to give up the bus at the latest, as the scheduler sized it: from when it
    was chosen, its request on the wire, then its timeout. How late a busy host then sent it is not the
    schedule's doing."""
    return record.decided + rtu.wire_time(record.request_bytes, BAUD) + record.timeout


async def run_until(poller: BusPoller, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Run the poller until `condition` holds (what the test needs to judge, however busy the host)."""
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        await wait_until_async(condition, timeout=timeout)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def sent_times(records: list[PollRecord], node: str, after: float) -> list[float]:
    return [r.sent for r in records if r.node == node and r.sent >= after]


async def test_a_dead_node_does_not_delay_the_others(tmp_path: Path) -> None:
    """One of three nodes is off the line. For the two live ones, after a 1 s warm-up: their
    schedules do not drift (each due time one interval after the last), and no poll of theirs
    went out late because the bus was busy with the dead node: at a live poll's due time, the
    dead node's probe, if any, was over. A dead node polled with its full 0.3 s timeout would
    hold the bus across their due times. Judged on what held the bus, not on how late the sends
    were: on a loaded host the event loop itself is late, which says nothing about the schedule.
    """
    records: list[PollRecord] = []
    delivered: list[Reading] = []
    with simulated(tmp_path, NodeSpec("dust", 1), NodeSpec("wind", 2), NodeSpec("noise", 3)) as (site, port):
        remove_from_line(site, 3)
        bus = config(port, ("dust", 1, 0.2), ("wind", 2, 0.2), ("noise", 3, 0.2))
        # As a device without a history ring: its failed polls are value-less B readings (with one,
        # the backfill fills them in later: see test_silence_bus.py).
        bus = replace(bus, nodes=(*bus.nodes[:2], replace(bus.nodes[2], history=False)))
        poller = BusPoller(bus, delivered.extend, trace=records.append)
        await run_for(poller, 4.0)
    warm = records[0].sent + 1.0
    probes = [r for r in records if r.node == "noise-3"]
    for name in ("dust-1", "wind-2"):
        polls = [r for r in records if r.node == name and r.sent >= warm]
        assert len(polls) >= 13, (name, polls)
        for a, b in itertools.pairwise(polls):
            # One interval on, unless a poll ended after the next was due (a stalled host) or failed (a
            # reply a busy host held back past its timeout: the failure rules reschedule it).
            assert (b.due - a.due == pytest.approx(0.2, abs=1e-6) or a.completed > a.due + 0.2 <= b.due
                    or a.outcome == "timeout"), (a, b)
        for p in polls:
            # Judged on the bus time each probe was given when the scheduler chose it, not on when a
            # loaded host's event loop got round to sending or ending it. A probe sized to the gap
            # ends by the next due time; a poll with the full 0.3 s timeout would hold the bus ~0.2 s
            # past it.
            assert not [h for h in probes if h.decided <= p.due < planned_end(h) - 0.050], p
        assert poller.health[name].crc_errors == poller.health[name].framing_errors == 0
        assert poller.health[name].failures == poller.health[name].timeouts  # a busy host's late replies
    dead = poller.health["noise-3"]
    assert not dead.online and dead.answered == 0
    assert 3 <= dead.timeouts == dead.polls <= 8  # backing off: 20 polls would have been due
    # Every try of the dead node ended as a timeout, given at most the configured 0.3 s.
    assert all("timeout" in r.outcome and r.timeout <= 0.3 for r in records if r.node == "noise-3"), probes
    missing = [r for r in delivered if r.node == "noise-3"]
    assert len(missing) == 3 * dead.polls  # three channels per failed poll
    assert all(r.value is None and r.quality is Quality.COMMUNICATION_FAILURE for r in missing)


async def test_a_slow_node_gets_its_own_timeout_and_the_others_keep_their_interval(tmp_path: Path) -> None:
    records: list[PollRecord] = []
    with simulated(tmp_path, NodeSpec("dust", 1), NodeSpec("wind", 2), NodeSpec("tilt", 3)) as (site, port):
        sim_node(site, 3).turnaround = 0.080  # answers, but 80 ms late every time
        bus = config(port, ("dust", 1, 0.25), ("wind", 2, 0.25), ("tilt", 3, 0.25))
        poller = BusPoller(bus, lambda readings: None, trace=records.append)
        await run_until(poller, lambda: all(h.answered >= 8 for h in poller.health.values()))
    slow = poller.health["tilt-3"]
    # Every poll answered, but for a reply a busy host held back past the learned timeout (the
    # simulator's bus thread off the CPU; a UART would have had it on time): that is a timeout.
    assert slow.answered + slow.timeouts == slow.polls and slow.answered >= 8, slow
    slow_reply = rtu.wire_time(5 + 2 * regmap.input_count(regmap.KIND_TILT), BAUD) + 0.080
    # Learned from its own replies, never below them, within the 0.3 s bound. Judged on the timeout
    # each poll was given: deterministic, as no reply arrives before its wire time and turnaround.
    given = {name: [r.timeout for r in records if r.node == name and r.outcome != "timeout"] for name in
             ("dust-1", "wind-2", "tilt-3")}
    assert all(slow_reply < t <= 0.3 for t in given["tilt-3"][1:]), given["tilt-3"]
    # Each node's timeout is learned from its own replies only: replaying the rule over that node's
    # response times (from its own trace) gives the timeout it ended with. A timeout shared with the
    # slow node, or fed by its replies, would not. How long the replies took is the host's business.
    for name in ("dust-1", "wind-2", "tilt-3"):
        own = [r for r in records if r.node == name]
        replay = AdaptiveTimeout(floor=rtu.wire_time(own[0].reply_bytes, BAUD) + MIN_SLACK, ceiling=0.3)
        for r in own:
            if r.outcome in ("sample", "no new sample"):
                replay.observe(r.completed - (r.sent + rtu.wire_time(r.request_bytes, BAUD)))
            elif r.outcome == "timeout":
                replay.expired()
        assert poller.health[name].timeout == pytest.approx(replay.current, abs=1e-9), (name, given[name])
    warm = records[0].sent + 0.5
    for name in ("dust-1", "wind-2"):
        polls = [r for r in records if r.node == name and r.sent >= warm]
        for a, b in itertools.pairwise(polls):
            # The schedule does not drift: one interval on, unless a poll ended after the next was due.
            assert b.due - a.due == pytest.approx(0.25, abs=1e-6) or a.completed > a.due + 0.25 <= b.due, (a, b)
        # A poll that waited let only polls due before it go first (the slow node's included, whose
        # whole transaction it may wait for once). Judged on the schedule, not on how late the
        # sends were, which on a loaded host is the event loop's lateness.
        for p in polls:
            jumped = [h for h in records if p.due < h.sent < p.sent and h.due > p.due]
            assert not jumped, (p, jumped)


async def test_replies_complete_on_their_length_not_on_a_timeout(tmp_path: Path) -> None:
    records: list[PollRecord] = []
    with simulated(tmp_path, NodeSpec("dust", 1)) as (_, port):
        poller = BusPoller(config(port, ("dust", 1, 0.1)), lambda readings: None, trace=records.append)
        await run_for(poller, 1.0)
    health = poller.health["dust-1"]
    reply = rtu.wire_time(5 + 2 * regmap.input_count(regmap.KIND_DUST), BAUD) + 0.002  # + turnaround
    assert reply <= health.mean_latency, health  # never before the wire and the turnaround
    # Waiting for line silence would add 20 ms (the garble gap) to every reply. Judged on the quickest
    # reply: a busy host delays some replies by any amount, but not every one of them.
    answered = [r.completed - (r.sent + rtu.wire_time(r.request_bytes, BAUD)) for r in records if r.outcome in
                ("sample", "no new sample")]
    assert reply <= min(answered) < reply + 0.008, sorted(answered)
    # Every poll answered, but for one a busy host held back past the learned timeout (a timeout).
    assert health.answered + health.timeouts == health.polls and health.answered >= 8, health


async def test_crc_errors_and_garbled_replies_are_counted_and_the_loop_goes_on(tmp_path: Path) -> None:
    records: list[PollRecord] = []
    delivered: list[Reading] = []
    damaged = {"crc": 0, "garbled": 0}
    with simulated(tmp_path, NodeSpec("dust", 1), NodeSpec("wind", 2)) as (site, port):
        dust, wind = site.node("bus0", 1).node, site.node("bus0", 2).node
        dust_handle, wind_handle = dust.handle, wind.handle
        answered = [0, 0]

        def bad_crc(frame: bytes, length: int, now_ms: int) -> int:
            n: int = dust_handle(frame, length, now_ms)
            answered[0] += 1 if n else 0
            if n and answered[0] % 2 == 0:  # every other reply: a bit flips on the line
                dust.slave.tx[n - 3] ^= 0x10
                damaged["crc"] += 1
            return n

        def garbled(frame: bytes, length: int, now_ms: int) -> int:
            n: int = wind_handle(frame, length, now_ms)
            answered[1] += 1 if n else 0
            if n and answered[1] % 3 == 0:  # the function byte itself is hit: length unknown
                wind.slave.tx[1] ^= 0x01
                damaged["garbled"] += 1
            return n

        dust.handle = bad_crc  # type: ignore[method-assign]
        wind.handle = garbled  # type: ignore[method-assign]
        bus = config(port, ("dust", 1, 0.1), ("wind", 2, 0.1))
        poller = BusPoller(bus, delivered.extend, trace=records.append)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await wait_until_async(lambda: damaged["crc"] >= 5 and damaged["garbled"] >= 3, timeout=60)
        # The line is clean again; a clean reply from each node after that means no damaged reply is
        # still in flight when the poller stops (stopping mid-reply would leave one uncounted).
        dust.handle, wind.handle = dust_handle, wind_handle  # type: ignore[method-assign]
        clean_from = {name: poller.health[name].answered for name in ("dust-1", "wind-2")}
        await wait_until_async(lambda: all(poller.health[n].answered > a for n, a in clean_from.items()), timeout=60)
        stop.set()
        await asyncio.wait_for(task, 5)
    dust_health, wind_health = poller.health["dust-1"], poller.health["wind-2"]
    assert damaged["crc"] >= 5 and damaged["garbled"] >= 3
    # Every damaged reply is a CRC error, unless a busy host held it back past the node's learned
    # (short) timeout: then it is that timeout. A clean reply is never a CRC error.
    assert dust_health.crc_errors <= damaged["crc"] <= dust_health.crc_errors + dust_health.timeouts
    assert wind_health.crc_errors <= damaged["garbled"] <= wind_health.crc_errors + wind_health.timeouts
    assert dust_health.online and dust_health.success_rate < 0.6
    # A bad reply costs its own wire time (plus line silence for a garbled one), never the 0.3 s timeout.
    bad = [r for r in records if r.outcome == "crc"]
    assert len(bad) == dust_health.crc_errors + wind_health.crc_errors
    assert max(r.completed - r.sent for r in bad) < 0.1
    # The samples behind the damaged replies are fetched from the history rings: no value-less rows.
    assert [r for r in delivered if r.value is None] == []
    assert any(r.quality is Quality.NORMAL and r.node == "dust-1" for r in delivered)


async def test_a_node_reboot_is_detected_from_its_sequence_going_back(tmp_path: Path) -> None:
    delivered: list[Reading] = []
    with simulated(tmp_path, NodeSpec("wind", 4), speed=5.0) as (site, port):  # a sample every 0.2 s
        node = site.node("bus0", 4).node

        def reboot() -> None:
            node.seq = 0  # what a restart does to the counter

        poller = BusPoller(config(port, ("wind", 4, 0.1)), delivered.extend)
        await run_for(poller, 2.0, midway=reboot)
    health = poller.health["wind-4"]
    assert health.reboots == 1
    sequences = [r.sequence for r in delivered if r.channel == "wind_speed"]
    restart = next(i for i in range(1, len(sequences)) if sequences[i] < sequences[i - 1])
    assert sequences[restart] <= 2 and sequences[restart - 1] >= 4
    # Before and after, every new sample was delivered exactly once, none twice.
    assert sequences[:restart] == sorted(set(sequences[:restart]))
    assert sequences[restart:] == sorted(set(sequences[restart:]))


async def test_readings_wait_for_a_valid_clock_and_carry_their_sampling_time(tmp_path: Path) -> None:
    """A Pi boots at 1970; NTP sets the time later. No reading may be stored with the boot-time
    clock, and every reading, held or not, is stamped with when the node took its sample."""
    offset = [0.0]

    def wall() -> float:
        return time.time() + offset[0]

    offset[0] = 1000.0 - time.time()  # the wall clock reads 1970-01-01T00:16:40
    clock = Clock(wall=wall, valid=ClockValidity(require_sync=False, wall=wall))
    batches: list[tuple[float, list[Reading]]] = []
    sampled: dict[int, float] = {}
    with simulated(tmp_path, NodeSpec("dust", 1)) as (site, port):
        sim = sim_node(site, 1)
        remember = sim.on_sample

        def on_sample(s: SimNode, now_ms: int) -> None:
            sampled[s.node.seq] = site.clock.start_time + now_ms / 1000
            if remember is not None:
                remember(s, now_ms)

        sim.on_sample = on_sample

        synced_at = [0.0]

        def ntp() -> None:
            offset[0] = 0.0
            synced_at[0] = time.time()

        # 0.3 s does not divide the 1 s sample interval: polls find samples of varying age (0 .. 0.3 s).
        records: list[PollRecord] = []
        poller = BusPoller(config(port, ("dust", 1, 0.3)), lambda r: batches.append((time.time(), r)), clock=clock,
                           trace=records.append)
        await run_for(poller, 2.6, midway=ntp)
        # How late this busy host let the simulated node hear a request: the node reckons a sample's age
        # from then, so the stamp may be that much early (a real node hears it on time).
        seen = list(site.running[0].requests_seen)
        host_late = max((heard - r.sent for r, heard in zip(sorted(records, key=lambda r: r.sent), seen,
                                                             strict=False)), default=0.0)
    readings = [r for _, batch in batches for r in batch]
    assert all(r.timestamp > BUILD_TIME_FLOOR for r in readings)
    sequences = sorted({r.sequence for r in readings})
    assert sequences == list(range(sequences[0], sequences[-1] + 1)) and len(sequences) >= 3  # none lost
    assert batches[0][0] >= synced_at[0]  # nothing left the poller while the clock read 1970
    # Sample 1 was taken when the site started, before the hook was in place.
    timed = [r for r in readings if r.sequence in sampled]
    assert len({r.sequence for r in timed}) >= len(sequences) - 1
    assert any(sampled[r.sequence] < synced_at[0] for r in timed)  # held, then stamped right
    for r in timed:
        # Without the sample-age correction the error would reach the poll interval (0.3 s).
        assert abs(r.timestamp - sampled[r.sequence]) < 0.010 + max(0.0, host_late), (r, sampled[r.sequence], host_late)
    assert poller.stamper.held_count == 0


async def test_quality_flags_and_writes_through_the_owner(tmp_path: Path) -> None:
    delivered: list[Reading] = []
    with simulated(tmp_path, NodeSpec("dust", 1), NodeSpec("wind", 2), NodeSpec("noise", 3)) as (site, port):
        bus = config(port, ("dust", 1, 0.1), ("wind", 2, 0.1), ("noise", 3, 0.1))
        # The wind node is configured as a tilt node: it has fewer input registers than a tilt
        # read asks for, so the node answers with exception 2 (illegal data address), and its
        # node_kind register says wind.
        bus = BusConfig(bus.name, port, (bus.nodes[0], NodeConfig("wind-2", "tilt", 2, 0.1), bus.nodes[2]),
                        baud=BAUD, timeout=0.3)
        poller = BusPoller(bus, delivered.extend)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await asyncio.sleep(1.2)
        site.node("bus0", 3).sensor.present = False  # the noise module stops answering its node
        relay = regmap.find(regmap.COILS[regmap.KIND_DUST], "spray_relay")[1]
        written = await poller.execute(rtu.write_coil(1, relay, True))
        assert written.outcome == rtu.WriteAck(relay, 0xFF00)
        assert site.node("bus0", 1).node.bank.coils[relay] == 1
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.wait_for(task, 5)
    dust = [r for r in delivered if r.node == "dust-1"]
    assert dust and all(r.quality is Quality.NORMAL and r.value is not None for r in dust)
    # A configuration fault, named as one (tests/gateway/acquire/test_kind_mismatch.py), not D readings of
    # a tilt node: the device is fine.
    assert [r for r in delivered if r.node == "wind-2"] == []
    assert poller.health["wind-2"].kind_mismatch == "wind"
    assert poller.health["wind-2"].exceptions >= 5 and poller.health["wind-2"].online
    noise = [r for r in delivered if r.node == "noise-3"]
    good = [r for r in noise if r.quality is Quality.NORMAL]
    faulty = [r for r in noise if r.quality is Quality.DEVICE_FAULT]
    assert good and faulty and noise.index(faulty[0]) > noise.index(good[-1])
    # After the sensor failed, its channels read "no value", never the last good one.
    assert all(r.value is None for r in faulty)
    assert len({r.sequence for r in faulty}) >= 1


async def test_a_missing_port_is_counted_not_raised_and_a_port_has_one_owner(tmp_path: Path) -> None:
    delivered: list[Reading] = []
    missing = BusPoller(config(str(tmp_path / "no-such-port"), ("dust", 1, 0.1)), delivered.extend)
    with simulated(tmp_path, NodeSpec("dust", 1)) as (_, port):
        owner = BusPoller(config(port, ("dust", 1, 0.1)), lambda r: None)
        intruder = BusPoller(config(port, ("dust", 1, 0.1)), lambda r: None)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(p.run(stop)) for p in (missing, owner)]
        await asyncio.sleep(0.3)
        tasks.append(asyncio.create_task(intruder.run(stop)))
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
    # Tried at first, then backing off like any node that does not answer.
    assert missing.health["dust-1"].io_errors >= 3 and missing.health["dust-1"].answered == 0
    # No readings: a node with a history ring is backfilled once it can be reached; the outage says so.
    assert delivered == [] and missing.health["dust-1"].outage == "B: io"
    assert owner.health["dust-1"].answered >= 5
    assert intruder.health["dust-1"].answered == 0 and intruder.health["dust-1"].io_errors >= 1
    assert intruder.link.stats.open_failures >= 1


# -- Modbus TCP, and several buses at once ---------------------------------------------------


class TcpNodes:
    """A Modbus TCP gateway in front of firmware nodes (MBAP header around the node's own PDU)."""

    def __init__(self, nodes: dict[int, Node], clock: SimClock) -> None:
        self.nodes = nodes
        self.clock = clock

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                tid, _, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
                pdu = await reader.readexactly(length - 1)
                node = self.nodes.get(unit)
                if node is None:
                    reply = bytes((pdu[0] | 0x80, 11))  # gateway: target device failed to respond
                else:
                    now = self.clock.ms()
                    if node.sample_due(now):
                        node.sample(now)
                        node.sensor.remember(node.seq)
                    frame = rtu.with_crc(bytes((unit,)) + pdu)
                    n = node.handle(frame, len(frame), now)
                    reply = bytes(node.slave.tx[1 : n - 2])
                writer.write(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def test_rtu_and_tcp_buses_are_polled_concurrently(tmp_path: Path) -> None:
    clock = SimClock()
    nodes = {}
    for unit, kind in ((7, "dust"), (8, "tilt")):
        code = KIND_BY_NAME[kind]
        sensor = SimulatedSensor(code, physics_source(code, unit, 1), clock.seconds)
        nodes[unit] = Node(code, sensor, clock.ms(), unit_id=unit)
    server = await asyncio.start_server(TcpNodes(nodes, clock).serve, "127.0.0.1", 0)
    tcp_port = server.sockets[0].getsockname()[1]
    delivered: list[Reading] = []
    tcp = BusConfig(
        "tcp0", "", (NodeConfig("dust-7", "dust", 7, 0.2), NodeConfig("tilt-8", "tilt", 8, 0.2),
                     NodeConfig("wind-9", "wind", 9, 0.2)),
        transport="tcp", host="127.0.0.1", tcp_port=tcp_port, timeout=0.3,
    )
    records: list[PollRecord] = []
    with simulated(tmp_path, NodeSpec("dust", 1)) as (_, port):
        pollers = [BusPoller(tcp, delivered.extend, trace=records.append),
                   BusPoller(config(port, ("dust", 1, 0.2)), delivered.extend, trace=records.append)]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(p.run(stop)) for p in pollers]
        await asyncio.sleep(2.0)
        # ... and on until each checked node has the 9 answers counted below (a busy host's timeouts take some).
        await wait_until_async(lambda: pollers[0].health["dust-7"].answered >= 9
                               and pollers[1].health["dust-1"].answered >= 9, timeout=60.0)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
    server.close()
    await server.wait_closed()
    tcp_health, rtu_health = pollers[0].health, pollers[1].health
    # Every poll answered, but for replies a busy host held back past a node's learned timeout (the
    # simulator's thread or this event loop off the CPU): those are timeouts, never another failure.
    for health in (tcp_health["dust-7"], rtu_health["dust-1"]):
        assert health.answered + health.timeouts == health.polls and health.answered >= 9, health
    assert tcp_health["tilt-8"].new_samples >= 1
    for name in ("dust-7", "tilt-8", "dust-1"):
        # Each bus keeps its own schedule: one interval from due time to due time (judged on the
        # schedule; when a busy host let the polls out is its own business).
        due = [r.due for r in records if r.node == name]
        assert statistics.median(b - a for a, b in itertools.pairwise(due[1:])) == pytest.approx(0.2, abs=1e-6)
    tilt = [r for r in delivered if r.node == "tilt-8"]
    truth = nodes[8].sensor.truth
    scale = {row[0]: row[3] for row in regmap.MEASUREMENTS[regmap.KIND_TILT]}
    for r in tilt:
        assert r.quality is Quality.NORMAL and r.value is not None
        assert abs(r.value - truth[r.sequence][r.channel]) <= 0.5 / scale[r.channel] + 1e-9
    # The gateway answered for the missing unit: exception 11, a communication failure (B): an outage,
    # and no value-less rows (a node with a history ring is backfilled once it can be reached).
    assert [r for r in delivered if r.node == "wind-9"] == []
    assert tcp_health["wind-9"].exceptions >= 1 and tcp_health["wind-9"].outage == "B: exception 11"
