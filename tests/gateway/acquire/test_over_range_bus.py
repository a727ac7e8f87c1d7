"""Over range on real bytes: a PM sensor saturated on PM10 only, polled live and backfilled after an outage.

The simulated dust node's over_range fault holds pm10 at its range limit (1000 ug/m3) and sets the sensor's
out_of_range bit, as a saturated PMS5003 does; PM2.5 and PM1 keep the quiet site's values. The gateway must
flag pm10 T and the other channels N, for the samples it polled and for those it fetched from the node's
history after the node was deaf for a while (gateway/acquire/decode.py, one decode for both).
"""

from __future__ import annotations

from pathlib import Path

from gateway.acquire.poller import BusPoller
from gateway.model import Gap, Quality, Reading
from simulator.faults import Fault, FaultKind, FaultPlan
from simulator.site import BusSpec, NodeSpec, Site
from tests.gateway.acquire.test_backfill_bus import BAUD, Rig, config, run, sequences_of
from tests.support.waiting import wait_until


async def test_pm10_saturated_is_t_and_pm25_n_live_and_backfilled(tmp_path: Path) -> None:
    delivered: list[Reading | Gap] = []
    faults = FaultPlan([Fault(FaultKind.OVER_RANGE, "bus0", 0.0, unit_id=1, channel="pm10")])
    with Site((BusSpec("bus0", (NodeSpec("dust", 1),), baud=BAUD),), tmp_path / "buses", seed=11, burst=True,
              faults=faults) as site:
        wait_until(lambda: all(n.sim.booted for n in site.nodes), timeout=10.0, interval=0.002)
        dust = Rig(site.node("bus0", 1))
        poller = BusPoller(config(str(tmp_path / "buses" / "bus0"), ("dust", 1, 0.1)), delivered.extend,
                           on_gap=delivered.extend)
        deaf: list[int] = []  # the node's sequence when it went deaf and when it heard again

        def cut() -> None:
            dust.mute = True
            deaf.append(dust.node.seq)

        def mend() -> None:
            dust.mute = False
            deaf.append(dust.node.seq)

        def caught_up() -> bool:
            got = sequences_of(delivered, "dust-1")
            return len(deaf) == 2 and bool(got) and got[-1] >= deaf[1] + 5

        await run(poller, [(1.0, cut), (2.6, mend)], until=3.5, done=caught_up)
    assert poller.backfill["dust-1"].fetched >= 3
    readings = [r for r in delivered if isinstance(r, Reading) and r.node == "dust-1" and r.sequence]
    by_sequence: dict[int, dict[str, Reading]] = {}
    for r in readings:
        by_sequence.setdefault(r.sequence, {})[r.channel] = r
    # Taken while the node was deaf: these came from its history; before that, from live polls.
    backfilled = [s for s in by_sequence if deaf[0] < s < deaf[1]]
    polled = [s for s in by_sequence if s <= deaf[0]]
    assert len(backfilled) >= 3 and len(polled) >= 2, (sorted(by_sequence), deaf)
    for sequence, sample in by_sequence.items():
        flags = {channel: r.quality for channel, r in sample.items()}
        assert sample["pm10"].value == 1000.0, sample["pm10"]
        assert sample["pm25"].value is not None and sample["pm25"].value < 1000.0
        assert flags == {
            "pm25": Quality.NORMAL, "pm10": Quality.OVER_RANGE, "pm1": Quality.NORMAL,
            "temperature": Quality.NORMAL, "humidity": Quality.NORMAL, "pressure": Quality.NORMAL,
        }, (sequence, flags)
