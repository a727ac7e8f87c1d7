"""Gateway health points in the agreed schema, for the gateway dashboard's queries.

The health records (gateway_health, node_health: see the working agreement quoted in
docs/influxdb-schema.md) come from another branch; until it is merged, these points stand in for
what the InfluxDB sink will write: same measurements, tags and field types, one record a minute
during each site's run, with values that change (a queue that grows and drains, drops that come in
bursts, a node whose success rate falls), so a query that picks the wrong point or aggregate shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.deliver.line_protocol import line, timestamp
from tests.dashboards.fill import FilledSite

HEALTH_INTERVAL_S = 60.0
RECORDS = 40


@dataclass(frozen=True)
class HealthPoint:
    site: str
    district: str
    gateway: str
    time: float
    uptime_s: float
    rss_bytes: int
    cpu_s: float
    queue_depth: int
    queue_oldest_age_s: float
    dropped_total: int
    nodes_online: int
    nodes_total: int
    clock_valid: bool


@dataclass(frozen=True)
class NodeHealthPoint:
    site: str
    district: str
    gateway: str
    node: str
    kind: str
    bus: str
    time: float
    online: bool
    polls_ok_total: int
    polls_failed_total: int
    success_rate: float
    latency_ms: float
    last_seen_age_s: float


def health_points(sites: list[FilledSite]) -> tuple[list[HealthPoint], list[NodeHealthPoint]]:
    gateways: list[HealthPoint] = []
    nodes: list[NodeHealthPoint] = []
    for number, site in enumerate(sites):
        spec = site.spec
        start = site.run.site.scenario.start_epoch + spec.skip
        polled = [n for n in site.run.site.nodes if any((p.bus, p.unit_id) == (n.bus, n.spec.unit_id)
                                                        for p in spec.polled)]
        dropped = 0
        for i in range(RECORDS):
            t = start + 30.0 + i * HEALTH_INTERVAL_S
            dropped += 7 * number + 3 if i % 9 == 4 else 0  # bursts of drops
            depth = (i * 37 + 11 * number) % 250
            offline = 1 if 20 <= i < 32 else 0  # longer than a display interval: some show offline
            gateways.append(HealthPoint(spec.site, spec.district, spec.gateway, t, 1000.0 + i * HEALTH_INTERVAL_S,
                                        50_000_000 + i * 1000, 3.5 + i * 0.25, depth, depth * 0.8 + number,
                                        dropped, len(polled) - offline, len(polled), True))
            for k, node in enumerate(polled):
                down = offline == 1 and k == 0
                rate = 1.0 - ((i + k) % 5) * 0.05 - (0.5 if down else 0.0)
                nodes.append(NodeHealthPoint(spec.site, spec.district, spec.gateway, node.name, node.spec.kind,
                                             node.bus, t, not down, 100 + i * 10, i // 3 + k, round(rate, 4),
                                             12.5 + k + i % 3, 5.0 if not down else 200.0))
    return gateways, nodes


def health_lines(gateways: list[HealthPoint], nodes: list[NodeHealthPoint]) -> str:
    out = []
    for g in gateways:
        tags = {"site": g.site, "gateway": g.gateway, "district": g.district}
        fields: dict[str, float | int | bool | str] = {
            "uptime_s": g.uptime_s, "rss_bytes": g.rss_bytes, "cpu_s": g.cpu_s, "queue_depth": g.queue_depth,
            "queue_oldest_age_s": g.queue_oldest_age_s, "dropped_total": g.dropped_total,
            "nodes_online": g.nodes_online, "nodes_total": g.nodes_total, "clock_valid": g.clock_valid,
        }
        out.append(line("gateway_health", tags, fields, timestamp(g.time, "ns")))
    for n in nodes:
        tags = {"site": n.site, "gateway": n.gateway, "district": n.district, "node": n.node, "kind": n.kind,
                "bus": n.bus}
        fields = {
            "online": n.online, "polls_ok_total": n.polls_ok_total, "polls_failed_total": n.polls_failed_total,
            "success_rate": n.success_rate, "latency_ms": n.latency_ms, "last_seen_age_s": n.last_seen_age_s,
        }
        out.append(line("node_health", tags, fields, timestamp(n.time, "ns")))
    return "\n".join(out) + "\n"
