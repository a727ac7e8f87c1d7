"""The bus owner keeps each node's scheduling Slot between decisions (issue 13: CPU per poll).

A kept Slot must be exactly the one rebuilt from the node's state at that moment, at every
decision, through polls, failures, backoff, probes and a node that comes back: otherwise the
schedule would change. Checked on a simulated bus by wrapping the scheduler's `choose`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.acquire.health import Poll, Probe, Slot, Wait, choose
from gateway.acquire.poller import BusPoller
from gateway.model import Reading
from simulator.bus import PtyBus
from simulator.site import NodeSpec
from tests.gateway.acquire.test_bus_polling import config, simulated
from tests.support.waiting import wait_until_async


def rebuilt(poller: BusPoller) -> list[Slot]:
    """Every node's Slot from its state now, leaving what the poller keeps as it was."""
    slots = []
    for node in poller._nodes:
        kept = node.slot
        slots.append(poller._slot_of(node))
        node.slot = kept
    return slots


async def test_kept_slots_equal_rebuilt_ones_at_every_decision(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    decisions: list[Poll | Probe | Wait] = []
    differences: list[tuple[list[Slot], list[Slot]]] = []
    poller: BusPoller | None = None

    def checked(slots: list[Slot], now: float, starve_after: float) -> Poll | Probe | Wait:
        assert poller is not None
        fresh = rebuilt(poller)
        if slots != fresh:
            differences.append((slots, fresh))
        decision = choose(slots, now, starve_after)
        decisions.append(decision)
        return decision

    monkeypatch.setattr("gateway.acquire.poller.choose", checked)
    delivered: list[Reading] = []
    with simulated(tmp_path, NodeSpec("dust", 1), NodeSpec("wind", 2), NodeSpec("noise", 3)) as (site, port):
        bus = site.running[0]
        assert isinstance(bus, PtyBus)
        poller = BusPoller(config(port, ("dust", 1, 0.2), ("wind", 2, 0.2), ("noise", 3, 0.2)), delivered.extend)
        stop = asyncio.Event()
        running = asyncio.create_task(poller.run(stop))
        try:
            noise = poller.health["noise-3"]
            await wait_until_async(lambda: noise.answered >= 2, timeout=30.0)
            away = [s for s in bus.nodes if s.node.unit_id == 3]
            bus.nodes = [s for s in bus.nodes if s.node.unit_id != 3]
            # Off the line: it fails, turns suspect, backs off and is probed in the gaps.
            await wait_until_async(lambda: not noise.online and noise.probes >= 2, timeout=60.0,
                                   detail=lambda: noise)
            bus.nodes = [*bus.nodes, *away]
            # Back: a probe is answered, the node is polled at once and reliable again.
            await wait_until_async(lambda: noise.probes_answered >= 1 and noise.consecutive_failures == 0,
                                   timeout=60.0, detail=lambda: noise)
            poller.set_interval(0.3, "dust-1")
            polls = poller.health["dust-1"].polls
            await wait_until_async(lambda: poller.health["dust-1"].polls >= polls + 3, timeout=30.0)
        finally:
            stop.set()
            await asyncio.wait_for(running, 10)
    assert any(isinstance(d, Probe) for d in decisions)
    assert sum(isinstance(d, Poll) for d in decisions) >= 20
    assert not differences, differences[:3]
