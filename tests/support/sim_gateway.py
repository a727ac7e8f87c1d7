"""`sitewatch run`, on a simulated site's clock, as a process of its own (so that a test can `kill -9` it).

    python -m tests.support.sim_gateway --config gateway.toml --start-time T --origin M --speed S

`sitewatch run` stamps readings with the machine's clock, so it can only follow a site that runs in
real time. A fault campaign needs simulated hours in real minutes and a gateway that can be killed:
this runs the same Gateway (gateway/ops/service.py) as `sitewatch run`, with its wall and monotonic
clocks both the site's simulated time, and the instants its links stamp exchanges with mapped to it
(as tests/integration/support.py does in-process). The site's clock (simulator.site.SimClock, not
gated) is start_time + speed * (time.monotonic() - origin); CLOCK_MONOTONIC is the same in every
process of the machine, so the child computes the very clock the site runs on.

SIGTERM or SIGINT stops it the way `sitewatch run` stops (the queue flushed to the sinks).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from pathlib import Path

from gateway.acquire.timestamps import Clock
from gateway.ops.config import load_config
from gateway.ops.service import Gateway


class SiteTime:
    """The simulated epoch time of a site clock started at `origin` (time.monotonic()) at `start_time`."""

    def __init__(self, start_time: float, origin: float, speed: float) -> None:
        self.start_time = start_time
        self.origin = origin
        self.speed = speed

    def at(self, monotonic: float) -> float:
        return self.start_time + (monotonic - self.origin) * self.speed

    def now(self) -> float:
        return self.at(time.monotonic())


async def serve(config_path: Path, site_time: SiteTime) -> None:
    config = load_config(config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    clock = Clock(wall=site_time.now, mono=site_time.now, valid=lambda: True)
    gateway = Gateway(config, clock=clock, link_time=site_time.at)
    logging.getLogger("sitewatch").info("sim gateway: sinks %s", ", ".join(d.name for d in gateway.deliveries))
    await gateway.run(stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--start-time", type=float, required=True, help="simulated epoch s at origin")
    parser.add_argument("--origin", type=float, required=True, help="time.monotonic() when the site clock started")
    parser.add_argument("--speed", type=float, required=True, help="simulated seconds per real second")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.config, SiteTime(args.start_time, args.origin, args.speed)))


if __name__ == "__main__":
    main()
