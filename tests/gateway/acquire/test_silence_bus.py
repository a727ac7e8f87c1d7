"""Silent, stale and revived nodes on real bytes: simulated firmware nodes on a pseudo-terminal.

Faults are made the way they happen on a site: a node taken off the line (and put back), a
node whose sampling loop stalls while its UART keeps answering. Waits are on conditions with
generous deadlines; bounds on durations are about the schedule (a probe a second), and the
old schedule misses them by several seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from gateway.acquire.outages import STALE_REASON, NodeOutage
from gateway.acquire.poller import BusPoller, PollRecord
from gateway.acquire.timestamps import BUILD_TIME_FLOOR, Clock
from gateway.model import Reading
from gateway.protocols import modbus_rtu_master as rtu
from simulator.bus import PtyBus
from simulator.site import NodeSpec
from tests.gateway.acquire.test_bus_polling import (
    BAUD,
    config,
    remove_from_line,
    run_for,
    sent_times,
    sim_node,
    simulated,
)

# Wall time = this + time.monotonic(): outages (reported in wall time) convert back exactly.
OFFSET = BUILD_TIME_FLOOR + 1e6


def make_clock() -> Clock:
    return Clock(wall=lambda: OFFSET + time.monotonic(), mono=time.monotonic, valid=lambda: True)


async def until(condition: Callable[[], bool], deadline: float, what: str) -> float:
    """Wait until condition holds (checked every 10 ms); returns when. Fails after deadline seconds."""
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"{what}: not within {deadline} s"
        await asyncio.sleep(0.01)
    return time.monotonic()


async def test_three_dead_nodes_are_probed_without_slowing_the_live_ones(tmp_path: Path) -> None:
    """Two live nodes every 0.2 s, three dead ones probed. The live ones keep their cadence (polls sent
    at their due time), and no probe runs into a live node's due time: each is sized to end before the
    next live poll is due."""
    records: list[PollRecord] = []
    delivered: list[Reading] = []
    nodes = (NodeSpec("dust", 1), NodeSpec("wind", 2), NodeSpec("noise", 3), NodeSpec("tilt", 4), NodeSpec("dust", 5))
    with simulated(tmp_path, *nodes) as (site, port):
        for unit in (3, 4, 5):
            remove_from_line(site, unit)
        bus = config(port, ("dust", 1, 0.2), ("wind", 2, 0.2), ("noise", 3, 0.2), ("tilt", 4, 0.2), ("dust", 5, 0.2))
        poller = BusPoller(bus, delivered.extend, trace=records.append)

        def enough() -> bool:  # 26 polls of each live node after the warm-up: on a busy host 8 s may not hold them
            return bool(records) and all(len(sent_times(records, n, records[0].sent + 2.0)) >= 26
                                         for n in ("dust-1", "wind-2"))

        await run_for(poller, 8.0, done=enough)
    warm = records[0].sent + 2.0  # the dead nodes' first (fair, full-timeout) tries are over
    live = [r for r in records if r.node in ("dust-1", "wind-2") and r.sent >= warm]
    for name in ("dust-1", "wind-2"):
        sent = sent_times(records, name, warm)
        gaps = [b - a for a, b in itertools.pairwise(sent)]
        assert len(gaps) >= 25, (name, gaps)
        mine = [r for r in live if r.node == name]
        # The cadence, on the schedule's due times (drift-free: the next is due an interval after the last
        # one's due time, unless that poll ended later still). A probe that took live nodes' time would delay
        # their polls by its 55 ms timeout again and again. Not on the gaps between sends: a loaded host
        # stalls the event loop now and then, and one late send makes two gaps wrong.
        dues = sorted(r.due for r in mine)
        due_gaps = [b - a for a, b in itertools.pairwise(dues)]
        assert abs(statistics.median(due_gaps) - 0.2) <= 0.001, (name, due_gaps)
        # Typically sent at its due time (at most the other live node's poll first); what held the bus
        # at a due time is judged on the probes' plans below, the host's stalls are not the schedule's.
        lateness = [r.sent - r.due for r in mine]
        assert statistics.median(lateness) <= 0.050, (name, [round(x, 3) for x in lateness])
        # Every poll answered, but for replies a loaded host held back past the learned timeout (the
        # simulated bus thread off the CPU): those are timeouts, never a damaged or garbled frame.
        health = poller.health[name]
        assert health.failures == health.timeouts and health.crc_errors == health.framing_errors == 0, health
    # Each probe was sized, when the scheduler chose it, to end before the next live poll was due: judged
    # on that plan (its request on the wire, then its timeout), not on when a loaded host ran it.
    probes = [r for r in records if r.outcome.startswith("probe") and r.sent >= warm]
    for probe in probes:
        later = [r.due for r in live if r.due > probe.decided]
        planned_end = probe.decided + rtu.wire_time(probe.request_bytes, BAUD) + probe.timeout
        assert not later or planned_end <= min(later) + 0.001, (probe, min(later))
    for name in ("noise-3", "tilt-4", "dust-5"):
        dead = poller.health[name]
        assert dead.answered == 0 and dead.probes >= 2 and dead.probes_answered == 0, (name, dead)
        mine = [r for r in records if r.node == name and r.outcome.startswith("probe")]
        assert len(mine) == dead.probes and all(r.timeout < 0.1 for r in mine)
    # No value-less readings: the dead nodes have history rings; their outages say what happened.
    assert [r for r in delivered if r.node in ("noise-3", "tilt-4", "dust-5")] == []


async def test_a_node_back_on_the_line_is_live_within_seconds_and_its_outage_spans_the_silence(
    tmp_path: Path,
) -> None:
    """Off the line for 7 s: the old backoff (0.2 s doubling to 60 s) would next poll it ~5.5 s after its return."""
    outages: list[NodeOutage] = []
    delivered: list[Reading] = []
    with simulated(tmp_path, NodeSpec("dust", 1), NodeSpec("wind", 2)) as (site, port):
        bus: PtyBus = site.running[0]
        wind = sim_node(site, 2)
        poller = BusPoller(
            config(port, ("dust", 1, 0.2), ("wind", 2, 0.2)), delivered.extend, clock=make_clock(),
            on_outage=outages.extend,
        )
        health = poller.health["wind-2"]
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        try:
            await until(lambda: health.new_samples >= 3, 10.0, "wind-2 answering")
            removed = time.monotonic()
            remove_from_line(site, 2)
            await until(lambda: not health.online, 10.0, "wind-2 offline")
            await asyncio.sleep(max(0.0, removed + 7.0 - time.monotonic()))  # the length of the fault
            back = time.monotonic()
            bus.nodes.append(wind)
            live = await until(lambda: health.consecutive_failures == 0, 30.0, "wind-2 answering again")
            await until(lambda: any(o.node == "wind-2" for o in outages), 10.0, "the outage record")
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
    assert live - back <= 2.5  # a probe a second, in the bus's idle time
    # (The simulator's catch-up of the returning node's samples can delay one reply of dust-1.)
    # The outage of the 7 s off the line (a busy host's late replies may have added a short one).
    (outage,) = [o for o in outages if o.node == "wind-2" and o.start - OFFSET <= back <= o.end - OFFSET + 0.05]
    start, end = outage.start - OFFSET, outage.end - OFFSET
    assert outage.node == "wind-2" and outage.closed and outage.reason == "B: timeout"
    assert removed - 1.0 <= start <= removed  # its last answer (polled every 0.2 s)
    # Its first answer again (a request already on the wire when it was put back may be the one).
    assert back - 0.05 <= end <= live + 0.01
    wind_readings = [r for r in delivered if r.node == "wind-2"]
    assert wind_readings and all(r.value is not None for r in wind_readings)  # never "no value" rows


async def test_a_node_whose_sequence_stops_is_stale_unhealthy_and_gets_an_outage(tmp_path: Path) -> None:
    """The stale outage starts where the gateway heard the node's last new sample: judged on the gateway's
    trace (the poll that brought it) and the simulator's own sampling times, not on when the test froze the
    node (a sample taken, or a poll made, on a busy host around that moment is no fault of the gateway)."""
    outages: list[NodeOutage] = []
    records: list[PollRecord] = []
    sampled: list[tuple[int, float]] = []  # (0: before the freeze, 1: after, monotonic time) of each real sample
    phase = [0]
    with simulated(tmp_path, NodeSpec("dust", 1)) as (site, port):
        node = sim_node(site, 1).node
        sample = node.sample

        def recording(now_ms: int) -> None:  # the simulator's thread: stamped before the sample is visible
            sampled.append((phase[0], time.monotonic()))
            sample(now_ms)

        def stalled(now_ms: int) -> None:  # the sampling loop hangs; the UART interrupt still answers
            node.next_sample_ms = now_ms + 1000

        node.sample = recording
        poller = BusPoller(config(port, ("dust", 1, 0.2)), lambda readings: None, clock=make_clock(),
                           on_outage=outages.extend, trace=records.append)
        health = poller.health["dust-1"]
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        try:
            await until(lambda: health.new_samples >= 4, 30.0, "samples")
            node.sample = stalled
            # Stale after STALE_SAMPLES of the node's sample periods as the gateway learned them (up at once: a
            # simulator thread kept off the CPU samples late, and a longer period is learned): 5 s on an idle host.
            watch = poller._nodes[0].watch
            await until(lambda: health.stale, 30.0 + watch.stale_after, "stale")
            assert health.online and not health.healthy
            assert health.outage == STALE_REASON and [o for o in outages if o.reason == STALE_REASON] == []
            phase[0] = 1
            node.sample = recording
            resumed = time.monotonic()
            await until(lambda: not health.stale, 30.0, "sampling again")
            assert health.healthy
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
    # (A reply damaged on a loaded host's pty is a short outage of its own: not counted here.)
    (outage,) = [o for o in outages if o.reason == STALE_REASON]
    assert outage.reason == STALE_REASON and outage.closed and outage.missed >= 1
    start, end = outage.start - OFFSET, outage.end - OFFSET
    fresh = [r for r in records if r.outcome == "sample"]
    # Polls are one at a time: the first one that brought a new sample after the freeze ends the outage...
    closing = next(i for i, r in enumerate(fresh) if r.completed >= end - 0.001)
    assert fresh[closing].sent - 0.001 <= end and end >= resumed
    # ... and it starts at the one before: the last new sample the gateway heard before the node froze,
    last = fresh[closing - 1]
    assert last.sent - 0.001 <= start <= last.completed + 0.001, (start, last)
    # which was the node's last sample before the freeze (taken before that poll's reply was complete).
    assert max(t for p, t in sampled if p == 0) <= last.completed
