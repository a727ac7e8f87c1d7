"""Polls in quick succession handed to the pipeline together (BusPoller batch_s), on real bytes.

A bus polls its nodes one after the other; the readings of such a burst go to `deliver` in one call,
which costs the pipeline one pass instead of one per poll (issue 13). What must hold at the edges:
nothing held longer than batch_s (counted in polls, from the line's own pace, so that a busy host only
makes batches smaller), nothing left behind when the poller stops, and gaps and outages still after the
readings polled before them.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME
from gateway.acquire.outages import NodeOutage
from gateway.acquire.poller import BusConfig, BusPoller, NodeConfig, PollRecord
from gateway.model import Gap, Reading
from simulator.site import NodeSpec
from tests.gateway.acquire.test_backfill_bus import Rig, consecutive, simulated
from tests.gateway.acquire.test_bus_polling import run_until
from tests.gateway.acquire.test_silence_bus import make_clock, until

KINDS = ("dust", "wind", "tilt", "noise")
NODES = tuple(NodeSpec(kind, unit) for unit, kind in enumerate(KINDS, start=1))


def bus(port: str, baud: int, interval: float, timeout: float = 0.3) -> BusConfig:
    nodes = tuple(NodeConfig(f"{kind}-{unit}", kind, unit, interval) for unit, kind in enumerate(KINDS, start=1))
    return BusConfig("bus0", port, nodes, baud=baud, timeout=timeout, max_backoff=0.4)


def samples_in(batch: list[Reading]) -> set[tuple[str, int]]:
    """The polled samples a delivered batch holds: (node, sequence)."""
    return {(r.node, r.sequence) for r in batch if r.sequence}


def every_sample_once_in_order(batches: list[list[Reading]]) -> None:
    for node in (f"{kind}-{unit}" for unit, kind in enumerate(KINDS, start=1)):
        kind = KIND_BY_NAME[node.split("-")[0]]
        channels = [row[0] for row in regmap.MEASUREMENTS[kind]]
        readings = [r for batch in batches for r in batch if r.node == node and r.sequence]
        for channel in channels:
            sequences = [r.sequence for r in readings if r.channel == channel]
            assert consecutive(sequences), (node, channel, sequences)


async def test_the_nodes_polled_one_after_the_other_reach_the_pipeline_in_one_call(tmp_path: Path) -> None:
    batches: list[list[Reading]] = []
    trace: list[PollRecord] = []
    with simulated(tmp_path, *NODES, baud=19200) as (_, port):
        poller = BusPoller(bus(port, 19200, 1.0), batches.append, clock=make_clock(), trace=trace.append,
                           batch_s=5.0)
        await run_until(poller, lambda: len(batches) >= 3)
    # All four nodes are due at the start, so the first burst runs without a pause (one poll each; one that
    # fails is due again a second later): one call, with a sample of each node that answered. Later calls come
    # when the bus idles until the next poll.
    answered = {t.node for t in trace[:4] if t.outcome == "sample"}
    assert len({t.node for t in trace[:4]}) == 4 and answered
    assert {node for node, _ in samples_in(batches[0])} == answered, (trace[:4], samples_in(batches[0]))
    every_sample_once_in_order(batches)


async def test_a_batch_is_handed_over_before_it_would_outgrow_batch_s(tmp_path: Path) -> None:
    """At 9600 baud a poll takes at least 55 ms on the wire (an 8-byte request, 43 bytes and more back). With
    batch_s 80 ms a third poll cannot join a batch: before it, the batch is at least 55 ms old and would be 110
    ms old at the end of that poll on the wire. Judged after each poll only, it would take three; without the
    bound, a whole burst of four."""
    batches: list[list[Reading]] = []
    with simulated(tmp_path, *NODES, baud=9600) as (_, port):
        poller = BusPoller(bus(port, 9600, 0.5), batches.append, clock=make_clock(), batch_s=0.08)
        await run_until(poller, lambda: sum(len(samples_in(b)) for b in batches) >= 40)
    assert max(len(samples_in(b)) for b in batches) <= 2, [sorted(samples_in(b)) for b in batches]
    every_sample_once_in_order(batches)


async def test_what_a_busy_bus_batched_is_delivered_when_the_poller_stops(tmp_path: Path) -> None:
    """Nodes polled without a pause (the bus is never idle) and a batch_s longer than the run: everything
    polled goes to deliver when run() ends, not lost with the task."""
    batches: list[list[Reading]] = []
    trace: list[PollRecord] = []
    with simulated(tmp_path, *NODES, baud=19200) as (_, port):
        poller = BusPoller(bus(port, 19200, 0.01), batches.append, clock=make_clock(), trace=trace.append,
                           batch_s=600.0)
        await run_until(poller, lambda: sum(t.outcome == "sample" for t in trace) >= 12)
    sampled = sum(t.outcome == "sample" for t in trace)
    # One batch on an idle host; a host slow enough to back every node off at once idles the bus and hands
    # over early, but the tail still waits for the stop.
    assert sum(len(samples_in(b)) for b in batches) == sampled, (len(batches), sampled)
    every_sample_once_in_order(batches)


async def test_an_outage_comes_after_the_readings_polled_before_it(tmp_path: Path) -> None:
    """A node off the line for a second while the others keep the bus busy (and their readings batched): when
    its outage is reported, every sample polled before it has been delivered (the batch went first)."""
    delivered: list[Reading | NodeOutage] = []
    trace: list[PollRecord] = []
    checked: list[tuple[int, int]] = []  # (samples traced, samples delivered) when an outage came

    def on_outage(outages: list[NodeOutage]) -> None:
        traced = sum(t.outcome == "sample" for t in trace)
        checked.append((traced, len(samples_in([r for r in delivered if isinstance(r, Reading)]))))
        delivered.extend(outages)

    with simulated(tmp_path, *NODES, baud=19200) as (site, port):
        poller = BusPoller(bus(port, 19200, 0.01), delivered.extend, clock=make_clock(), trace=trace.append,
                           on_outage=on_outage, batch_s=600.0)
        line = site.running[0]
        everyone = list(line.nodes)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await until(lambda: sum(t.outcome == "sample" for t in trace) >= 8, 30.0, "samples before the cut")
        line.nodes = [s for s in everyone if s.node.unit_id != 2]  # wind-2 off the line
        await until(lambda: sum(t.node == "wind-2" and t.outcome == "timeout" for t in trace) >= 2, 30.0, "timeouts")
        await asyncio.sleep(1.0)
        line.nodes = everyone
        await until(lambda: any(isinstance(r, NodeOutage) and r.node == "wind-2" for r in delivered), 30.0,
                    "the outage")
        stop.set()
        await asyncio.wait_for(task, 10)
    outage = next(r for r in delivered if isinstance(r, NodeOutage) and r.node == "wind-2")
    assert outage.closed
    # Every traced poll's readings were made before its trace record, and an outage is reported within a poll,
    # before that poll's trace record: all the samples traced so far were delivered by then. (On a busy host
    # another node may have an outage of its own: the same holds for it.)
    assert checked and all(delivered_then >= traced for traced, delivered_then in checked), checked
    every_sample_once_in_order([[r for r in delivered if isinstance(r, Reading)]])


async def test_a_gap_found_by_a_poll_comes_after_the_readings_before_it(tmp_path: Path) -> None:
    """A node without a history ring misses samples while the bus is busy and its earlier readings wait in the
    batch: the poll that finds the jump in its sequence reports the gap, queued after them."""
    delivered: list[Reading | Gap] = []
    with simulated(tmp_path, *NODES, baud=19200) as (site, port):
        rig = Rig(site.node("bus0", 2), interval_ms=500)
        config = bus(port, 19200, 0.01)
        nodes = tuple(replace(n, history=False) if n.name == "wind-2" else n for n in config.nodes)
        poller = BusPoller(replace(config, nodes=nodes), delivered.extend, clock=make_clock(),
                           on_gap=delivered.extend, batch_s=600.0)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await until(lambda: poller.health["wind-2"].last_sequence >= 4, 30.0, "samples before")
        rig.mute = True  # it samples on, unheard
        missed_from = rig.node.seq + 1
        await until(lambda: rig.node.seq >= missed_from + 1, 30.0, "samples missed")
        rig.mute = False
        await until(lambda: any(isinstance(r, Gap) for r in delivered), 30.0, "the gap")
        stop.set()
        await asyncio.wait_for(task, 10)
    # (A host stalled for half a second may add a gap before it.)
    gap = next(g for g in delivered if isinstance(g, Gap) and g.node == "wind-2" and g.first_sequence >= missed_from)
    where = delivered.index(gap)
    before = [i for i, r in enumerate(delivered)
              if isinstance(r, Reading) and r.node == "wind-2" and 0 < r.sequence < gap.first_sequence]
    assert len({delivered[i].sequence for i in before}) >= 3, before
    assert max(before) < where, (where, before)
