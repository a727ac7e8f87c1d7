"""Vendor devices on a busy RS-485 bus: how close to wire speed the gateway polls a mixed bus.

8 sitewatch nodes (2 of each kind) and 8 vendor devices (2 each of four
shipped profiles: a PM monitor, an ultrasonic anemometer, an inclinometer
with float32 in swapped words, a noise transmitter) share one 19200-baud
simulated bus. Every device is due all the time (interval 0.1 s), so the bus
never idles and one cycle (everything read once) is the figure of merit.

Lower bound of a cycle: for each transaction, (request + reply bytes) * 11 /
baud + turnaround (2 ms) + t3.5. Printed: the cycle, its ratio to the bound,
and what merging saves: the profiles' merged requests against one request per
register (as Telegraf or ThingsBoard configured per tag would send).

    python bench/vendor_bus.py
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME
from gateway.acquire.poller import BusConfig, BusPoller, NodeConfig, PollRecord
from gateway.profiles.vendor import VendorProfile, load_vendor_profiles
from gateway.protocols import modbus_rtu_master as rtu
from simulator.site import BusSpec, NodeSpec, Site

BAUD = 19200
TURNAROUND = 0.002
SECONDS = 12.0
PROFILES = load_vendor_profiles(system_dir=None)
DEVICE_PROFILES = ("deltaohm-pmsense", "calypso-ulp-ultrasonic", "geokon-6150f-inclinometer", "generic-485-noise")
NODES = tuple(NodeSpec(kind, i + 1) for i, kind in enumerate(("dust", "noise", "tilt", "wind") * 2))
DEVICES = tuple(NodeSpec(PROFILES[p].kind, 20 + i, profile=p) for i, p in enumerate(DEVICE_PROFILES * 2))


def transaction(count: int) -> float:
    return rtu.wire_time(8 + 5 + 2 * count, BAUD) + TURNAROUND + rtu.t35(BAUD)


def node_bound(spec: NodeSpec) -> float:
    return transaction(int(regmap.input_count(KIND_BY_NAME[spec.kind])))


def device_bound(profile: VendorProfile) -> float:
    return sum(transaction(r.count) for r in profile.reads())


def per_register_bound(profile: VendorProfile) -> float:
    return sum(transaction(r.words) for r in profile.registers)


async def main() -> int:
    bound = sum(node_bound(s) for s in NODES) + sum(device_bound(PROFILES[s.profile]) for s in DEVICES)
    merged = sum(len(PROFILES[s.profile].reads()) for s in DEVICES)
    single = sum(len(PROFILES[s.profile].registers) for s in DEVICES)
    print(f"bus: {len(NODES)} sitewatch nodes + {len(DEVICES)} vendor devices, {BAUD} baud, turnaround "
          f"{TURNAROUND * 1000:.0f} ms, t3.5 {rtu.t35(BAUD) * 1000:.3f} ms")
    print(f"vendor requests per cycle: {merged} merged (one per register: {single}); vendor wire time per cycle "
          f"{sum(device_bound(PROFILES[s.profile]) for s in DEVICES) * 1000:.1f} ms merged, "
          f"{sum(per_register_bound(PROFILES[s.profile]) for s in DEVICES) * 1000:.1f} ms one per register")
    print(f"wire-time lower bound of a cycle: {bound * 1000:.1f} ms")
    records: list[PollRecord] = []
    with (tempfile.TemporaryDirectory(prefix="vendor-bus-") as folder,
          Site((BusSpec("bench", NODES + DEVICES, baud=BAUD),), Path(folder), burst=True)):
            configs = tuple(NodeConfig(f"{s.kind}-{s.unit_id}", s.kind, s.unit_id, 0.1) for s in NODES) + tuple(
                NodeConfig(f"{s.kind}-{s.unit_id}", s.kind, s.unit_id, 0.1, history=False,
                           profile=PROFILES[s.profile]) for s in DEVICES)
            poller = BusPoller(BusConfig("bench", str(Path(folder) / "bench"), configs, baud=BAUD, timeout=0.5),
                               lambda r: None, trace=records.append)
            stop = asyncio.Event()
            task = asyncio.create_task(poller.run(stop))
            await asyncio.sleep(SECONDS)
            stop.set()
            await task
    gaps: list[float] = []
    for c in configs:
        sent = [r.sent for r in records if r.node == c.name]
        gaps += [b - a for a, b in itertools.pairwise(sent[1:])]
    cycle = statistics.mean(gaps)
    failed = sum(1 for r in records if r.outcome not in ("sample", "no new sample"))
    print(f"gateway: cycle {cycle * 1000:.1f} ms, ratio to the bound {cycle / bound:.3f}; "
          f"{len(records)} polls, {failed} failed")
    for spec in DEVICES[:4]:
        name = f"{spec.kind}-{spec.unit_id}"
        took = [r.completed - r.sent for r in records if r.node == name]
        print(f"  {name} ({spec.profile}): {len(took)} polls, median {statistics.median(took) * 1000:.2f} ms per poll")
    return 0


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # no options: --help only
    sys.exit(asyncio.run(main()))
