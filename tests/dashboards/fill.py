"""Fill an InfluxDB 1.6.7 database the way a bureau's would be: simulated sites, each through the gateway's own sink.

Each site is a shipped scenario run through the real gateway in accelerated simulated time
(tests/integration/support.py: the firmware nodes on pseudo-terminals, the gateway polling them,
its pipeline, durable queue and InfluxDB sink with the site's `site`, `gateway` and `district`
tags). The simulator's ground truth of every sample is kept beside it, so the dashboards' numbers
can be compared with what the sensors really measured.

Numbers changed for speed, and why: the nodes sample once a simulated minute (holding register
sample_interval, whose 16 bits allow at most 65.5 s; limits.sampling.interval_s = 60), so that a
9600-baud line with four nodes keeps up at a couple of hundred times real time; a run covers one
whole clock hour and five minutes, so the hour's aggregates close (a reading after the window's end
closes it). The sites run side by side, each with its own simulated clock and gateway.

The gateways' own health task reports (gateway_health, sink_health, node_health) every
HEALTH_INTERVAL_S: the task waits in real time (asyncio), so the configuration's smallest interval,
0.5 s, is 100 simulated seconds at the demo's speed and 150 at the typhoon's (several reports per
10-minute display interval). At the typhoon site the noise monitor falls silent for ten simulated
minutes (a no_reply fault, SILENCE): the gateway's reports show it offline, then back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from gateway.deliver.records import HealthReport
from simulator.faults import Fault, FaultKind
from simulator.truth import TruthRecord, read_truth
from tests.integration.support import Polled, Run, run_scenario

SAMPLE_S = 60.0
HEALTH_INTERVAL_S = 0.5  # real seconds: the smallest [health] interval_s the configuration allows
# The typhoon's noise monitor (bus boundary, unit 2) is silent 13:25-13:35 local (scenario seconds).
# A silent node is polled (and found offline) only in the line's free time: the typhoon's line gets some.
POLL_WITH_GAPS_S = 0.1
SILENCE = Fault(FaultKind.NO_REPLY, "boundary", 3600.0 + 25 * 60.0, 3600.0 + 35 * 60.0, unit_id=2)


@dataclass(frozen=True)
class SiteRun:
    """One simulated site: a scenario, the stretch of it that runs, the nodes polled, its tags."""

    site: str
    gateway: str
    district: str
    scenario: str
    skip: float  # scenario seconds
    until: float
    speed: float
    polled: tuple[Polled, ...]
    faults: tuple[Fault, ...] = ()
    poll_interval: float = 0.0  # real seconds between polls of a node (0: back to back)


SITES = (
    # An ordinary morning, one node of each kind on one bus: the first clock hour (09:00-10:00 local).
    SiteRun("zs-demo", "gw-demo", "shiqi", "demo", 0.0, 65 * 60.0, 200.0,
            tuple(Polled("bus0", unit, SAMPLE_S) for unit in (1, 2, 3, 4))),
    # The typhoon's second hour (13:00-14:00 local): the mean wind rising past 6 m/s, gusts over the crane limit.
    # The noise monitor falls silent for ten minutes (SILENCE).
    SiteRun("zs-typhoon", "gw-typhoon", "dongqu", "typhoon", 3600.0, 3600.0 + 65 * 60.0, 300.0,
            (Polled("tower", 1, SAMPLE_S), Polled("boundary", 1, SAMPLE_S), Polled("boundary", 2, SAMPLE_S)),
            (SILENCE,), POLL_WITH_GAPS_S),
)


@dataclass
class FilledSite:
    spec: SiteRun
    run: Run
    truth: list[TruthRecord]

    def node_truth(self, node: str) -> list[TruthRecord]:
        """The truth of one node of the site (by the scenario's name of it)."""
        by_name = {n.name: n for n in self.run.site.nodes}
        target = by_name[node]
        return [t for t in self.truth if t.bus == target.bus and t.unit_id == target.spec.unit_id and t.values]

    def health(self) -> list[HealthReport]:
        """The health reports the site's gateway queued, in the order it measured them."""
        return self.run.of(HealthReport)


def extra_toml(spec: SiteRun, url: str, database: str) -> str:
    return "\n".join([
        "[[sink]]",
        'type = "influxdb"',
        'name = "influxdb"',
        f'url = "{url}"',
        'api = "v1"',
        f'database = "{database}"',
        f'site = "{spec.site}"',
        f'gateway = "{spec.gateway}"',
        f'district = "{spec.district}"',
        "[health]",
        f"interval_s = {HEALTH_INTERVAL_S}",
    ]) + "\n"


async def _run(root: Path, spec: SiteRun, url: str, database: str) -> FilledSite:
    path = root / spec.site
    path.mkdir()
    truth = path / "truth.jsonl"
    run = await run_scenario(
        path, spec.scenario, skip=spec.skip, until=spec.until, speed=spec.speed, polled=spec.polled,
        extra=extra_toml(spec, url, database), truth=truth, faults=spec.faults,
        poll_interval=spec.poll_interval,
    )
    return FilledSite(spec, run, read_truth(truth))


async def _fill(root: Path, url: str, database: str) -> list[FilledSite]:
    return list(await asyncio.gather(*(_run(root, spec, url, database) for spec in SITES)))


def fill(root: Path, url: str, database: str) -> list[FilledSite]:
    """Run every site of SITES into `database`; the gateways have delivered everything when this returns."""
    return asyncio.run(_fill(root, url, database))
